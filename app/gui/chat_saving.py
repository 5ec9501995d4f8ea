"""Saving the chat when its file cannot be written (a full disk, another program's lock).

Every write of the chat window goes through ``ChatSaving.attempt``. A failed write is one
message in the banner (once, not per token), never an exception out of a slot. Writes that
only set a value (a growing reply's text, a draft, a system prompt) are kept in memory and
tried again every few seconds and before the next write, so what the window shows is saved
as soon as there is room; the rest (a new message, a rename…) is refused in words and the
view shows what is stored.
"""

from __future__ import annotations

import logging
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from PySide6.QtCore import QObject, QTimer

from quantdesk.engine.errors import QuantDeskError
from quantdesk.engine.gguf.model_info import human_bytes
from quantdesk.engine.sqlite_files import problem_of, write_failure_words

log = logging.getLogger(__name__)
T = TypeVar("T")

RETRY_INTERVAL_MS = 2000
MIN_ROOM = 1 << 20  # SQLite's write-ahead log and a checkpoint need room beyond the text


class ChatNotSaved(QuantDeskError):
    """A message could not be added to the chat's file; nothing was sent."""


def room_needed(text: str) -> int:
    """About how many free bytes saving ``text`` into the chat file takes."""
    return max(MIN_ROOM, 3 * len(text.encode("utf-8")))


def failure_words(exc: sqlite3.Error, db: Path, text: str = "") -> str:
    """Why the chat was not saved, and what to do, in words (with the room needed)."""
    if problem_of(exc) != "full":
        return "The chat was not saved. " + write_failure_words(exc)
    folder = db.parent
    try:
        free = human_bytes(shutil.disk_usage(folder).free)
    except OSError:
        free = "nothing"
    return (f"The chat cannot be saved: the disk holding {folder} is full ({free} free). "
            f"Free at least {human_bytes(room_needed(text))} there; what the window shows is "
            f"kept and saved as soon as there is room.")  # fmt: skip


class ChatSaving(QObject):
    """Runs the chat store's writes; keeps the ones that set a value until they succeed."""

    def __init__(self, db: Path, show_error: Callable[[str], None],
                 show_info: Callable[[str], None]) -> None:  # fmt: skip
        super().__init__()
        self.db = db
        self._show_error, self._show_info = show_error, show_info
        self._pending: dict[tuple[str, int], Callable[[], object]] = {}
        self._failing = False  # a message is up; the next success says so
        self._timer = QTimer(self)
        self._timer.setInterval(RETRY_INTERVAL_MS)
        self._timer.timeout.connect(self.retry)

    @property
    def pending(self) -> int:
        """How many changes wait for room to be saved."""
        return len(self._pending)

    def attempt(self, write: Callable[[], object], text: str = "") -> bool:
        """Run ``write``; False (and the message) when the chat's file refuses it. ``text``:
        what it saves, for the room needed."""
        self.retry()
        try:
            write()
        except sqlite3.Error as exc:
            self._failed(exc, text)
            return False
        self._saved()
        return True

    def attempt_or_raise(self, write: Callable[[], T], text: str = "") -> T:
        """Run ``write``; ChatNotSaved (in words) when the chat's file refuses it."""
        self.retry()
        try:
            result = write()
        except sqlite3.Error as exc:
            self._failing = True
            log.warning("chat not saved: %s", exc)
            raise ChatNotSaved(failure_words(exc, self.db, text)) from None
        self._saved()
        return result

    def keep(self, key: tuple[str, int], write: Callable[[], object], text: str = "") -> None:
        """Run ``write``, which sets the value ``key`` names; if the file refuses it, keep
        it (replacing an older one for ``key``) and try again until it is saved."""
        self._pending.pop(key, None)
        self.retry()
        try:
            write()
        except sqlite3.Error as exc:
            self._pending[key] = write
            self._failed(exc, text)
            return
        self._saved()

    def retry(self) -> bool:
        """Save what is kept, oldest first; True when nothing is left."""
        saved_some = False
        while self._pending:
            key = next(iter(self._pending))
            try:
                self._pending[key]()
            except sqlite3.Error:
                return False
            del self._pending[key]
            saved_some = True
        if saved_some:
            self._saved()
        return True

    def stop(self) -> None:
        """No more retries (the store is closing)."""
        self._timer.stop()

    def _failed(self, exc: sqlite3.Error, text: str) -> None:
        if not self._failing:
            log.warning("chat not saved: %s", exc)
            self._show_error(failure_words(exc, self.db, text))
        self._failing = True
        if self._pending:
            self._timer.start()

    def _saved(self) -> None:
        if self._failing and not self._pending:
            self._failing = False
            self._timer.stop()
            self._show_info("The chat is saved again.")
