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
        for series in (front,):
            series.attachAxis(x_axis)
            series.attachAxis(y_axis)
        for point in points:
            dot = QScatterSeries()
            dot.setMarkerSize(11)
            dot.setColor(QColor("#4c78a8" if point.on_front else "#9d9d9d"))
            dot.append(QPointF(point.size_bytes / MB, point.value))
            dot.setPointLabelsFormat(point.label)
            dot.setPointLabelsVisible(True)
            dot.setPointLabelsClipping(False)
            chart.addSeries(dot)
            dot.attachAxis(x_axis)
            dot.attachAxis(y_axis)
        if points:
            sizes = [p.size_bytes / MB for p in points]
            values = [p.value for p in points]
            x_axis.setRange(0, max(sizes) * 1.12)
            low, high = min(values), max(values)
            pad = (high - low) * 0.15 or abs(high) * 0.1 or 1.0
            y_axis.setRange(low - pad, high + pad)
            x_axis.applyNiceNumbers()
            y_axis.applyNiceNumbers()
        self.setChart(chart)
