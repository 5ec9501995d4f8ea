"""The chat list: saved conversations with search, new, rename, pin and delete.

Presentation only: it shows :class:`Chat` headers and emits what the user asked for.
"""

from __future__ import annotations

import time
from typing import Any

from PySide6.QtCore import QAbstractListModel, QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QAction, QFont
from PySide6.QtWidgets import (
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QListView,
    QMenu,
    QMessageBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from quantdesk.engine.chat.conversations import Chat
from quantdesk.engine.wording import counted

ChatRole = Qt.ItemDataRole.UserRole + 1
_Index = QModelIndex | QPersistentModelIndex


def _when(ts: float) -> str:
    days = (time.time() - ts) / 86400
    if days < 1:
        return time.strftime("%H:%M", time.localtime(ts))
    return time.strftime("%d %b" if days < 300 else "%d %b %Y", time.localtime(ts))


class ChatListModel(QAbstractListModel):
    """Chats, pinned first (the store's order)."""

    def __init__(self) -> None:
        super().__init__()
        self._chats: list[Chat] = []

    def set_chats(self, chats: list[Chat]) -> None:
        """Show ``chats``."""
        self.beginResetModel()
        self._chats = list(chats)
        self.endResetModel()

    def chats(self) -> list[Chat]:
        """What is shown."""
        return list(self._chats)

    def row_of(self, chat_id: int) -> int:
        """Row of a chat, or -1."""
        return next((i for i, c in enumerate(self._chats) if c.id == chat_id), -1)

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008, N802 - Qt API
        return 0 if parent.isValid() else len(self._chats)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        chat = self._chats[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            pin = "📌 " if chat.pinned else ""
            count = counted(chat.message_count, "message")
            return f"{pin}{chat.title}\n{count} · {_when(chat.updated)}"
        if role == Qt.ItemDataRole.ToolTipRole:
            return chat.title
        if role == Qt.ItemDataRole.FontRole and chat.pinned:
            font = QFont()
            font.setBold(True)
            return font
        if role == ChatRole:
            return chat
        return None


class ChatListPanel(QWidget):
    """Sidebar of saved chats."""

    chatSelected = Signal(int)
    newChatRequested = Signal()
    renameRequested = Signal(int, str)
    deleteRequested = Signal(int)
    pinRequested = Signal(int, bool)
    exportRequested = Signal(int, str)  # chat id, "md" or "json"
    importRequested = Signal()
    searchChanged = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = ChatListModel()
        self._current: int | None = None  # the chat open in the window
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 8)
        head = QHBoxLayout()
        head.setSpacing(4)
        head.addWidget(QLabel("<b>Chats</b>"), 1)
        new = QToolButton()
        new.setText("+")
        new.setToolTip("Start a new conversation (Ctrl+N)")
        new.setAccessibleName("New chat")
        new.clicked.connect(self.newChatRequested)
        more = QToolButton()
        more.setText("⋯")
        more.setAccessibleName("More chat actions")
        more.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        actions = QMenu(more)
        actions.addAction("Import chat (JSON)…", self.importRequested.emit)
        more.setMenu(actions)
        head.addWidget(new)
        head.addWidget(more)
        layout.addLayout(head)
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search chats…")
        self.search.setClearButtonEnabled(True)
        self.search.setAccessibleName("Search chats")
        self.search.textChanged.connect(self.searchChanged)
        layout.addWidget(self.search)
        self.view = QListView()
        self.view.setModel(self.model)
        self.view.setAccessibleName("Saved chats")
        self.view.setWordWrap(True)
        self.view.setAlternatingRowColors(True)
        self.view.activated.connect(self._activated)
        self.view.clicked.connect(self._activated)
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.view.customContextMenuRequested.connect(self._menu)
        self.empty_hint = QLabel()
        self.empty_hint.setWordWrap(True)
        self.empty_hint.setEnabled(False)  # the palette's quiet text colour, in either theme
        layout.addWidget(self.empty_hint)
        layout.addWidget(self.view, 1)
        self._show_empty_hint()

    def set_chats(self, chats: list[Chat], current: int | None = None) -> None:
        """Show ``chats`` and select ``current``."""
        self.model.set_chats(chats)
        self._current = current
        self._select_current()
        self._show_empty_hint()

    def _show_empty_hint(self) -> None:
        if self.model.rowCount():
            self.empty_hint.hide()
            return
        query = self.search.text().strip()
        self.empty_hint.setText(
            f"No chat matches “{query}”." if query
            else "No chats yet. Each conversation is saved here as you send messages."
        )  # fmt: skip
        self.empty_hint.show()

    def _select_current(self) -> None:
        row = self.model.row_of(self._current) if self._current is not None else -1
        if row >= 0:
            self.view.setCurrentIndex(self.model.index(row))
        else:
            self.view.clearSelection()

    def _activated(self, index: QModelIndex) -> None:
        self.chatSelected.emit(index.data(ChatRole).id)

    def _menu(self, pos) -> None:  # noqa: ANN001 - QPoint
        index = self.view.indexAt(pos)
        if not index.isValid():
            return
        chat: Chat = index.data(ChatRole)
        menu = QMenu(self)
        for text, slot in (
            ("Rename…", lambda: self._rename(chat)),
            ("Unpin" if chat.pinned else "Pin to top", lambda: self.pinRequested.emit(
                chat.id, not chat.pinned)),
            ("Export as Markdown…", lambda: self.exportRequested.emit(chat.id, "md")),
            ("Export as JSON…", lambda: self.exportRequested.emit(chat.id, "json")),
            ("Delete…", lambda: self._delete(chat)),
        ):  # fmt: skip
            action = QAction(text, menu)
            action.triggered.connect(slot)
            menu.addAction(action)
        menu.exec(self.view.viewport().mapToGlobal(pos))
        # a right click selects the row under it without opening that chat: show the open one
        self._select_current()

    def _rename(self, chat: Chat) -> None:
        title, ok = QInputDialog.getText(self, "Rename chat", "Title:", text=chat.title)
        if ok and title.strip():
            self.renameRequested.emit(chat.id, title.strip())

    def _delete(self, chat: Chat) -> None:
        answer = QMessageBox.question(
            self, "Delete chat", f"Delete “{chat.title}” and its "
            f"{counted(chat.message_count, 'message')}, every version included?",
        )
        if answer == QMessageBox.StandardButton.Yes:
            self.deleteRequested.emit(chat.id)
