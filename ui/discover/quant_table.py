"""The per-quant table of a Hub repo: size, estimates and a fit badge per quant level."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QBrush, QColor, QFont

from quantdesk.engine.gguf.model_info import human_bytes

VERDICT_GPU = "gpu"
VERDICT_PARTIAL = "partial"
VERDICT_CPU = "cpu"
VERDICT_NO_FIT = "no_fit"
VERDICT_UNKNOWN = "unknown"

# green: fully on GPU; yellow: partial offload; blue: CPU only; red: does not fit (UX.md)
BADGE_COLORS = {
    VERDICT_GPU: ("#1e7b34", "#dff3e4"),
    VERDICT_PARTIAL: ("#7a5b00", "#fff2c2"),
    VERDICT_CPU: ("#1c4f9c", "#e1ecfb"),
    VERDICT_NO_FIT: ("#a1121f", "#fbe1e4"),
    VERDICT_UNKNOWN: ("#555555", "#eeeeee"),
}

COLUMNS = ("Quant", "Size", "Bits/weight", "Est. RAM", "Est. VRAM", "Fit")
_Index = QModelIndex | QPersistentModelIndex


@dataclass(frozen=True)
class QuantRow:
    """One quant level of a repo, ready to show."""

    quant: str
    size: int
    bits_per_weight: float | None
    ram: int | None
    vram: int | None
    verdict: str
    badge: str  # estimate.fit.fit_words: "Fits on GPU", "Partly on GPU (20 layers)", "Fits in RAM"
    recommended: bool = False
    tooltip: str = ""
    error: str = ""
    files: tuple[str, ...] = ()  # repo paths of the file (all parts of a split set)
    in_library: bool = False  # a file of this name is in the library already


class QuantTableModel(QAbstractTableModel):
    """Rows of :class:`QuantRow`."""

    def __init__(self) -> None:
        super().__init__()
        self._rows: list[QuantRow] = []

    def set_rows(self, rows: list[QuantRow]) -> None:
        """Replace all rows."""
        self.beginResetModel()
        self._rows = list(rows)
        self.endResetModel()

    def rows(self) -> list[QuantRow]:
        """The rows shown."""
        return list(self._rows)

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: N802 - Qt API
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: N802 - Qt API
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(  # noqa: N802 - Qt API
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row = self._rows[index.row()]
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(row, column)
        if role == Qt.ItemDataRole.ToolTipRole:
            return row.error or row.tooltip
        if role == Qt.ItemDataRole.UserRole:
            return row
        if role == Qt.ItemDataRole.TextAlignmentRole and column in (1, 2, 3, 4):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if column == 5 and role in (Qt.ItemDataRole.ForegroundRole, Qt.ItemDataRole.BackgroundRole):
            fg, bg = BADGE_COLORS.get(row.verdict, BADGE_COLORS[VERDICT_UNKNOWN])
            return QBrush(QColor(fg if role == Qt.ItemDataRole.ForegroundRole else bg))
        if role == Qt.ItemDataRole.FontRole and row.recommended:
            font = QFont()
            font.setBold(True)
            return font
        return None

    @staticmethod
    def _text(row: QuantRow, column: int) -> str:
        if column == 0:
            name = f"★ {row.quant}" if row.recommended else row.quant
            return f"{name} · in library" if row.in_library else name
        if column == 1:
            return human_bytes(row.size)
        if column == 2:
            return f"{row.bits_per_weight:.2f}" if row.bits_per_weight else "–"
        if column == 3:
            return human_bytes(row.ram) if row.ram is not None else "–"
        if column == 4:
            return human_bytes(row.vram) if row.vram else "–"
        badge = row.error or row.badge
        return f"{badge} · Recommended" if row.recommended else badge
