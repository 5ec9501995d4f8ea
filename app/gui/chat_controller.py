"""The Chat page: the conversation shown, its replies streamed from the model worker, edits,
versions and Continue. :class:`ChatHistory` keeps it in the chat store as it changes."""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QLabel

from quantdesk.config.settings import Settings
from quantdesk.engine.chat.conversations import StoredMessage
from quantdesk.engine.chat.prompting import COMPLETION_MODE_NOTICE
from quantdesk.engine.chat.structured import SchemaError, grammar_for_response_format
from quantdesk.engine.chat.templates import Message
from quantdesk.engine.events import (
    GenerationStats,
    LiveFigures,
    continued_stats,
    saved_stats_summary,
)
from quantdesk.engine.hardware.machine import hardware_summary
from quantdesk.engine.remote.models import parse_remote_key
from quantdesk.engine.run.session import MODE_COMPLETION
from quantdesk.gui.chat_history import CUT_OFF_NOTE, ChatHistory, context_messages
from quantdesk.gui.chat_saving import ChatNotSaved
from quantdesk.gui.model_controller import ModelController
from quantdesk.gui.notifier import Notifier
from quantdesk.ui.chat.chat_list import ChatListPanel
from quantdesk.ui.chat.json_schema_dialog import JsonSchemaDialog
from quantdesk.ui.chat.page import ChatPage
from quantdesk.ui.model_worker import LoadedModel

WELCOME = (
    "Welcome to QuantDesk. Models run here, on this computer: nothing you type leaves it.\n"
    "This machine: {hardware}.\n"
)
WELCOME_PICK = (
    "Pick a model on the left (double-click) or drop a .gguf file anywhere on the window."
)
WELCOME_LOADED = (
    "{model} is loaded: type a message below. Other models: the library on the left, Discover, "
    "or drop a .gguf file anywhere on the window."
)

#: The footer of a reply cut short because the model's process ended.
STOPPED_MARK = "Cut off: the model stopped"

CONTEXT_FULL_NOTICE = (
    "Context full: the {n} oldest messages were left out of what the model saw for this reply "
    "(context {ctx:,} tokens). They stay in the chat; a longer context length or a new chat "
    "keeps them in view."
)


