"""The lab's charts: labels of neighbouring rungs never land on each other where there is
room, and axes end on round figures (a percentage at 100)."""

from __future__ import annotations

from quantdesk.ui.lab.ladder_chart import (
    LABEL_PLACES,
    LABEL_SIZE,
    MARKER,
    ChartPoint,
    LadderChart,
    _label_offsets,
)

MB = 1_000_000


def test_close_rungs_get_labels_that_do_not_cover_each_other() -> None:
    points = [ChartPoint("Q2_K", 237 * MB, 62.8, True), ChartPoint("Q4_0", 241 * MB, 67.1, True),
              ChartPoint("Q3_K_M", 242 * MB, 73.6, True), ChartPoint("F16", 543 * MB, 100, True),
              ChartPoint("Q4_K_M", 253 * MB, 95.6, True)]  # fmt: skip
    per_px_x, per_px_y = 400 / 320, 60 / 200  # a 320 x 200 pixel plot of 200-600 MB, 40-100 %
    offsets = _label_offsets(points, (200.0, 40.0), (per_px_x, per_px_y))
    assert offsets["F16"] == LABEL_PLACES[0]  # alone: above its point, where Qt puts it
    dots = [((p.size_bytes / MB - 200) / per_px_x, (p.value - 40) / per_px_y) for p in points]
    spots = [(x + offsets[p.label][0], y + offsets[p.label][1])
             for p, (x, y) in zip(points, dots, strict=True)]  # fmt: skip

    def apart(a: tuple[float, float], b: tuple[float, float], w: float, h: float) -> bool:
        return abs(a[0] - b[0]) >= w or abs(a[1] - b[1]) >= h

    width, height = LABEL_SIZE
    dot_w, dot_h = width / 2 + MARKER, height / 2 + MARKER
    for i, spot in enumerate(spots):
        assert all(apart(spot, other, width, height) for other in spots[i + 1:])  # no overlap
        assert all(apart(spot, dot, dot_w, dot_h) for j, dot in enumerate(dots) if j != i)
        assert spot[0] >= width / 2 and spot[1] >= height / 2  # clear of the axes


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


def test_a_redrawn_chart_deletes_the_chart_it_replaces(qapp) -> None:  # pytest-qt's QApplication
    from PySide6.QtCore import QCoreApplication, QEvent
    from shiboken6 import isValid

    chart = LadderChart("Speed vs size", "decode tok/s")
    old = chart.chart()
    chart.set_points([ChartPoint("Q8_0", 291 * MB, 47.0, True)])
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    assert not isValid(old) and isValid(chart.chart())
