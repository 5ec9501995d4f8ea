"""Stacked bars of each quant's memory (weights / KV cache / compute + other) vs this machine."""

from __future__ import annotations

import math
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
from PySide6.QtCore import QMargins, QPointF, Qt
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import QWidget

from quantdesk.engine.estimate.fit import budgets
from quantdesk.engine.gguf.model_info import human_bytes


def chart_unit(largest: int) -> tuple[str, int]:
    """The unit a chart of values up to ``largest`` bytes reads best in (decimal, as every
    size in QuantDesk): MB below 1 GB, else GB."""
    return ("MB", 1000**2) if largest < 1000**3 else ("GB", 1000**3)


def nice_axis(value: float) -> tuple[float, int]:
    """A round axis end just above ``value`` (1, 1.5, 2, 2.5, 3, 4, 5, 6 or 8 times a power of
    ten) and the tick count that puts every tick on a round number (0, 100, 200, 300)."""
    if value <= 0:
        return 1.0, 6
    power = 10 ** math.floor(math.log10(value))
    for factor, ticks in ((1, 6), (1.5, 4), (2, 5), (2.5, 6), (3, 4), (4, 5), (5, 6), (6, 4),
                          (8, 5), (10, 6)):
        if power * factor >= value * (1 - 1e-9):
            return round(power * factor, 12), ticks
    return power * 10, 6


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
        self.setMinimumHeight(220)
        self._bars: list[MemoryBar] = []
        self.set_data([], ram_free=0, vram_free=None)

    def bars(self) -> list[MemoryBar]:
        """The bars shown (for tests and accessibility)."""
        return list(self._bars)

    def set_data(self, bars: list[MemoryBar], *, ram_free: int, vram_free: int | None) -> None:
        """Draw ``bars`` with vertical lines where the usable RAM and VRAM end: what the fit
        allows of the free memory (the status bar's figure) after what stays for the system."""
        self._bars = list(bars)
        needed = max([b.weights + b.kv_cache + b.compute for b in bars] + [1])
        unit, scale = chart_unit(needed)
        top, ticks = nice_axis(needed * 1.1 / scale)  # a round end a little past the bars
        chart = QChart()
        # no title (the page says what this is): the height goes to the bars
        chart.setMargins(QMargins(4, 2, 4, 2))
        chart.layout().setContentsMargins(0, 0, 0, 0)
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
            bar_set.append([getattr(b, attr) / scale for b in bars])
            series.append(bar_set)
        chart.addSeries(series)
        categories = QBarCategoryAxis()
        categories.append([b.label for b in bars])
        categories.setTruncateLabels(False)  # "Q4_K_M", never "…" on a small window
        chart.addAxis(categories, Qt.AlignmentFlag.AlignLeft)
        series.attachAxis(categories)
        values = QValueAxis()
        # Scaled to the bars (a small model next to a big machine would be invisible
        # otherwise); a limit beyond the scale is named in the legend, never drawn at the end.
        values.setRange(0, top)
        values.setTickCount(ticks)
        step = top / (ticks - 1)
        values.setLabelFormat("%.0f" if step >= 1 else "%.1f" if step >= 0.1 else "%.2f")
        values.setTitleText(f"Memory needed ({unit})")
        chart.addAxis(values, Qt.AlignmentFlag.AlignBottom)
        series.attachAxis(values)
        rows = QValueAxis()
        rows.setRange(0, 1)
        rows.setVisible(False)
        chart.addAxis(rows, Qt.AlignmentFlag.AlignRight)
        beyond: list[str] = []
        ram_usable, vram_usable = budgets(ram_free, vram_free)
        for what, free, limit, color in (
            ("RAM", ram_free, ram_usable, "#a1121f"),
            ("VRAM", vram_free, vram_usable, "#6a3be0"),
        ):
            if not free or limit is None or limit <= 0:
                continue
            if limit / scale > top:  # named in the title, not drawn at the axis end
                beyond.append(f"{human_bytes(limit)} {what} usable of {human_bytes(free)} free")
                continue
            line = QLineSeries()
            line.setName(f"Usable {what}: {human_bytes(limit)} of {human_bytes(free)} free")
            line.append([QPointF(limit / scale, 0), QPointF(limit / scale, 1)])
            pen = QPen(QColor(color))
            pen.setWidth(2)
            pen.setStyle(Qt.PenStyle.DashLine)
            line.setPen(pen)
            chart.addSeries(line)
            line.attachAxis(values)
            line.attachAxis(rows)
        if beyond:
            values.setTitleText(f"{values.titleText()} · {', '.join(beyond)}: beyond the chart")
        old = self.chart()
        self.setChart(chart)
        if old is not None:
            old.deleteLater()
