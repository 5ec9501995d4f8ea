"""The lab's charts: labels of neighbouring rungs never land on each other where there is
room, and axes end on round figures (a percentage at 100)."""

from __future__ import annotations

from quantdesk.ui.ladder_chart import (
    LABEL_HEIGHT,
    LABEL_PLACES,
    LABEL_WIDTH,
    ChartPoint,
    LadderChart,
    _label_offsets,
)

MB = 1_000_000


def test_close_rungs_get_labels_that_do_not_cover_each_other() -> None:
    points = [ChartPoint("Q2_K", 237 * MB, 62.8, True), ChartPoint("Q4_0", 241 * MB, 67.1, True),
              ChartPoint("Q3_K_M", 242 * MB, 73.6, True), ChartPoint("F16", 543 * MB, 100, True),
              ChartPoint("Q4_K_M", 253 * MB, 95.6, True)]  # fmt: skip
    span_x, span_y = 340.0, 100.0
    offsets = _label_offsets(points, span_x, span_y)
    assert offsets["F16"] == LABEL_PLACES[0]  # alone: above its point, where Qt puts it
    dots = [(p.size_bytes / MB, p.value) for p in points]
    spots = [(x + offsets[p.label][0] * span_x, y + offsets[p.label][1] * span_y)
             for p, (x, y) in zip(points, dots, strict=True)]  # fmt: skip

    def apart(a: tuple[float, float], b: tuple[float, float]) -> bool:
        return abs(a[0] - b[0]) >= LABEL_WIDTH * span_x or abs(a[1] - b[1]) >= LABEL_HEIGHT * span_y

    for i, spot in enumerate(spots):
        assert all(apart(spot, other) for other in spots[i + 1:])  # no label on a label
        assert all(apart(spot, dot) for j, dot in enumerate(dots) if j != i)  # nor on a point


def test_a_percentage_axis_ends_at_100_in_round_steps(qapp) -> None:  # pytest-qt's QApplication
    chart = LadderChart("Quality kept vs size", "top-1 agreement (%)", 100.0)
    chart.set_points([ChartPoint("F16", 543 * MB, 100.0, True),
                      ChartPoint("Q2_K", 237 * MB, 19.4, True)])  # fmt: skip
    y_axis = chart.chart().axes()[1]
    assert (y_axis.min(), y_axis.max(), y_axis.tickCount()) == (0.0, 100.0, 6)
    speed = LadderChart("Speed vs size", "decode tok/s")
    speed.set_points([ChartPoint("F16", 543 * MB, 31.0, False),
                      ChartPoint("Q8_0", 291 * MB, 47.0, True)])  # fmt: skip
    low = speed.chart().axes()[1].min()
    assert 0.0 <= low <= 31.0
