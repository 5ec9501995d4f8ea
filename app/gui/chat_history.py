"""Keeps the chat window's conversation in the SQLite store and runs the chat list.

The ChatController calls the ``on_*`` hooks as the conversation changes; a streaming reply is
saved at most every ``SAVE_INTERVAL_S`` seconds while it grows, so killing the app mid-reply
loses less than a second of it. The transcript shows the chat's branch shown, one stored
message per row (a message's ``seq`` is its place in that branch); an edit or a regenerated
reply is stored as a new version, never in place of the old one. What was typed and not sent
(the draft) belongs to its chat.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Signal

from quantdesk.engine.chat.conversations import (
    ConversationStore,
    StoredMessage,
    title_from,
)
from quantdesk.engine.chat.export import export_json, export_markdown, import_json
from quantdesk.engine.chat.templates import Message
from quantdesk.engine.errors import QuantDeskError
from quantdesk.engine.events import GenerationStats
from quantdesk.engine.sqlite_files import open_store
from quantdesk.engine.wording import counted
from quantdesk.gui.chat_saving import ChatSaving, failure_words
from quantdesk.ui.jobs import run_job

if TYPE_CHECKING:
    from quantdesk.gui.chat_controller import ChatController
    from quantdesk.gui.notifier import Notifier
    from quantdesk.ui.chat.chat_list import ChatListPanel

log = logging.getLogger(__name__)

SAVE_INTERVAL_S = 0.5
CUT_OFF_NOTE = "(reply cut off: the app or the model stopped while it was being written)"


class ChatHistory(QObject):
    """The current chat's id, its saving, and the chat list panel."""

    exported = Signal(str)  # path written, on the GUI thread

    def __init__(
        self, chat: ChatController, panel: ChatListPanel, chats_db: Path, notifier: Notifier
    ) -> None:
        super().__init__()
        self.chat, self.panel, self.notifier = chat, panel, notifier
        # a newer file: its ChatStoreError says that this session's chats are not saved
        self.store, self.warning = open_store(
            ConversationStore, chats_db, what="The chat history", not_kept=""
        )
        # a write the file refuses (a full disk…) is a message; values are kept until saved
        self.saving = ChatSaving(self.store.path, notifier.error, notifier.info)
        self.chat_id: int | None = None
        self._reply_id: int | None = None
        self._parts: list[str] = []
        self._thinking: list[str] = []  # the thinking of the reply being written, in pieces
        self._saved_at = 0.0
        self._search = ""
        self._new_chat_draft = ""  # typed in a chat that has no message yet
        self.response_format: dict[str, Any] | None = None  # the shown chat's JSON output
        self._closed = False
        self.reply_stats_before: dict[str, Any] = {}  # of a reply being continued
        panel.chatSelected.connect(self.open)
        panel.newChatRequested.connect(chat.new_chat)
        panel.renameRequested.connect(self._rename)
        panel.deleteRequested.connect(self._delete)
        panel.pinRequested.connect(self._pin)
        panel.searchChanged.connect(self._search_changed)
        panel.exportRequested.connect(self.ask_export)
        panel.importRequested.connect(self._ask_import)

    # -- the list ----------------------------------------------------------------------------

    def refresh(self) -> None:
        """Re-read the chat list."""
        self.panel.set_chats(self.store.chats(self._search), self.chat_id)

    def _search_changed(self, text: str) -> None:
        self._search = text
        self.refresh()

    def _rename(self, chat_id: int, title: str) -> None:
        self.saving.attempt(partial(self.store.rename, chat_id, title), title)
        self.refresh()

    def _pin(self, chat_id: int, pinned: bool) -> None:
        self.saving.attempt(partial(self.store.set_pinned, chat_id, pinned))
        self.refresh()

    def _delete(self, chat_id: int) -> None:
        if chat_id == self.chat_id:
            self.chat.new_chat()
        self.saving.attempt(partial(self.store.delete_chat, chat_id))
        self.refresh()

    # -- drafts ------------------------------------------------------------------------------

    def save_draft(self) -> None:
        """Keep what is typed in the message box with the chat shown (an edit in progress is
        not a draft: it is cancelled first, which puts the draft back)."""
        self.chat.cancel_edit()
        text = self.chat.page.input.toPlainText()
        if self.chat_id is None:
            self._new_chat_draft = text
        elif text != self.store.chat(self.chat_id).draft:
            self._keep_draft(self.chat_id, text)

    def _keep_draft(self, chat_id: int, text: str) -> None:
        self.saving.keep(("draft", chat_id), partial(self.store.set_draft, chat_id, text), text)


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
        self.chat.stop_generation()
        try:
            chat = self.store.chat(chat_id)
        except KeyError:
            self.refresh()
            return
        self.save_draft()
        self.chat.show_conversation(self.store.messages(chat_id), chat.system_prompt)
        self.chat_id = chat_id
        self.chat.page.set_message_text(chat.draft)
        self._show_format(chat.response_format)
        self.refresh()

    def _show_format(self, response_format: dict[str, Any] | None) -> None:
        self.response_format = response_format
        self.chat.page.show_json_output(response_format)

    def set_response_format(self, response_format: dict[str, Any] | None) -> None:
        """Hold the shown chat's replies to JSON (OpenAI's ``response_format``), or let them be
        text (None); a chat with no message yet keeps it once its first one is saved."""
        self._show_format(response_format)
        if self.chat_id is not None:
            self.saving.keep(("format", self.chat_id), partial(
                self.store.set_response_format, self.chat_id, response_format))  # fmt: skip

    def reshow(self) -> None:
        """Show the current chat's branch again (after another version was chosen)."""
        if self.chat_id is not None:
            chat = self.store.chat(self.chat_id)
            self.chat.show_conversation(self.store.messages(self.chat_id), chat.system_prompt)
            self.refresh()

    # -- export / import -----------------------------------------------------------------------

    def ask_export(self, chat_id: int, fmt: str) -> None:
        """Ask where to export chat ``chat_id`` ("md" or "json"), then write it there."""
        from PySide6.QtWidgets import QFileDialog

        chat = self.store.chat(chat_id)
        suffix, kind = (".md", "Markdown (*.md)") if fmt == "md" else (".json", "JSON (*.json)")
        name = "".join(c if c.isalnum() or c in " -_" else "_" for c in chat.title)[:60] + suffix
        path, _ = QFileDialog.getSaveFileName(
            self.notifier.dialog_parent, "Export chat", str(Path.home() / name), kind
        )
        if path:
            self.export_chat(chat_id, fmt, Path(path))

    def export_chat(self, chat_id: int, fmt: str, path: Path) -> None:
        """Write a chat to ``path`` (off the GUI thread: hashing the model file takes a while)."""
        db = self.store.path

        def work() -> Path:
            store = ConversationStore(db)
            try:
                if fmt == "md":
                    text = export_markdown(store, chat_id)
                else:
                    text = json.dumps(export_json(store, chat_id), indent=2, ensure_ascii=False)
            finally:
                store.close()
            part = path.with_name(path.name + ".part")
            part.write_text(text, encoding="utf-8")
            os.replace(part, path)
            return path

        def done(written: Path) -> None:
            self.notifier.info(f"Chat exported to {written}.")
            self.exported.emit(str(written))

        run_job(work, on_done=done, on_error=self.notifier.job_failed)

    def _ask_import(self) -> None:
        from PySide6.QtWidgets import QFileDialog

        path, _ = QFileDialog.getOpenFileName(
            self.notifier.dialog_parent, "Import chat", str(Path.home()),
            "JSON (*.json);;All files (*)",
        )
        if path:
            self.import_chat(Path(path))

    def import_chat(self, path: Path) -> int | None:
        """Add a chat from an exported JSON file and open it; None (and a message) on failure."""
        try:
            raw = path.read_text(encoding="utf-8")
            data = json.loads(raw)
            chat = import_json(self.store, data)
        except (OSError, ValueError) as exc:
            self.notifier.error(f"'{path.name}' cannot be imported: {exc}")
            return None
        except sqlite3.Error as exc:
            self.notifier.error(f"'{path.name}' was not imported. "
                                       + failure_words(exc, self.store.path, raw))
            return None
        except QuantDeskError as exc:
            self.notifier.error(exc.message, exc.details)
            return None
        self.open(chat.id)
        count = counted(chat.message_count, "message")
        self.notifier.info(f"Imported “{chat.title}” ({count}).")
        return chat.id

    # -- hooks from the controller -----------------------------------------------------------

    def on_new_chat(self) -> None:
        """The next message starts a new chat (none is created before it)."""
        self.save_draft()
        self.chat_id, self._reply_id = None, None
        self.chat.page.set_message_text(self._new_chat_draft)
        self._show_format(None)  # a new chat's replies are text until switched
        self.refresh()

    def on_user_message(self, text: str, system_prompt: str, model_path: str,
                        replaces: int | None = None) -> tuple[int, int]:  # fmt: skip
        """Save the user's message, creating the chat on the first one; ``replaces``: the
        place (seq) of the message it is a new version of (Edit). Returns (version, versions);
        ChatNotSaved (nothing stored, nothing to send) when the chat's file refuses it."""

        def save() -> int:
            if self.chat_id is None:
                chat = self.store.create_chat(title_from(text), system_prompt, model_path)
                if self.response_format is not None:  # switched before the first message
                    self.store.set_response_format(chat.id, self.response_format)
                self.chat_id = chat.id
                self._new_chat_draft = ""
            old = self.store.message_id(self.chat_id, replaces) if replaces is not None else None
            if old is None:
                return self.store.add_message(self.chat_id, "user", text)
            return self.store.add_version(old, text)

        new = self.saving.attempt_or_raise(save, text)
        assert self.chat_id is not None
        self._keep_draft(self.chat_id, "")
        self.refresh()
        return self.version_of(new)

    def on_reply_started(self, model_path: str, settings: dict[str, Any],
                         replaces: int | None = None) -> tuple[int, int]:  # fmt: skip
        """An empty, incomplete assistant message that fills as tokens arrive; ``replaces``:
        the place (seq) of the reply it is a new version of (Regenerate). ChatNotSaved when
        the chat's file refuses it (then no reply should be asked for)."""
        chat_id = self.chat_id
        if chat_id is None:
            return (1, 1)
        self._parts, self._thinking = [], []
        self._saved_at = time.monotonic()

        def save() -> int:
            old = self.store.message_id(chat_id, replaces) if replaces is not None else None
            if old is None:
                return self.store.add_message(chat_id, "assistant", "", model=model_path,
                                              settings=settings, complete=False)  # fmt: skip
            return self.store.add_version(old, "", model=model_path, settings=settings,
                                          complete=False)  # fmt: skip

        self._reply_id = self.saving.attempt_or_raise(save)
        return self.version_of(self._reply_id)

    def version_of(self, message_id: int) -> tuple[int, int]:
        """(version, versions) of a stored message."""
        versions = self.store.versions(message_id)
        return versions.index(message_id) + 1, len(versions)

    def select_version(self, seq: int, step: int) -> bool:
        """Show the previous (-1) or next (+1) version of the message at ``seq`` and the branch
        that follows it; False when there is none."""
        if self.chat_id is None or self._reply_id is not None:
            return False
        current = self.store.message_id(self.chat_id, seq)
        if current is None:
            return False
        versions = self.store.versions(current)
        index = versions.index(current) + step
        if not 0 <= index < len(versions):
            return False
        if not self.saving.attempt(partial(self.store.select_version, versions[index])):
            return False
        self.reshow()
        return True

    def shown_messages(self) -> list[StoredMessage]:
        """The branch of the chat shown, as stored (none for a chat not saved yet)."""
        if self._closed or self.chat_id is None:  # a model loaded while the app closes
            return []
        return self.store.messages(self.chat_id)

    def context_before(self, seq: int) -> list[Message]:
        """What the model sees of the branch shown before place ``seq``."""
        if self.chat_id is None:
            return []
        return context_messages(self.store.messages(self.chat_id)[:seq])

    def on_reply_continued(self, seq: int, text: str) -> None:
        """The saved reply at ``seq`` grows again (Continue); it is incomplete until done."""
        if self.chat_id is None:
            return
        shown = self.store.messages(self.chat_id)
        reply = shown[seq] if 0 <= seq < len(shown) else None
        self._reply_id = reply.id if reply is not None else None
        self.reply_stats_before = reply.stats if reply is not None else {}
        self._parts = [text]
        self._thinking = [reply.thinking] if reply is not None else []
        self._saved_at = time.monotonic()
        if self._reply_id is not None:
            self._keep_reply(text, complete=False)

    def _keep_reply(self, text: str, **fields: Any) -> None:
        """Save the reply being written (kept until saved when the file refuses it)."""
        reply_id = self._reply_id
        assert reply_id is not None
        self.saving.keep(("message", reply_id),
                         partial(self.store.update_message, reply_id, text,
                                 thinking="".join(self._thinking), **fields), text)  # fmt: skip

    def on_reply_text(self, parts: list[str]) -> None:
        """The reply so far; saved when the last save is older than SAVE_INTERVAL_S."""
        self._parts = parts
        self._save_soon()

    def _save_soon(self) -> None:
        """Save the reply so far when the last save is older than SAVE_INTERVAL_S."""
        now = time.monotonic()
        if self._reply_id is not None and now - self._saved_at >= SAVE_INTERVAL_S:
            self._keep_reply("".join(self._parts))
            self._saved_at = now

    def on_reply_thinking(self, parts: list[str]) -> None:
        """The reply's thinking so far (a reasoning model's), in pieces; saved as the text is
        (joined only when it is saved)."""
        self._thinking = parts
        self._save_soon()

    def on_reply_finished(self, text: str, stats: GenerationStats) -> None:
        """The whole reply and its statistics."""
        if self._reply_id is not None:
            self._keep_reply(text, complete=True, stats=asdict(stats))
        self._reply_id = None
        self.refresh()

    def on_reply_failed(self, text: str) -> None:
        """Keep what was written of a failed reply, marked incomplete."""
        if self._reply_id is not None:
            self._keep_reply(text, complete=False)
        self._reply_id = None
        self.refresh()  # the list counts the reply kept

    def on_system_prompt(self, prompt: str) -> None:
        """The system prompt setting changed: it belongs to the current chat."""
        if self.chat_id is not None:
            self.saving.keep(("system", self.chat_id),
                             partial(self.store.set_system_prompt, self.chat_id, prompt), prompt)

    def close(self) -> None:
        """Save a reply in progress and the draft, and close the store (once)."""
        if self._closed:
            return
        self._closed = True
        if self.chat_id is not None:
            self.save_draft()
        if self._reply_id is not None:
            self._keep_reply("".join(self._parts), complete=False)
        if not self.saving.retry():
            log.error("%d chat change(s) could not be saved before quitting",
                      self.saving.pending)  # fmt: skip
        self.saving.stop()
        self.store.close()


def context_messages(stored: list[StoredMessage]) -> list[Message]:
    """What the model sees again from a saved chat (failed empty replies left out)."""
    return [Message(m.role, m.text, reasoning=m.thinking) for m in stored
            if m.text or m.role == "user"]  # fmt: skip
