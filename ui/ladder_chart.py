"""A scatter chart of the ladder: one figure (quality or speed) against file size, each rung
labelled with its type, the Pareto front drawn as a line."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCharts import QChart, QChartView, QLineSeries, QScatterSeries, QValueAxis
from PySide6.QtCore import QPointF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import QWidget

MB = 1e6


@dataclass(frozen=True)
class ChartPoint:
    """One rung on the chart."""

    label: str
    size_bytes: int
    value: float
    on_front: bool


def _ranges(points: list[ChartPoint]) -> tuple[float, float, float, float]:
    """Axis ranges around the points (x from just below the smallest file, so that types of
    similar size spread out), with room for the labels."""
    if not points:
        return 0.0, 1.0, 0.0, 1.0
    sizes = [p.size_bytes / MB for p in points]
    values = [p.value for p in points]
    span_x = (max(sizes) - min(sizes)) or max(sizes) or 1.0
    low, high = min(values), max(values)
    pad = (high - low) * 0.15 or abs(high) * 0.1 or 1.0
    return max(0.0, min(sizes) - span_x * 0.1), max(sizes) + span_x * 0.1, low - pad, high + pad


#: Where a label may go, as shares of the x and y ranges from its point, best first: above
#: it (where Qt draws a point's label), right, left, under, then further above or under.
LABEL_PLACES = ((0.0, 0.05), (0.08, -0.03), (-0.08, -0.03), (0.0, -0.1), (0.0, 0.13),
                (0.0, -0.18))  # fmt: skip
LABEL_HEIGHT = 0.07  # a label's height, as a share of the y range
LABEL_WIDTH = 0.11  # a label's width, as a share of the x range


def _label_offsets(
    points: list[ChartPoint], span_x: float, span_y: float
) -> dict[str, tuple[float, float]]:
    """Each label's place (see LABEL_PLACES): the first place where it covers no point and no
    label placed before it, else the place with the most room."""
    others = [(p.size_bytes / MB, p.value) for p in points]  # what a label must not cover
    offsets: dict[str, tuple[float, float]] = {}

    def room(x: float, y: float, skip: tuple[float, float]) -> float:
        """Distance to the nearest thing in the label's way (in label sizes)."""
        gaps = [max(abs(x - ox) / (LABEL_WIDTH * span_x), abs(y - oy) / (LABEL_HEIGHT * span_y))
                for ox, oy in others if (ox, oy) != skip]  # fmt: skip
        return min(gaps, default=float("inf"))

    for point in sorted(points, key=lambda p: p.size_bytes):
        x, y = point.size_bytes / MB, point.value
        spaces = [(room(x + dx * span_x, y + dy * span_y, (x, y)), (dx, dy))
                  for dx, dy in LABEL_PLACES]  # fmt: skip
        free = [place for gap, place in spaces if gap >= 1.0]
        offsets[point.label] = free[0] if free else max(spaces)[1]
        dx, dy = offsets[point.label]
        others.append((x + dx * span_x, y + dy * span_y))
    return offsets


def _nice_range(axis: QValueAxis, low: float, high: float, most: float | None) -> None:
    """Set ``axis`` to a rounded range around ``low``..``high``, never below 0 and, with
    ``most`` (100 for a percentage), ending at ``most`` with round steps."""
    if most is not None and high >= most * 0.9:
        step = 10.0 if most - low <= 40 else 20.0
        bottom = max(0.0, (low // step) * step)
        axis.setRange(bottom, most)
        axis.setTickCount(int(round((most - bottom) / step)) + 1)
    else:
        axis.setRange(max(0.0, low), high)
        axis.applyNiceNumbers()
    axis.setLabelFormat("%.0f" if axis.max() >= 100 else "%.1f")


class LadderChart(QChartView):
    """``value`` (y) against size in MB (x); front points in blue joined by a line."""

    def __init__(self, title: str, y_title: str, y_max: float | None = None,
                 parent: QWidget | None = None) -> None:  # fmt: skip
        """``y_max``: the most the figure can be (100 for a percentage): the axis stops there."""
        super().__init__(parent)
        self._title, self._y_title, self._y_max = title, y_title, y_max
        self.setRenderHint(QPainter.RenderHint.Antialiasing)
        self.setAccessibleName(title)
        self.setMinimumHeight(220)
        self.points: list[ChartPoint] = []
        self.set_points([])

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt API
        """Modest: the lab page scrolls, and its table should show without scrolling."""
        return QSize(420, 280)

    def set_points(self, points: list[ChartPoint]) -> None:
        """Draw ``points`` (replacing what was there)."""
        self.points = list(points)
        chart = QChart()
        chart.setTitle(self._title)
        chart.setAnimationOptions(QChart.AnimationOption.NoAnimation)
        chart.legend().setVisible(False)
        x_axis, y_axis = QValueAxis(), QValueAxis()
        x_axis.setTitleText("file size (MB)")
        y_axis.setTitleText(self._y_title)
        chart.addAxis(x_axis, Qt.AlignmentFlag.AlignBottom)
        chart.addAxis(y_axis, Qt.AlignmentFlag.AlignLeft)
        front = QLineSeries()
        front.setPen(QPen(QColor("#4c78a8"), 2))
        for point in sorted((p for p in points if p.on_front), key=lambda p: p.size_bytes):
            front.append(QPointF(point.size_bytes / MB, point.value))
        chart.addSeries(front)
        front.attachAxis(x_axis)
        front.attachAxis(y_axis)
        low_x, high_x, low_y, high_y = _ranges(points)
        offsets = _label_offsets(points, high_x - low_x, high_y - low_y)
        for point in points:
            dot = QScatterSeries()
            dot.setMarkerSize(11)
            dot.setColor(QColor("#4c78a8" if point.on_front else "#9d9d9d"))
            dot.append(QPointF(point.size_bytes / MB, point.value))
            label = dot
            (dx, dy), (above_x, above_y) = offsets[point.label], LABEL_PLACES[0]
            if (dx, dy) != (above_x, above_y):  # not Qt's own place above the point: a carrier
                label = QScatterSeries()
                label.setMarkerSize(1)
                label.setColor(QColor(0, 0, 0, 0))
                label.setBorderColor(QColor(0, 0, 0, 0))
                label.append(QPointF(point.size_bytes / MB + (dx - above_x) * (high_x - low_x),
                                     point.value + (dy - above_y) * (high_y - low_y)))
            label.setPointLabelsFormat(point.label)
            label.setPointLabelsVisible(True)
            label.setPointLabelsClipping(False)
            for series in {id(dot): dot, id(label): label}.values():
                chart.addSeries(series)
                series.attachAxis(x_axis)
                series.attachAxis(y_axis)
        if points:
            x_axis.setRange(low_x, high_x)
            x_axis.applyNiceNumbers()
            _nice_range(y_axis, low_y, high_y, self._y_max)
        self.setChart(chart)
