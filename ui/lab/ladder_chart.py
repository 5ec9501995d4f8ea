"""A scatter chart of the ladder: one figure (quality or speed) against file size, each rung
labelled with its type, the Pareto front drawn as a line."""

from __future__ import annotations

import math
from dataclasses import dataclass

from PySide6.QtCharts import QChart, QChartView, QLineSeries, QScatterSeries, QValueAxis
from PySide6.QtCore import QPointF, QSize, Qt, QTimer
from PySide6.QtGui import QColor, QPainter, QPen, QResizeEvent
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


#: Where a label may go, in pixels from its point (x right, y up), best first: above it
#: (where Qt draws a point's label), right, left, right or left a little higher or lower,
#: under, then further above or under.
LABEL_PLACES = ((0, 12), (38, -4), (-38, -4), (38, 10), (-38, 10), (38, -16), (-38, -16),
                (0, -20), (0, 30), (0, -38))  # fmt: skip
LABEL_SIZE = (54, 16)  # a label's width and height in pixels (a type name such as Q4_K_M)
MARKER = 6  # a point's radius in pixels


def _label_offsets(
    points: list[ChartPoint], origin: tuple[float, float], per_px: tuple[float, float]
) -> dict[str, tuple[int, int]]:
    """Each label's place (see LABEL_PLACES), given the axes' minimums (``origin``) and data
    units per pixel on each axis: the first place where it covers no point, no label placed
    before it and no axis (left or bottom), else the place with the most room."""

    def pixels(point: ChartPoint) -> tuple[float, float]:
        return ((point.size_bytes / MB - origin[0]) / per_px[0],
                (point.value - origin[1]) / per_px[1])  # fmt: skip

    dots = [pixels(p) for p in points]
    labels: list[tuple[float, float]] = []
    offsets: dict[str, tuple[int, int]] = {}
    width, height = LABEL_SIZE

    def room(x: float, y: float, own: tuple[float, float]) -> float:
        """How far the label centred at (x, y) is from what it must not cover (1: touching):
        other points (a marker's radius beyond the label's half size) and placed labels."""
        near_dots = [max(abs(x - ox) / (width / 2 + MARKER), abs(y - oy) / (height / 2 + MARKER))
                     for ox, oy in dots if (ox, oy) != own]  # fmt: skip
        near_labels = [max(abs(x - ox) / width, abs(y - oy) / height) for ox, oy in labels]
        axes = [x / (width / 2), y / (height / 2)]  # over the axis line and its figures: < 1
        return min(near_dots + near_labels + axes)

    def nearest_is_own(x: float, y: float, own: tuple[float, float]) -> bool:
        """Whether the label centred at (x, y) is closer to its own point than to any other
        (else a reader would take it for the other point's)."""
        mine = math.dist((x, y), own)
        return all(math.dist((x, y), dot) > mine for dot in dots if dot != own)

    for point in sorted(points, key=lambda p: p.size_bytes):
        x, y = pixels(point)
        spaces = [(room(x + dx, y + dy, (x, y)), (dx, dy)) for dx, dy in LABEL_PLACES]
        clear = [place for gap, place in spaces if gap >= 1.0]
        plain = [(dx, dy) for dx, dy in clear if nearest_is_own(x + dx, y + dy, (x, y))]
        offsets[point.label] = (plain or clear or [max(spaces)[1]])[0]
        labels.append((x + offsets[point.label][0], y + offsets[point.label][1]))
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
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # a picture: the table holds the figures
        self.points: list[ChartPoint] = []
        self._redraw = QTimer(self, singleShot=True, interval=0)  # one redraw per burst
        self._redraw.timeout.connect(lambda: self.set_points(self.points))
        self.set_points([])

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt API
        """Labels are placed in pixels: place them again once the new size is laid out."""
        super().resizeEvent(event)
        if self.points:
            self._redraw.start()

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
        if points:
            x_axis.setRange(low_x, high_x)
            x_axis.applyNiceNumbers()
            _nice_range(y_axis, low_y, high_y, self._y_max)
        old = self.chart()  # the chart drawn before: its plot area is this view's, laid out
        area = old.plotArea() if old is not None else None
        if area is not None and area.width() > 20 and area.height() > 20:
            plot_w, plot_h = area.width(), area.height()
        else:  # first drawing: about what the axes, titles and margins leave
            plot_w, plot_h = max(120, self.width() - 135), max(80, self.height() - 124)
        per_px_x = (x_axis.max() - x_axis.min()) / plot_w
        per_px_y = (y_axis.max() - y_axis.min()) / plot_h
        offsets = _label_offsets(points, (x_axis.min(), y_axis.min()), (per_px_x, per_px_y))
        for point in points:
            dot = QScatterSeries()
            dot.setMarkerSize(2 * MARKER - 1)
            dot.setColor(QColor("#4c78a8" if point.on_front else "#9d9d9d"))
            dot.append(QPointF(point.size_bytes / MB, point.value))
            label = dot
            (dx, dy), (above_x, above_y) = offsets[point.label], LABEL_PLACES[0]
            if (dx, dy) != (above_x, above_y):  # not Qt's own place above the point: a carrier
                label = QScatterSeries()
                label.setMarkerSize(1)
                label.setColor(QColor(0, 0, 0, 0))
                label.setBorderColor(QColor(0, 0, 0, 0))
                label.append(QPointF(point.size_bytes / MB + (dx - above_x) * per_px_x,
                                     point.value + (dy - above_y) * per_px_y))  # fmt: skip
            label.setPointLabelsFormat(point.label)
            label.setPointLabelsVisible(True)
            label.setPointLabelsClipping(False)
            for series in {id(dot): dot, id(label): label}.values():
                chart.addSeries(series)
                series.attachAxis(x_axis)
                series.attachAxis(y_axis)
        self.setChart(chart)  # the view hands the old chart back to us: it must be deleted
        if old is not None:
            old.deleteLater()
