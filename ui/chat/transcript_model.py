"""The chat transcript as a Qt item model: one row per message, streamed text appended in place."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from PySide6.QtCore import QAbstractListModel, QModelIndex, QObject, QPersistentModelIndex, Qt

__all__ = ["ChatListModel", "ChatMessage", "Role"]

Role = Literal["user", "assistant", "system", "notice"]
_ROLES = ("user", "assistant", "system", "notice")
_LABELS = {"user": "You", "assistant": "Assistant", "system": "System", "notice": "Note"}

_Index = QModelIndex | QPersistentModelIndex


@dataclass
class ChatMessage:
    """One message of the transcript.

    ``stats`` is a ready-to-show line such as ``"42 tokens · 12.3 tok/s · 3.4 s"``;
    ``streaming`` is true while the reply is still being generated; ``error`` marks a reply that
    failed (its text then says what happened); ``version`` of ``versions`` is shown as
    "‹ 2/3 ›" when the message has other versions (edits, regenerated replies). ``thinking`` is a
    reasoning model's thinking before the reply's ``text``: shown as a block that is open
    (``thinking_open``) while it streams, closed when the answer begins, and that says how long
    it took (``thought_s``, None while the model is still thinking).
    """

    role: Role
    text: str = ""
    stats: str = ""
    streaming: bool = False
    error: bool = False
    version: int = 1
    versions: int = 1
    thinking: str = ""
    thinking_open: bool = False
    thought_s: float | None = None


class ChatListModel(QAbstractListModel):
    """List model of :class:`ChatMessage`; cheap to stream into (one ``dataChanged`` per chunk)."""

    TextRole = Qt.ItemDataRole.UserRole + 1
    RoleRole = Qt.ItemDataRole.UserRole + 2
    StatsRole = Qt.ItemDataRole.UserRole + 3
    StreamingRole = Qt.ItemDataRole.UserRole + 4
    ErrorRole = Qt.ItemDataRole.UserRole + 5
    #: An int that changes whenever anything about the message changes (for view caches).
    RevisionRole = Qt.ItemDataRole.UserRole + 6
    #: (version, versions): which of the message's versions this is, of how many.
    VersionRole = Qt.ItemDataRole.UserRole + 7
    #: (thinking text, open, seconds or None while thinking): ("", False, None) for none
    ThinkingRole = Qt.ItemDataRole.UserRole + 8

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._messages: list[ChatMessage] = []
        self._revisions: list[int] = []
        self._next_revision = 0

    # -- Qt model interface -------------------------------------------------------------------

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008 (Qt signature)
        """Number of messages (0 for any valid parent: this is a flat list)."""
        return 0 if parent.isValid() else len(self._messages)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        """The message's text, role, stats, flags or revision, depending on ``role``."""
        if not index.isValid() or not 0 <= index.row() < len(self._messages):
            return None
        msg = self._messages[index.row()]
        if role in (Qt.ItemDataRole.DisplayRole, self.TextRole):
            return msg.text
        if role == self.RevisionRole:
            return self._revisions[index.row()]
        if role == self.RoleRole:
            return msg.role
        if role == self.StatsRole:
            return msg.stats
        if role == self.StreamingRole:
            return msg.streaming
        if role == self.ErrorRole:
            return msg.error
        if role == self.VersionRole:
            return (msg.version, msg.versions)
        if role == self.ThinkingRole:
            return (msg.thinking, msg.thinking_open, msg.thought_s)
        if role == Qt.ItemDataRole.AccessibleTextRole:
            state = " (error)" if msg.error else " (generating)" if msg.streaming else ""
            if msg.versions > 1:
                state += f" (version {msg.version} of {msg.versions})"
            thought = f" (thought: {msg.thinking})" if msg.thinking and msg.thinking_open else ""
            return f"{_LABELS[msg.role]}{state}{thought}: {msg.text}"
        return None

    def roleNames(self) -> dict[int, bytes]:
        """Role names for QML and debugging."""
        names = dict(super().roleNames())
        names.update(
            {
                self.TextRole: b"text",
                self.RoleRole: b"role",
                self.StatsRole: b"stats",
                self.StreamingRole: b"streaming",
                self.ErrorRole: b"error",
                self.RevisionRole: b"revision",
                self.VersionRole: b"version",
                self.ThinkingRole: b"thinking",
            }
        )
        return names

    # -- editing --------------------------------------------------------------------------------

    def append_message(self, role: Role, text: str = "", streaming: bool = False) -> int:
        """Add a message at the end and return its row."""
        if role not in _ROLES:
            raise ValueError(f"unknown message role {role!r}; expected one of {_ROLES}")
        row = len(self._messages)
        self.beginInsertRows(QModelIndex(), row, row)
        self._messages.append(ChatMessage(role=role, text=text, streaming=streaming))
        self._revisions.append(self._bump())
        self.endInsertRows()
        return row

    def append_text(self, row: int, chunk: str) -> None:
        """Append a streamed chunk to the message at ``row``."""
        if chunk:
            self._update(row, text=self._messages[row].text + chunk, roles=self._TEXT_ROLES)

    def set_text(self, row: int, text: str) -> None:
        """Replace the whole text of the message at ``row``."""
        self._update(row, text=text, roles=self._TEXT_ROLES)

    def append_thinking(self, row: int, chunk: str) -> None:
        """Append a streamed piece of thinking to the message at ``row`` (its block open)."""
        if chunk:
            msg = self._messages[row]
            self._update(row, thinking=msg.thinking + chunk, thinking_open=msg.thought_s is None)

    def set_thinking(self, row: int, text: str, seconds: float | None, open_: bool) -> None:
        """The message's whole thinking, how long it took (None: still thinking), whether its
        block is open."""
        self._update(row, thinking=text, thought_s=seconds, thinking_open=open_)

    def toggle_thinking(self, row: int) -> None:
        """Open or close the thinking block of the message at ``row``."""
        msg = self._messages[row]
        if msg.thinking:
            self._update(row, thinking_open=not msg.thinking_open)

    def finish(self, row: int, stats: str = "") -> None:
        """Mark the message at ``row`` as complete and attach its stats line."""
        self._update(row, streaming=False, stats=stats)

    def resume(self, row: int) -> None:
        """The message at ``row`` streams again (Continue): more text will be appended."""
        self._update(row, streaming=True, stats="", error=False)

    def set_versions(self, row: int, version: int, versions: int) -> None:
        """The message at ``row`` is version ``version`` of ``versions``."""
        self._update(row, version=version, versions=versions)

    def set_error(self, row: int, text: str) -> None:
        """Turn the message at ``row`` into a failed one whose text is ``text``."""
        self._update(row, text=text, streaming=False, error=True)

    def remove_from(self, row: int) -> None:
        """Remove the message at ``row`` and every message after it from view (another version
        of the chat is shown from there; the store keeps them)."""
        last = len(self._messages) - 1
        if not 0 <= row <= last:
            return
        self.beginRemoveRows(QModelIndex(), row, last)
        del self._messages[row:]
        del self._revisions[row:]
        self.endRemoveRows()

    def clear(self) -> None:
        """Remove every message."""
        self.beginResetModel()
        self._messages.clear()
        self._revisions.clear()
        self.endResetModel()

    # -- reading --------------------------------------------------------------------------------

    def message(self, row: int) -> ChatMessage:
        """A copy of the message at ``row``."""
        return dataclasses.replace(self._messages[row])

    def messages(self) -> list[ChatMessage]:
        """Copies of all messages, in order."""
        return [dataclasses.replace(m) for m in self._messages]

    # -- internals ------------------------------------------------------------------------------

    _TEXT_ROLES = (Qt.ItemDataRole.DisplayRole, TextRole)

    def _bump(self) -> int:
        self._next_revision += 1
        return self._next_revision

    def _update(self, row: int, roles: tuple[int, ...] = (), **changes: Any) -> None:
        msg = self._messages[row]
        for name, value in changes.items():
            setattr(msg, name, value)
        self._revisions[row] = self._bump()
        index = self.index(row, 0)
        # An empty roles list means "everything may have changed" (flags, stats).
        changed = [*roles, self.RevisionRole] if roles else []
        self.dataChanged.emit(index, index, changed)