class ChatController(QObject):
    """Runs the chat page over the model worker; its signals fire on the GUI thread."""

    replyStarted = Signal()
    replyFinished = Signal(object)  # GenerationStats
    replyFailed = Signal(str)
    systemPromptShown = Signal(str)  # a chat with another system prompt was opened

    def __init__(
        self,
        page: ChatPage,
        chat_list: ChatListPanel,
        status: tuple[QLabel, QLabel],
        settings: Settings,
        notifier: Notifier,
        models: ModelController,
        chats_db: Path,
    ) -> None:
        super().__init__()
        self.page, self.settings, self.notifier, self.models = page, settings, notifier, models
        self.speed_label, self.context_label = status
        self.messages: list[Message] = []
        self._reply_row = -1
        self._reply_parts: list[str] = []
        self._thinking: list[str] = []  # a reasoning model's thinking in the reply being written
        self._thinking_since: float | None = None  # when its first piece came
        self._continued = 0  # characters of the reply that were there before Continue
        self._editing: int | None = None  # place (seq) of the message being edited
        self._welcome, self._welcome_row = "", -1
        self._draft_before_edit = ""
        self.history = ChatHistory(self, chat_list, chats_db, notifier)
        self._wire()

    def _wire(self) -> None:
        page, worker, models = self.page, self.models.worker, self.models
        page.ejectRequested.connect(models.eject)
        page.sendRequested.connect(self.send)
        page.stopRequested.connect(self.stop_generation)
        page.view.regenerateRequested.connect(self.regenerate)
        page.view.editRequested.connect(self.edit)
        page.view.continueRequested.connect(self.continue_reply)
        page.view.versionRequested.connect(self.switch_version)
        page.cancelEditRequested.connect(self.cancel_edit)
        page.jsonOutputToggled.connect(self._json_output_toggled)
        page.schemaRequested.connect(self.ask_schema)
        models.loadStarted.connect(self._load_started)
        models.modelLoaded.connect(self._loaded)
        models.modelLoadFailed.connect(self._load_failed)
        models.modelUnloaded.connect(self._unloaded)
        models.modelStopped.connect(self._model_stopped)
        worker.tokenReady.connect(self._token)
        worker.thinkingReady.connect(self._thinking_token)
        worker.figuresChanged.connect(self._live_figures)
        worker.generationFinished.connect(self._finished)
        worker.generationFailed.connect(self._generation_failed)

    def show_welcome(self) -> None:
        """The welcome card: this machine, and what to do first."""
        self._welcome = WELCOME.format(hardware=hardware_summary())
        self._welcome_row = self.page.transcript.append_message(
            "notice", self._welcome + WELCOME_PICK
        )

    def export_shown_chat(self, fmt: str) -> None:
        """File → Export chat: the chat shown (a chat without messages has nothing to export)."""
        if self.history.chat_id is None:
            self.notifier.info("This chat has no messages yet: there is nothing to export.")
            return
        self.history.ask_export(self.history.chat_id, fmt)

    def settings_applied(self, changes: dict) -> None:
        """Settings changed: a new system prompt is kept with the chat shown."""
        if "chat.system_prompt" in changes:
            self.history.on_system_prompt(str(changes["chat.system_prompt"]))

    def shutdown(self) -> None:
        """Save what is pending and close the chat store."""
        self.history.close()

    # -- the model's state, as the chat shows it -------------------------------------------

    def _load_started(self, path: str) -> None:
        self.page.set_loaded(None)
        remote = parse_remote_key(path)
        what = f"{remote[1]} on {remote[0]}" if remote else Path(path).name
        self.page.model_status.setText(f"{'Connecting to' if remote else 'Loading'} {what}…")
        self.page.send.setEnabled(False)

    def _loaded(self, model: LoadedModel) -> None:
        self.page.send.setEnabled(True)
        notice = COMPLETION_MODE_NOTICE if model.mode == MODE_COMPLETION else ""
        remote = parse_remote_key(model.path)
        if remote is not None:
            notice = (f"{model.name} runs on {remote[0]}: what you type in this chat is sent "
                      "to that server.")  # fmt: skip
        mode = "completion mode" if model.mode == MODE_COMPLETION else "chat mode"
        ctx = f"ctx {model.context_size:,} · " if model.context_size else ""
        self.page.set_loaded(f"{ctx}{model.backend} · {mode}", notice)
        self._update_welcome(model.name)
        self._show_chat_figures(self.history.shown_messages())  # the chat shown keeps its own

    def _load_failed(self, _message: str) -> None:
        self.page.send.setEnabled(True)
        self.page.set_loaded(None)

    def _unloaded(self) -> None:
        self._update_welcome("")
        self.page.set_loaded(None)
        self.context_label.setText("")

    def _update_welcome(self, model_name: str) -> None:
        """The welcome card says what to do now: type (a model is loaded) or pick one."""
        transcript = self.page.transcript
        row = self._welcome_row
        if 0 <= row < transcript.rowCount() and transcript.message(row).text.startswith(
            self._welcome
        ):
            last = WELCOME_LOADED.format(model=model_name) if model_name else WELCOME_PICK
            transcript.set_text(row, self._welcome + last)

    def _show_chat_figures(self, stored: list[StoredMessage]) -> None:
        """The status bar's tok/s and context use for the chat shown: its last reply's."""
        last = next((m.stats for m in reversed(stored) if m.role == "assistant" and m.stats), {})
        speed = last.get("decode_tokens_per_s")
        self.speed_label.setText(f"{speed:.1f} tok/s" if speed else "")
        loaded = self.models.loaded
        size = loaded.context_size if loaded is not None else 0
        self._show_context(int(last.get("context_used", 0)) if stored else 0,
                           size or int(last.get("context_size", 0)))  # fmt: skip

    def _show_context(self, used: int, size: int) -> None:
        """Context used / size in the status bar (nothing for a remote model: size 0)."""
        self.context_label.setText(f"Context {used:,} / {size:,}" if size else "")

    # -- the conversation ------------------------------------------------------------------

    def stop_generation(self) -> None:
        """Stop the streaming reply before its next token (called on the GUI thread)."""
        self.models.stop_generation()

    def new_chat(self) -> None:
        """Start an empty conversation (the model stays loaded)."""
        self.models.stop_generation()
        self.cancel_edit()
        self.messages.clear()
        self.page.transcript.clear()
        self._show_chat_figures([])
        self.history.on_new_chat()

    def show_conversation(self, stored: list[StoredMessage], system_prompt: str) -> None:
        """Show a saved chat: its messages in the transcript, its system prompt in settings."""
        transcript = self.page.transcript
        transcript.clear()
        for message in stored:
            row = transcript.append_message(message.role, message.text)  # type: ignore[arg-type]
            if message.role == "assistant":
                note = "" if message.complete else CUT_OFF_NOTE
                transcript.finish(row, note or saved_stats_summary(message.stats))
                if message.thinking:
                    transcript.set_thinking(row, message.thinking,
                                            float(message.stats.get("thinking_s", 0.0)), False)
            if message.versions > 1:
                transcript.set_versions(row, message.version, message.versions)
        self.messages = context_messages(stored)
        self._show_chat_figures(stored)
        if system_prompt != self.settings.get("chat.system_prompt"):
            self.systemPromptShown.emit(system_prompt)

    def send(self, text: str) -> None:
        """Add the user's message (or the edited one, as a new version) and ask for a reply."""
        loaded = self.models.loaded
        if loaded is None:
            self._say_no_model()
            return
        transcript = self.page.transcript
        replaces = self._editing
        system = self.settings.get("chat.system_prompt").strip()
        try:  # saved first: a message the chat's file refuses stays in the box, unsent
            version = self.history.on_user_message(text, system, loaded.path, replaces)
        except ChatNotSaved as exc:
            self.notifier.error(exc.message)
            return
        self._editing = None
        if replaces is not None:  # the branch from the edited message on leaves the view
            transcript.remove_from(self._row_of(replaces))
            self.messages = self.history.context_before(replaces)
            self.page.set_editing(False)
        self.page.input.clear()
        self.messages.append(Message("user", text))
        row = transcript.append_message("user", text)
        transcript.set_versions(row, *version)
        if replaces is not None:
            self.page.input.setPlainText(self._draft_before_edit)
        self._request_reply()

    def _request_reply(self, continue_row: int = -1, replaces: int | None = None) -> None:
        """Ask the worker for a reply: a new one, more of the one at ``continue_row``, or a new
        version of the reply at place ``replaces``."""
        transcript = self.page.transcript
        model_path = self.models.loaded.path if self.models.loaded else ""
        sampling = self.settings.sampling_settings()
        response_format = self.history.response_format
        try:
            grammar = grammar_for_response_format(response_format)
        except SchemaError as exc:  # a schema stored by an older version, or damaged
            self.notifier.error(f"This chat's JSON output cannot be used: {exc.message} "
                                "Give it another schema (Schema…) or switch it off.")  # fmt: skip
            self.history.reshow()
            return
        self._thinking, self._thinking_since = [], None
        if continue_row >= 0:
            prefill = transcript.message(continue_row).text
            self._thinking = [transcript.message(continue_row).thinking]  # written before
            transcript.resume(continue_row)
            self._reply_row = continue_row
            self.history.on_reply_continued(self._seq_of(continue_row), prefill)
        else:
            prefill = ""
            snapshot = {"sampling": asdict(sampling), "load": asdict(self.settings.load_settings())}
            if response_format is not None:
                snapshot["response_format"] = response_format
            try:
                version = self.history.on_reply_started(model_path, snapshot, replaces)
            except ChatNotSaved as exc:  # no reply the chat could not keep
                self.notifier.error(exc.message)
                self.history.reshow()
                return
            self._reply_row = transcript.append_message("assistant", "", streaming=True)
            transcript.set_versions(self._reply_row, *version)
        self._reply_parts = [prefill] if prefill else []
        self._continued = len(prefill)
        self.page.set_generating(True)
        self.replyStarted.emit()
        system = self.settings.get("chat.system_prompt").strip()
        history = ([Message("system", system)] if system else []) + list(self.messages)
        self.models.worker.request_reply(history, sampling.with_(grammar=grammar), prefill)

    # -- JSON output -------------------------------------------------------------------------

    def _json_output_toggled(self, on: bool) -> None:
        self.history.set_response_format({"type": "json_object"} if on else None)

    def ask_schema(self) -> None:
        """Schema…: ask for the JSON Schema the chat's replies must follow (none: any JSON
        object)."""
        current = self.history.response_format or {}
        schema = (current.get("json_schema") or {}).get("schema")
        dialog = JsonSchemaDialog(schema, self.notifier.dialog_parent)
        if dialog.exec() != JsonSchemaDialog.DialogCode.Accepted:
            return
        self.history.set_response_format(
            {"type": "json_object"} if dialog.schema is None else
            {"type": "json_schema", "json_schema": {"name": "chat", "schema": dialog.schema}})

    def _token(self, text: str) -> None:
        if self._reply_row >= 0:
            if self._thinking_since is not None:  # the answer begins: the thinking closes
                self._close_thinking(time.monotonic() - self._thinking_since)
            self._reply_parts.append(text)
            self.page.transcript.append_text(self._reply_row, text)
            self.history.on_reply_text(self._reply_parts)

    def _thinking_token(self, text: str) -> None:
        """A piece of a reasoning model's thinking: it streams into the open thinking block."""
        if self._reply_row >= 0:
            if self._thinking_since is None:
                self._thinking_since = time.monotonic()
            self._thinking.append(text)
            self.page.transcript.append_thinking(self._reply_row, text)
            self.history.on_reply_thinking(self._thinking)

    def _close_thinking(self, seconds: float) -> None:
        """The thinking ended: its block closes and says how long it took."""
        self._thinking_since = None
        thinking = "".join(self._thinking)
        if thinking:
            self.page.transcript.set_thinking(self._reply_row, thinking, seconds, False)

    def _live_figures(self, figures: LiveFigures) -> None:
        """tok/s and context use of the reply streaming now (it belongs to the chat shown:
        switching chats stops it)."""
        if self._reply_row < 0:
            return
        speed = f"{figures.tokens_per_s:.1f} tok/s" if figures.tokens > 1 else "…"
        self.speed_label.setText(speed)
        self._show_context(figures.context_used, figures.context_size)

    def _finished(self, stats: GenerationStats) -> None:
        if self._continued:  # the footer and the store count the whole reply
            stats = continued_stats(self.history.reply_stats_before, stats)
        reply, thinking = "".join(self._reply_parts), "".join(self._thinking)
        if thinking:
            self._close_thinking(stats.thinking_s)
        self.page.transcript.finish(self._reply_row, stats.summary())
        self.messages.append(Message("assistant", reply, reasoning=thinking))
        self.history.on_reply_finished(reply, stats)
        self._reply_row = -1
        self.page.set_generating(False)
        self.speed_label.setText(f"{stats.decode_tokens_per_s:.1f} tok/s")
        self._show_context(stats.context_used, stats.context_size)
        if not reply[self._continued:].strip() and stats.stop_reason == "eos":
            self.notifier.info(
                "The model had nothing to add: it ended the reply again."
                if self._continued
                else "The model ended its reply without any text. Try Regenerate."
            )
        if stats.dropped_messages:  # a visible marker, not a failure (notices are not stored)
            self.page.transcript.append_message("notice", CONTEXT_FULL_NOTICE.format(
                n=stats.dropped_messages, ctx=stats.context_size))  # fmt: skip
        self.replyFinished.emit(stats)

    def _end_reply(self, message: str) -> None:
        """The reply being written ended without finishing: saved as far as it got."""
        if self._thinking_since is not None:
            self._close_thinking(time.monotonic() - self._thinking_since)
        self.history.on_reply_failed("".join(self._reply_parts))
        self._reply_row = -1
        self.page.set_generating(False)
        self.replyFailed.emit(message)

    def _generation_failed(self, message: str, details: str) -> None:
        if self._reply_row >= 0 and self._continued:  # keep the reply that was being continued
            self.page.transcript.finish(self._reply_row, f"Continue failed: {message}")
        elif self._reply_row >= 0:
            self.page.transcript.set_error(self._reply_row, message)
        # the user message stays; Regenerate or a new message retries
        self.notifier.error(message, details)
        self._end_reply(message)

    def _model_stopped(self, message: str, details: str) -> None:
        """The model's host process ended (llama.cpp crashed, or a limit stopped it): the reply
        written so far stays, marked incomplete; one line in the chat says what happened, and
        the banner offers Reload. The window and the saved chat are untouched."""
        transcript = self.page.transcript
        if self._reply_row >= 0:
            transcript.finish(self._reply_row, STOPPED_MARK)
            written = "".join(self._reply_parts)
            if written:  # the next message (or Continue, after Reload) sees what was written
                self.messages.append(Message("assistant", written,
                                             reasoning="".join(self._thinking)))
            self._end_reply(message)
        self._unloaded()
        stopped = self.models.stopped_model
        if stopped is not None:
            self.page.model_status.setText(f"{stopped.name} stopped")
        transcript.append_message("notice", message)
        self.notifier.error(message, details, actions=[("Reload", self.models.reload)])

    def _say_no_model(self) -> None:
        """Send, Regenerate or Continue with no model loaded: say how to get one (after the
        model's process stopped: Reload, in the banner again)."""
        stopped = self.models.stopped_model
        if stopped is not None:
            self.notifier.error(f"{stopped.name} stopped. Reload it to go on.",
                                actions=[("Reload", self.models.reload)])  # fmt: skip
        else:
            self.notifier.error(
                "No model is loaded. Double-click a model in the library, or drop a .gguf file."
            )

    def _reply_actionable(self, row: int) -> bool:
        """Whether the reply at ``row`` can be regenerated or continued now: no reply is being
        written, the row is a reply, and a model is loaded (else it says how to get one)."""
        transcript = self.page.transcript
        if self._reply_row >= 0 or not 0 <= row < transcript.rowCount():
            return False
        if self.models.loaded is None:
            self._say_no_model()
            return False
        return transcript.message(row).role == "assistant"

    def regenerate(self, row: int) -> None:
        """Generate a new version of the reply at ``row``; the old one stays (‹ 1/2 ›)."""
        if not self._reply_actionable(row):
            return
        self.cancel_edit()
        seq = self._seq_of(row)
        self.messages = self.history.context_before(seq)
        if not self.messages or self.messages[-1].role != "user":
            return
        self.page.transcript.remove_from(row)
        self._request_reply(replaces=seq)

    def continue_reply(self, row: int) -> None:
        """Let the model carry on writing the last reply (cut off, or stopped at max tokens)."""
        transcript = self.page.transcript
        if not self._reply_actionable(row):
            return
        later = [m.role for m in transcript.messages()[row + 1:] if m.role != "notice"]
        if later or not self.messages or self.messages[-1].role != "assistant":
            return  # only the last reply can be continued
        if self.history.response_format is not None:
            self.notifier.info("A reply held to JSON is written in one go: Regenerate writes "
                               "it afresh.")  # fmt: skip
            return
        self.messages.pop()
        self._request_reply(continue_row=row)

    def edit(self, row: int) -> None:
        """Put a user message in the message box to edit: Send keeps the edit as a new version
        of it (the original and its replies stay), Cancel leaves everything as it was."""
        transcript = self.page.transcript
        if self._reply_row >= 0 or not 0 <= row < transcript.rowCount():
            return
        if transcript.message(row).role != "user":
            return
        if self._editing is None:
            self._draft_before_edit = self.page.input.toPlainText()
        self._editing = self._seq_of(row)
        self.page.set_message_text(transcript.message(row).text)
        self.page.set_editing(True)
        self.page.view.scrollTo(transcript.index(row, 0))
        self.page.input.setFocus()

    def cancel_edit(self) -> None:
        """Leave the message being edited as it was and put the draft back in the box."""
        if self._editing is None:
            return
        self._editing = None
        self.page.set_editing(False)
        self.page.input.setPlainText(self._draft_before_edit)

    def switch_version(self, row: int, step: int) -> None:
        """Show the previous (-1) or next (+1) version of the message at ``row``."""
        if self._reply_row >= 0:
            return
        self.cancel_edit()
        self.history.select_version(self._seq_of(row), step)

    def _row_of(self, seq: int) -> int:
        """The transcript row of stored place ``seq`` (notices are not stored)."""
        stored = -1
        for row, message in enumerate(self.page.transcript.messages()):
            if message.role != "notice":
                stored += 1
                if stored == seq:
                    return row
        return self.page.transcript.rowCount()

    def _seq_of(self, row: int) -> int:
        """The stored message index of transcript ``row`` (notices are not stored)."""
        return sum(1 for m in self.page.transcript.messages()[:row] if m.role != "notice")
