"""Stacked bars of each quant's memory (weights / KV cache / compute + other) vs this machine."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCharts import (
    QBarCategoryAxis,
    QBarSet,
    QChart,
    QChartView,
    QHorizontalStackedBarSeries,
    QLineSeries,
    QValueAxis,
)
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import QWidget

GIB = 1024**3


@dataclass(frozen=True)
class MemoryBar:
    """One bar: a quant level and its memory parts in bytes (all devices together)."""

    label: str
    weights: int
    kv_cache: int
    compute: int


class MemoryChart(QChartView):
    """Memory breakdown per quant against available RAM (and VRAM when there is a GPU)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setRenderHint(QPainter.RenderHint.Antialiasing)
        self.setAccessibleName("Memory chart")
        self.setMinimumHeight(300)
        self._bars: list[MemoryBar] = []
        self.set_data([], ram_available=0, vram_free=None)

    def bars(self) -> list[MemoryBar]:
        """The bars shown (for tests and accessibility)."""
        return list(self._bars)

    def set_data(self, bars: list[MemoryBar], *, ram_available: int, vram_free: int | None) -> None:
        """Draw ``bars`` with vertical lines at the available RAM and free VRAM."""
        self._bars = list(bars)
        chart = QChart()
        chart.setTitle("Memory needed per quant (GiB)")
        chart.legend().setAlignment(Qt.AlignmentFlag.AlignBottom)
        chart.setAnimationOptions(QChart.AnimationOption.NoAnimation)
        series = QHorizontalStackedBarSeries()
        for name, attr, color in (
            ("Weights", "weights", "#4c78a8"),
            ("KV cache", "kv_cache", "#f58518"),
            ("Compute + other", "compute", "#54a24b"),
        ):
            bar_set = QBarSet(name)
            bar_set.setColor(QColor(color))
            bar_set.append([getattr(b, attr) / GIB for b in bars])
            series.append(bar_set)
        chart.addSeries(series)
        categories = QBarCategoryAxis()
        categories.append([b.label for b in bars])
        chart.addAxis(categories, Qt.AlignmentFlag.AlignLeft)
        series.attachAxis(categories)
        values = QValueAxis()
        # Scale to the bars: a small model next to a big machine would be invisible otherwise;
        # limits beyond the scale are named in the legend instead of drawn.
        needed = max([b.weights + b.kv_cache + b.compute for b in bars] + [1])
        top = needed * 1.25
        values.setRange(0, top / GIB)
        values.setLabelFormat("%.2f" if top < 2 * GIB else "%.1f")
        chart.addAxis(values, Qt.AlignmentFlag.AlignBottom)
        series.attachAxis(values)
        rows = QValueAxis()
        rows.setRange(0, 1)
        rows.setVisible(False)
        chart.addAxis(rows, Qt.AlignmentFlag.AlignRight)
        for label, limit, color in (
            ("Available RAM", ram_available, "#a1121f"),
            ("Free VRAM", vram_free, "#6a3be0"),
        ):
            if not limit:
                continue
            line = QLineSeries()
            off_scale = " (off scale)" if limit > top else ""
            line.setName(f"{label} {limit / GIB:.1f} GiB{off_scale}")
            x = min(limit, top) / GIB
            line.append([QPointF(x, 0), QPointF(x, 1)])
            pen = QPen(QColor(color))
            pen.setWidth(2)
            pen.setStyle(Qt.PenStyle.DashLine)
            line.setPen(pen)
            chart.addSeries(line)
            line.attachAxis(values)
            line.attachAxis(rows)
        old = self.chart()
        self.setChart(chart)
        if old is not None:
            old.deleteLater()
