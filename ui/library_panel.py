"""The model library sidebar: the models the user can load, and how to add more."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QAbstractListModel, QModelIndex, QPersistentModelIndex, QSize, Qt, Signal
from PySide6.QtGui import QAction, QFont, QFontMetrics, QPalette
from PySide6.QtWidgets import (
    QLabel,
    QListView,
    QMenu,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from quantdesk.engine.library import LibraryEntry
from quantdesk.engine.model_info import human_bytes

EntryRole = Qt.ItemDataRole.UserRole + 1
_Index = QModelIndex | QPersistentModelIndex


class LibraryListModel(QAbstractListModel):
    """Library entries for a list view."""

    def __init__(self) -> None:
        super().__init__()
        self._entries: list[LibraryEntry] = []

    def set_entries(self, entries: list[LibraryEntry]) -> None:
        """Replace the whole list."""
        self.beginResetModel()
        self._entries = list(entries)
        self.endResetModel()

    def entries(self) -> list[LibraryEntry]:
        """The entries shown."""
        return list(self._entries)

    def row_of(self, path: str) -> int:
        """Row of the entry with ``path``, or -1."""
        return next((i for i, e in enumerate(self._entries) if str(e.path) == path), -1)

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008, N802 - Qt API
        return 0 if parent.isValid() else len(self._entries)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        entry = self._entries[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            details = " · ".join(
                part
                for part in (entry.file_type, entry.parameters, human_bytes(entry.size))
                if part
            )
            tag = "  (starter)" if entry.source == "starter" else ""
            missing = "\nFile missing" if not entry.exists else ""
            return f"{entry.name}{tag}\n{details}{missing}"
        if role == Qt.ItemDataRole.ToolTipRole:
            template = (
                "has a chat template"
                if entry.has_chat_template
                else "base model (no chat template)"
            )
            return (
                f"{entry.path}\n{entry.architecture}, context {entry.context_length:,}, {template}"
            )
        if role == Qt.ItemDataRole.ForegroundRole and not entry.exists:
            return QPalette().color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text)
        if role == Qt.ItemDataRole.SizeHintRole:
            lines = 3 if not entry.exists else 2
            return QSize(0, QFontMetrics(QFont()).lineSpacing() * lines + 10)
        if role == EntryRole:
            return entry
        return None


class LibraryPanel(QWidget):
    """Sidebar listing the library; double-click (or Enter) loads a model."""

    loadRequested = Signal(object)  # LibraryEntry
    addRequested = Signal()
    removeRequested = Signal(object)
    revealRequested = Signal(object)
    quantizeRequested = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = LibraryListModel()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        title = QLabel("<b>Models</b>")
        layout.addWidget(title)
        self._stack = QStackedWidget()
        self.view = QListView()
        self.view.setModel(self.model)
        self.view.setAccessibleName("Model library")
        self.view.setWordWrap(True)
        self.view.setSpacing(2)
        self.view.setAlternatingRowColors(True)
        self.view.activated.connect(self._activated)
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.view.customContextMenuRequested.connect(self._menu)
        empty = QLabel(
            "No models yet.\n\nDrop a .gguf file anywhere on this window, or use "
            "“Add model…” below."
        )
        empty.setWordWrap(True)
        empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._stack.addWidget(self.view)
        self._stack.addWidget(empty)
        layout.addWidget(self._stack, 1)
        hint = QLabel("Tip: drop .gguf files or folders onto the window.")
        hint.setWordWrap(True)
        hint.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        layout.addWidget(hint)
        add = QPushButton("Add model…")
        add.setToolTip("Add a .gguf file from disk to the library")
        add.clicked.connect(self.addRequested)
        layout.addWidget(add)
        self.model.modelReset.connect(self._update_empty_state)
        self._update_empty_state()

    def set_entries(self, entries: list[LibraryEntry]) -> None:
        """Show ``entries``."""
        self.model.set_entries(entries)

    def select_path(self, path: str) -> None:
        """Select the entry for ``path`` if listed."""
        row = self.model.row_of(path)
        if row >= 0:
            self.view.setCurrentIndex(self.model.index(row))

    def _update_empty_state(self) -> None:
        self._stack.setCurrentIndex(0 if self.model.rowCount() else 1)

    def _activated(self, index: QModelIndex) -> None:
        self.loadRequested.emit(index.data(EntryRole))

    def _menu(self, pos) -> None:  # noqa: ANN001 - QPoint
        index = self.view.indexAt(pos)
        if not index.isValid():
            return
        entry = index.data(EntryRole)
        menu = QMenu(self)
        for text, signal in (
            ("Load", self.loadRequested),
            ("Quantize…", self.quantizeRequested),
            ("Show in folder", self.revealRequested),
            ("Remove from library", self.removeRequested),
        ):
            action = QAction(text, menu)
            action.triggered.connect(lambda _=False, s=signal: s.emit(entry))
            menu.addAction(action)
        menu.exec(self.view.viewport().mapToGlobal(pos))
