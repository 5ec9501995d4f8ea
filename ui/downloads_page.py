"""Downloads: the queue with progress, speed and ETA, and pause / resume / cancel / retry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSpinBox,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionProgressBar,
    QStyleOptionViewItem,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from quantdesk.engine.gguf.model_info import human_bytes
from quantdesk.engine.wording import eta_text

COLUMNS = ("Model file", "Progress", "Size", "Speed", "ETA", "State")
ItemRole = Qt.ItemDataRole.UserRole + 1
_Index = QModelIndex | QPersistentModelIndex
_STATE_TEXT = {
    "queued": "Queued",
    "running": "Downloading",
    "paused": "Paused",
    "failed": "Failed",
    "done": "Done",
    "cancelled": "Cancelled",
}


class DownloadsModel(QAbstractTableModel):
    """Download items (engine DownloadItem objects) by id, in queue order."""

    def __init__(self) -> None:
        super().__init__()
        self._items: list[Any] = []

    def items(self) -> list[Any]:
        """The items shown."""
        return list(self._items)

    def set_items(self, items: list[Any]) -> None:
        """Replace all items."""
        self.beginResetModel()
        self._items = list(items)
        self.endResetModel()

    def upsert(self, item: Any) -> None:
        """Add ``item`` or update the row with its id (one row repainted)."""
        for row, old in enumerate(self._items):
            if old.id == item.id:
                self._items[row] = item
                self.dataChanged.emit(self.index(row, 0), self.index(row, len(COLUMNS) - 1))
                return
        self.beginInsertRows(QModelIndex(), len(self._items), len(self._items))
        self._items.append(item)
        self.endInsertRows()

    def drop(self, item_id: int) -> None:
        """Remove the row of ``item_id``."""
        for row, old in enumerate(self._items):
            if old.id == item_id:
                self.beginRemoveRows(QModelIndex(), row, row)
                del self._items[row]
                self.endRemoveRows()
                return

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: N802 - Qt API
        return 0 if parent.isValid() else len(self._items)

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
        item = self._items[index.row()]
        if role == ItemRole:
            return item
        if role == Qt.ItemDataRole.ToolTipRole:
            return item.error or f"{item.repo_id}: {', '.join(item.files)}\n{item.dest}"
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        column = index.column()
        if column == 0:
            parts = f" ({len(item.files)} parts)" if len(item.files) > 1 else ""
            return f"{item.repo_id} / {item.files[0].rsplit('/', 1)[-1]}{parts}"
        if column == 1:
            return int(round(100 * item.fraction))
        if column == 2:
            return f"{human_bytes(item.done_bytes)} / {human_bytes(item.total_bytes)}"
        if column == 3:
            return f"{human_bytes(int(item.speed_bps))}/s" if item.state == "running" else ""
        if column == 4:
            return eta_text(item.eta_s) if item.state == "running" else ""
        if item.state == "done" and not Path(item.dest).is_file():
            return "Done – the file was deleted since"
        text = _STATE_TEXT.get(item.state, item.state)
        return f"{text}: {item.error}" if item.error and item.state == "failed" else text


class _ProgressDelegate(QStyledItemDelegate):
    def paint(self, painter, option: QStyleOptionViewItem, index: QModelIndex) -> None:  # noqa: ANN001
        bar = QStyleOptionProgressBar()
        bar.rect = option.rect.adjusted(4, 6, -4, -6)
        bar.minimum, bar.maximum = 0, 100
        bar.progress = int(index.data() or 0)
        bar.text = f"{bar.progress} %"
        bar.textVisible = True
        style = option.widget.style() if option.widget else QApplication.style()
        style.drawControl(QStyle.ControlElement.CE_ProgressBar, bar, painter)


class DownloadsPage(QWidget):
    """The download queue; the buttons act on the selected download."""

    pauseRequested = Signal(int)
    resumeRequested = Signal(int)
    cancelRequested = Signal(int)
    retryRequested = Signal(int)
    removeRequested = Signal(int)
    openRequested = Signal(int)  # load a finished model in Chat
    parallelChanged = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        self.model = DownloadsModel()
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setAccessibleName("Downloads")
        self.table.setItemDelegateForColumn(1, _ProgressDelegate(self.table))
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Fixed)
        header.resizeSection(1, 180)
        self.empty = QLabel(
            "No downloads yet. Open Discover, pick a model and press Download on a quant level."
        )
        self.empty.setWordWrap(True)
        layout.addWidget(self.empty)
        layout.addWidget(self.table, 1)
        row = QHBoxLayout()
        self.buttons: dict[str, QPushButton] = {}
        for name, signal, tip in (
            ("Pause", self.pauseRequested, "Pause; the part already downloaded is kept"),
            ("Resume", self.resumeRequested, "Continue from where it stopped"),
            ("Retry", self.retryRequested, "Try a failed download again"),
            ("Cancel", self.cancelRequested, "Stop and delete the partial file"),
            ("Remove", self.removeRequested, "Remove from this list (a finished model stays)"),
            ("Open in Chat", self.openRequested, "Load the finished model"),
        ):
            button = QPushButton(name)
            button.setToolTip(tip)
            button.clicked.connect(lambda _=False, s=signal: self._emit(s))
            row.addWidget(button)
            self.buttons[name] = button
        row.addStretch(1)
        top = QHBoxLayout()
        top.addStretch(1)
        top.addWidget(QLabel("Parallel downloads:"))
        self.parallel = QSpinBox()
        self.parallel.setRange(1, 4)
        self.parallel.setAccessibleName("Parallel downloads")
        self.parallel.setToolTip("How many downloads run at once (applies at the next start)")
        self.parallel.valueChanged.connect(self.parallelChanged)
        top.addWidget(self.parallel)
        layout.insertLayout(0, top)
        layout.addLayout(row)
        self.table.selectionModel().selectionChanged.connect(self._update_buttons)
        self.model.modelReset.connect(self._update_buttons)
        self.model.dataChanged.connect(self._update_buttons)
        self.model.rowsInserted.connect(self._update_buttons)
        self.model.rowsRemoved.connect(self._update_buttons)
        self._update_buttons()

    def selected(self) -> Any | None:
        """The selected download item, if any."""
        index = self.table.currentIndex()
        return index.data(ItemRole) if index.isValid() else None

    def select_id(self, item_id: int) -> None:
        """Select the row of ``item_id``."""
        for row, item in enumerate(self.model.items()):
            if item.id == item_id:
                self.table.selectRow(row)

    def _emit(self, signal: Signal) -> None:
        item = self.selected()
        if item is not None:
            signal.emit(item.id)

    def _update_buttons(self, *_args: object) -> None:
        self.empty.setVisible(self.model.rowCount() == 0)
        item = self.selected()
        state = item.state if item is not None else ""
        allowed = {
            "Pause": state in ("queued", "running"),
            "Resume": state == "paused",
            "Retry": state in ("failed", "cancelled"),
            "Cancel": state in ("queued", "running", "paused", "failed"),
            "Remove": state in ("done", "failed", "cancelled"),
            "Open in Chat": state == "done" and Path(item.dest).is_file(),
        }
        for name, button in self.buttons.items():
            button.setEnabled(allowed[name])
