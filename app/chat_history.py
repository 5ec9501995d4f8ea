"""Keeps the chat window's conversation in the SQLite store and runs the chat list.

The AppController calls the ``on_*`` hooks as the conversation changes; a streaming reply is
saved at most every ``SAVE_INTERVAL_S`` seconds while it grows, so killing the app mid-reply
loses less than a second of it. Transcript rows and stored messages correspond one to one
(a message's ``seq`` is its row).
"""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from quantdesk.engine.conversations import (
    ChatStoreError,
    ConversationStore,
    StoredMessage,
    title_from,
)
from quantdesk.engine.events import GenerationStats
from quantdesk.engine.templates import Message

if TYPE_CHECKING:
    from quantdesk.controller import AppController

SAVE_INTERVAL_S = 0.5
CUT_OFF_NOTE = "(reply cut off: the app stopped while it was being written)"


class ChatHistory:
    """The current chat's id, its saving, and the chat list panel."""

    def __init__(self, app: AppController) -> None:
        self.app = app
        self.warning = ""
        try:
            self.store = ConversationStore(app.paths.chats_db)
        except ChatStoreError as exc:  # newer format: keep it untouched, save nothing this time
            self.warning = exc.message
            self.store = ConversationStore(":memory:")
        if self.store.recovered_from is not None:
            self.warning = (
                "The chat history database was damaged; it was kept as "
                f"'{self.store.recovered_from.name}' and a new history was started."
            )
        self.chat_id: int | None = None
        self._reply_id: int | None = None
        self._parts: list[str] = []
        self._saved_at = 0.0
        self._search = ""
        panel = app.window.chat_list
        panel.chatSelected.connect(self.open)
        panel.newChatRequested.connect(app.new_chat)
        panel.renameRequested.connect(self._rename)
        panel.deleteRequested.connect(self._delete)
        panel.pinRequested.connect(self._pin)
        panel.searchChanged.connect(self._search_changed)

    # -- the list ----------------------------------------------------------------------------

    def refresh(self) -> None:
        """Re-read the chat list."""
        self.app.window.chat_list.set_chats(self.store.chats(self._search), self.chat_id)

    def _search_changed(self, text: str) -> None:
        self._search = text
        self.refresh()

    def _rename(self, chat_id: int, title: str) -> None:
        self.store.rename(chat_id, title)
        self.refresh()

    def _pin(self, chat_id: int, pinned: bool) -> None:
        self.store.set_pinned(chat_id, pinned)
        self.refresh()

    def _delete(self, chat_id: int) -> None:
        if chat_id == self.chat_id:
            self.app.new_chat()
        self.store.delete_chat(chat_id)
        self.refresh()

    def restore_latest(self) -> None:
        """Reopen the most recent chat at start-up."""
        latest = self.store.latest()
        if latest is not None:
            self.open(latest.id)
        else:
            self.refresh()

    def open(self, chat_id: int) -> None:
        """Show a saved chat in the chat window (stops a reply in progress)."""
        if chat_id == self.chat_id and self._reply_id is None:
            return
        self.app.stop_generation()
        try:
            chat = self.store.chat(chat_id)
        except KeyError:
            self.refresh()
            return
        self.app.show_conversation(self.store.messages(chat_id), chat.system_prompt)
        self.chat_id = chat_id
        self.refresh()

    # -- hooks from the controller -----------------------------------------------------------

    def on_new_chat(self) -> None:
        """The next message starts a new chat (none is created before it)."""
        self.chat_id, self._reply_id = None, None
        self.refresh()

    def on_user_message(self, text: str, system_prompt: str, model_path: str) -> None:
        """Save the user's message, creating the chat on the first one."""
        if self.chat_id is None:
            chat = self.store.create_chat(title_from(text), system_prompt, model_path)
            self.chat_id = chat.id
        self.store.add_message(self.chat_id, "user", text)
        self.refresh()

    def on_reply_started(self, model_path: str, settings: dict[str, Any]) -> None:
        """An empty, incomplete assistant message that fills as tokens arrive."""
        if self.chat_id is None:
            return
        self._parts = []
        self._saved_at = time.monotonic()
        self._reply_id = self.store.add_message(
            self.chat_id, "assistant", "", model=model_path, settings=settings, complete=False
        )

    def on_reply_text(self, parts: list[str]) -> None:
        """The reply so far; saved when the last save is older than SAVE_INTERVAL_S."""
        self._parts = parts
        now = time.monotonic()
        if self._reply_id is not None and now - self._saved_at >= SAVE_INTERVAL_S:
            self.store.update_message(self._reply_id, "".join(parts))
            self._saved_at = now

    def on_reply_finished(self, text: str, stats: GenerationStats) -> None:
        """The whole reply and its statistics."""
        if self._reply_id is not None:
            self.store.update_message(self._reply_id, text, complete=True, stats=asdict(stats))
        self._reply_id = None
        self.refresh()

    def on_reply_failed(self, text: str) -> None:
        """Keep what was written of a failed reply, marked incomplete."""
        if self._reply_id is not None:
            self.store.update_message(self._reply_id, text, complete=False)
        self._reply_id = None

    def on_dropped_from(self, row: int) -> None:
        """Rows ``row`` and later were removed (regenerate, edit)."""
        if self.chat_id is not None:
            self.store.delete_from(self.chat_id, row)

    def on_system_prompt(self, prompt: str) -> None:
        """The system prompt setting changed: it belongs to the current chat."""
        if self.chat_id is not None:
            self.store.set_system_prompt(self.chat_id, prompt)

    def close(self) -> None:
        """Save a reply in progress and close the store."""
        if self._reply_id is not None:
            self.store.update_message(self._reply_id, "".join(self._parts), complete=False)
        self.store.close()


def context_messages(stored: list[StoredMessage]) -> list[Message]:
    """What the model sees again from a saved chat (failed empty replies left out)."""
    return [Message(m.role, m.text) for m in stored if m.text or m.role == "user"]
