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


def _labels_below(points: list[ChartPoint], near: float) -> set[str]:
    """Labels to draw under their point: every other one of a run of points closer than
    ``near`` MB to the previous one (labels above each other would overlap)."""
    below: set[str] = set()
    previous: tuple[float, bool] | None = None  # (x, its label below?)
    for point in sorted(points, key=lambda p: p.size_bytes):
        x = point.size_bytes / MB
        under = previous is not None and x - previous[0] < near and not previous[1]
        if under:
            below.add(point.label)
        previous = (x, under)
    return below


class LadderChart(QChartView):
    """``value`` (y) against size in MB (x); front points in blue joined by a line."""

    def __init__(self, title: str, y_title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._title, self._y_title = title, y_title
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
        below = _labels_below(points, (high_x - low_x) * 0.06)
        for point in points:
            dot = QScatterSeries()
            dot.setMarkerSize(11)
            dot.setColor(QColor("#4c78a8" if point.on_front else "#9d9d9d"))
            dot.append(QPointF(point.size_bytes / MB, point.value))
            label = dot
            if point.label in below:  # a neighbour's label is above: this one goes under
                label = QScatterSeries()
                label.setMarkerSize(1)
                label.setColor(QColor(0, 0, 0, 0))
                label.setBorderColor(QColor(0, 0, 0, 0))
                label.append(QPointF(point.size_bytes / MB, point.value - (high_y - low_y) * 0.1))
            label.setPointLabelsFormat(point.label)
            label.setPointLabelsVisible(True)
            label.setPointLabelsClipping(False)
            for series in {id(dot): dot, id(label): label}.values():
                chart.addSeries(series)
                series.attachAxis(x_axis)
                series.attachAxis(y_axis)
        if points:
            x_axis.setRange(low_x, high_x)
            y_axis.setRange(low_y, high_y)
            x_axis.applyNiceNumbers()
            y_axis.applyNiceNumbers()
        self.setChart(chart)
