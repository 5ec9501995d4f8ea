"""Wires the window to the engine: library, imports, the model worker and the chat.

Runs on the GUI thread. Slow work goes to the model worker (loading and
generation) or to :func:`run_job` (file validation and copying).
"""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QByteArray, QObject, Qt, QThreadPool, QTimer, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QApplication, QCheckBox, QFileDialog, QMessageBox

from quantdesk.config.paths import AppPaths
from quantdesk.config.settings import PRESET_KEYS, SECTIONS, SETTINGS, Settings
from quantdesk.engine.chat.conversations import StoredMessage
from quantdesk.engine.chat.prompting import COMPLETION_MODE_NOTICE
from quantdesk.engine.chat.templates import Message
from quantdesk.engine.errors import QuantDeskError
from quantdesk.engine.estimate.load_plan import Budget, machine_budget
from quantdesk.engine.estimate.recommend import settings_estimate_text
from quantdesk.engine.events import (
    GenerationStats,
    LiveFigures,
    continued_stats,
    saved_stats_summary,
)
from quantdesk.engine.gguf.model_info import human_bytes
from quantdesk.engine.hardware.machine import hardware_summary, memory_snapshot
from quantdesk.engine.library.importer import (
    MODE_COPY,
    MODE_MOVE,
    MODE_REFERENCE,
    ImportOutcome,
    import_paths,
)
from quantdesk.engine.library.starter import (
    CHAT_STARTER_FILE_NAME,
    CHAT_STARTER_NAME,
    ensure_chat_starter_file,
    ensure_starter_file,
)
from quantdesk.engine.library.store import LibraryEntry, ModelLibrary, add_model_file
from quantdesk.engine.quantize.convert import is_hf_folder
from quantdesk.engine.quantize.job_parts import PartJournal
from quantdesk.engine.remote.models import parse_remote_key
from quantdesk.engine.run.session import MODE_COMPLETION
from quantdesk.engine.sqlite_files import open_store
from quantdesk.engine.wording import counted
from quantdesk.gui.chat_history import CUT_OFF_NOTE, ChatHistory, context_messages
from quantdesk.gui.chat_saving import ChatNotSaved
from quantdesk.gui.preset_controller import PresetController
from quantdesk.gui.theme import apply_theme
from quantdesk.ui.jobs import run_job
from quantdesk.ui.main_window import MainWindow
from quantdesk.ui.model_worker import LoadedModel, ModelThread
from quantdesk.ui.settings.preferences_dialog import PreferencesDialog

if TYPE_CHECKING:
    from quantdesk.gui.hub_token_controller import HubTokenController
    from quantdesk.gui.remote_controller import RemoteController

HUB_TOKEN_SECTION = "Hugging Face"

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


class AppController(QObject):
    """The GUI's composition root. Its signals fire on the GUI thread."""

    modelLoaded = Signal(object)  # LoadedModel
    modelLoadFailed = Signal(str)
    replyStarted = Signal()
    replyFinished = Signal(object)  # GenerationStats
    replyFailed = Signal(str)
    quantizeRequested = Signal(object)  # Path: a Hugging Face folder or an unquantized model
    settingsApplied = Signal(dict)  # the settings just changed, by name

    def __init__(self, paths: AppPaths, settings: Settings, window: MainWindow) -> None:
        super().__init__()
        self.paths = paths
        self.settings = settings
        self.window = window
        self.library, self._library_warning = open_store(
            ModelLibrary, paths.library_db, what="The model library",
            not_kept="Models added now are not kept.",
            untouched="your model files were not touched",
        )  # fmt: skip
        self.models = ModelThread(paths.probe_cache)
        self.shutdown_hooks: list = []  # services composed in gui.py stop here too
        self.store_warnings: list[str] = []  # from stores opened in gui.py, shown at start
        self.loaded: LoadedModel | None = None
        self.stopped_model: LoadedModel | None = None  # its host process ended: Reload it
        self.remote: RemoteController | None = None  # composed in gui.py
        self.hub_token: HubTokenController | None = None  # composed in gui.py
        self.loading = False
        self.messages: list[Message] = []
        self._reply_row = -1
        self._reply_parts: list[str] = []
        self._continued = 0  # characters of the reply that were there before Continue
        self._editing: int | None = None  # place (seq) of the message being edited
        self._welcome, self._welcome_row = "", -1
        self._draft_before_edit = ""
        self._wire()
        self.history = ChatHistory(self)
        self.presets = PresetController(self)
        self._memory_timer = QTimer(self)
        self._memory_timer.timeout.connect(self._show_memory)
        self._memory_timer.start(2000)
        self._show_memory()
        self._restore_window()
        self._budget: Budget | None = None
        self._estimate_timer = QTimer(self)
        self._estimate_timer.setSingleShot(True)
        self._estimate_timer.setInterval(250)
        self._estimate_timer.timeout.connect(self._update_estimate)

    # -- wiring ----------------------------------------------------------------------------

    def _wire(self) -> None:
        w, worker = self.window, self.models.worker
        w.filesDropped.connect(lambda paths: self.import_files([Path(p) for p in paths]))
        w.newChatRequested.connect(self.new_chat)
        w.closing.connect(self.shutdown)
        w.library.loadRequested.connect(self.load)
        w.library.addRequested.connect(self._add_dialog)
        w.library.removeRequested.connect(self._remove)
        w.library.revealRequested.connect(self._reveal)
        w.chat.modelChosen.connect(self.load)
        w.chat.ejectRequested.connect(self.eject)
        w.chat.sendRequested.connect(self.send)
        w.chat.stopRequested.connect(self.stop_generation)
        w.chat.view.regenerateRequested.connect(self.regenerate)
        w.chat.view.editRequested.connect(self.edit)
        w.chat.view.continueRequested.connect(self.continue_reply)
        w.chat.view.versionRequested.connect(self.switch_version)
        w.chat.cancelEditRequested.connect(self.cancel_edit)
        panel = w.settings_panel
        panel.set_values({name: self.settings.get(name) for name in SETTINGS})
        panel.settingChanged.connect(self._setting_changed)
        panel.resetRequested.connect(self._reset_settings)
        panel.reloadRequested.connect(self.reload)
        w.preferencesRequested.connect(lambda: self.open_preferences())
        w.aboutRequested.connect(self.open_about)
        w.reloadRequested.connect(self.reload)
        w.logFolderRequested.connect(
            lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.paths.log_dir))))
        w.exportChatRequested.connect(self._export_shown_chat)
        worker.loadStarted.connect(self._load_started)
        worker.loaded.connect(self._loaded)
        worker.loadFailed.connect(self._load_failed)
        worker.unloaded.connect(self._unloaded)
        worker.tokenReady.connect(self._token)
        worker.figuresChanged.connect(self._live_figures)
        worker.generationFinished.connect(self._finished)
        worker.generationFailed.connect(self._generation_failed)
        worker.modelStopped.connect(self._model_stopped)

    def start(self, open_files: list[Path]) -> None:
        """Fill the library, prepare the starter model, open files given on the command line."""
        self.refresh_library()
        self._welcome = WELCOME.format(hardware=hardware_summary())
        self._welcome_row = self.window.chat.transcript.append_message(
            "notice", self._welcome + WELCOME_PICK
        )
        self.history.restore_latest()
        found = (self._library_warning, self.history.warning, self.presets.warning,
                 *self.store_warnings)  # fmt: skip
        warnings = [w for w in found if w]
        if warnings:
            self.window.show_error(" ".join(warnings))
        run_job(PartJournal(self.paths.jobs_dir).clean_stale, on_done=self._stale_parts_removed,
                on_error=lambda _exc: None)  # fmt: skip
        if open_files:
            self.import_files(open_files, mode=MODE_REFERENCE, load_first=True)
        if os.environ.get("QUANTDESK_SKIP_STARTER") == "1":
            self._starter_ready(open_files)
            return
        run_job(
            self._add_starter,
            on_done=lambda _entry: self._starter_ready(open_files),
            on_error=self.show_job_error,
        )

    def open_files(self, files: list[Path]) -> None:
        """Files handed over by a later launch (a double-click on a .gguf): bring the window to
        the front, add them where they are and load the first."""
        self.window.setWindowState(self.window.windowState() & ~Qt.WindowState.WindowMinimized)
        self.window.raise_()
        self.window.activateWindow()
        if files:
            self.import_files(files, mode=MODE_REFERENCE, load_first=True)

    def _stale_parts_removed(self, removed: list[Path]) -> None:
        """Say which unfinished files of stopped quantizations the start removed."""
        if removed:
            names = ", ".join(p.name for p in removed)
            self.window.show_info(
                f"Removed {counted(len(removed), 'unfinished file')} left by a quantization "
                f"that was stopped before it ended: {names}."
            )

    def _starter_ready(self, open_files: list[Path]) -> None:
        self.refresh_library()
        if not open_files:
            self._load_last()

    def _add_starter(self) -> LibraryEntry | None:
        """Put the starter models into the library (this runs on a pool thread): the instruct
        model a new user chats with first, and the base model the quantizer and lab use."""
        added = []
        for ensure, name in ((ensure_chat_starter_file, CHAT_STARTER_NAME),
                             (ensure_starter_file, "")):  # fmt: skip
            path = ensure(self.paths.models_dir)
            if path is not None:
                entry = add_model_file(self.paths.library_db, path, source="starter", owned=True,
                                       name=name)  # fmt: skip
                added.append(entry)
        return added[0] if added else None

    def _load_last(self) -> None:
        entries = [e for e in self.library.entries() if e.exists]
        last = self.settings.get("library.last_model")
        remote = parse_remote_key(last)
        if remote is not None and self.remote is not None and self.remote.store.find(remote[0]):
            self.remote.load_when_listed(last)  # its server is asked for its models first
            return
        # never start loading a model found in another tool's folder that the user did not pick;
        # a first start chats with the instruct starter, not the base model
        owned = sorted((e for e in entries if e.owned),
                       key=lambda e: e.path.name != CHAT_STARTER_FILE_NAME)  # fmt: skip
        fallback = next(iter(owned), None)
        chosen = next((e for e in entries if str(e.path) == last), fallback)
        if chosen is not None and self.loaded is None and not self.loading:
            self.load(chosen)

    def _restore_window(self) -> None:
        w = self.window
        for name, restore in (
            ("window.geometry", w.restoreGeometry),
            ("window.state", w.restoreState),
            ("window.splitter", w.splitter.restoreState),
        ):
            stored = self.settings.get(name)
            if stored:
                restore(QByteArray.fromBase64(stored.encode("ascii")))
        w.fit_to_screen()  # a layout saved on a bigger screen still fits this one
        panel = self.settings.get("window.settings_panel")
        if panel == "hidden" or (not panel and w.width() < NARROW_WINDOW):
            w.settings_panel.hide()  # the chat keeps its room; View → Settings panel shows it
            w.fit_to_screen()

    def _save_window(self) -> None:
        w = self.window
        for name, state in (
            ("window.geometry", w.saveGeometry()),
            ("window.state", w.saveState()),
            ("window.splitter", w.splitter.saveState()),
        ):
            self.settings.set(name, bytes(state.toBase64().data()).decode("ascii"))
        shown = self.window.settings_panel.isVisibleTo(self.window)
        self.settings.set("window.settings_panel", "shown" if shown else "hidden")

    def shutdown(self) -> None:
        """Save the window layout, stop generation, free the model, close the database."""
        if self._memory_timer.isActive():
            self._save_window()
        self._memory_timer.stop()
        self._estimate_timer.stop()
        for hook in self.shutdown_hooks:
            hook()
        self.shutdown_hooks.clear()
        self.models.shutdown()
        # background jobs finish (2 s at most) and the pool's idle threads exit with them
        QThreadPool.globalInstance().waitForDone(2000)
        self.history.close()
        self.presets.close()
        self.library.close()

    # -- library ---------------------------------------------------------------------------

    def refresh_library(self) -> None:
        """Re-read the library into the sidebar and picker (with the remote servers' models)."""
        remote = self.remote.entries if self.remote is not None else []
        self.window.library.set_entries(self.library.entries() + remote)
        if self.loaded is not None:
            self._select(self.loaded.path)

    def _select(self, path: str) -> None:
        self.window.library.select_path(path)
        self.window.chat.picker.setCurrentIndex(self.window.library.model.row_of(path))

    def _ask_import_mode(self) -> str | None:
        mode = self.settings.get("import.mode")
        if mode != "ask":
            return mode
        box = QMessageBox(self.window)
        box.setWindowTitle("Add models")
        box.setText("Use the files where they are, or copy or move them into QuantDesk's models "
                    "folder?")  # fmt: skip
        box.setInformativeText(
            "Using them in place saves disk space; the files stay yours and are never modified. "
            "Copied or moved files belong to QuantDesk's folder (it may delete them when you ask)."
        )
        use = box.addButton("Use in place", QMessageBox.ButtonRole.AcceptRole)
        copy = box.addButton("Copy", QMessageBox.ButtonRole.ActionRole)
        move = box.addButton("Move", QMessageBox.ButtonRole.ActionRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(use)
        # parented: setCheckBox does not take ownership, a bare QCheckBox would be collected
        remember = QCheckBox("Remember my choice", box)
        remember.setToolTip("Change it later in Preferences → Import")
        box.setCheckBox(remember)
        box.exec()
        clicked = box.clickedButton()
        modes = {use: MODE_REFERENCE, copy: MODE_COPY, move: MODE_MOVE}
        mode = next((m for button, m in modes.items() if clicked is button), None)
        if mode is not None and remember.isChecked():
            self.settings.set("import.mode", mode)
        box.deleteLater()
        return mode

    def import_files(
        self, paths: list[Path], mode: str | None = None, load_first: bool = False
    ) -> None:
        """Validate and add dropped/opened files in the background, then report.

        Hugging Face model folders among them open the Quantize dialog instead (they are
        weights to convert, not models llama.cpp can load).
        """
        folders = [p for p in paths if is_hf_folder(p)]
        for folder in folders[:1]:
            self.quantizeRequested.emit(folder)
        paths = [p for p in paths if p not in folders]
        if not paths:
            return
        mode = mode or self._ask_import_mode()
        if mode is None:
            return
        db, models_dir = self.paths.library_db, self.paths.models_dir

        def work() -> list[ImportOutcome]:
            library = ModelLibrary(db)
            try:
                return import_paths(paths, library, models_dir, mode)
            finally:
                library.close()

        self.window.statusBar().showMessage("Checking dropped files…")
        run_job(
            work, on_done=lambda out: self._imported(out, load_first), on_error=self.show_job_error
        )

    def _imported(self, outcomes: list[ImportOutcome], load_first: bool) -> None:
        self.window.statusBar().clearMessage()
        self.refresh_library()
        added = [o.entry for o in outcomes if o.entry is not None]
        failed = [o for o in outcomes if o.error]
        if failed:
            lines = [f"{o.source.name}: {o.error}" for o in failed]
            head = (
                "This file is not a usable model:"
                if len(failed) == 1
                else (f"{len(failed)} files are not usable models:")
            )
            self.window.show_error(
                head + "\n" + "\n".join(lines[:5]),
                details="\n".join(f"{o.source}: {o.error} {o.details}" for o in failed),
            )
        elif added:
            names = ", ".join(e.name for e in added[:3])
            offer = self._quantize_offer(added)
            hint = " It is unquantized: Quantize… makes a smaller copy." if offer else ""
            self.window.show_info(f"Added to the library: {names}.{hint}", offer)
        if added:
            self._select(str(added[0].path))
            if load_first:
                self.load(added[0])

    def _quantize_offer(self, added: list[LibraryEntry]) -> list[tuple[str, object]]:
        """A "Quantize…" action when an unquantized (F32/F16/BF16) model was added."""
        floats = [e for e in added if e.is_unquantized]
        if not floats:
            return []
        return [("Quantize…", lambda: self.quantizeRequested.emit(floats[0].path))]

    def _add_dialog(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(
            self.window, "Add models", str(Path.home()), "GGUF models (*.gguf);;All files (*)"
        )
        if files:
            self.import_files([Path(f) for f in files])

    def _export_shown_chat(self, fmt: str) -> None:
        """File → Export chat: the chat shown (a chat without messages has nothing to export)."""
        if self.history.chat_id is None:
            self.window.show_info("This chat has no messages yet: there is nothing to export.")
            return
        self.history.ask_export(self.history.chat_id, fmt)

    def _remove(self, entry: LibraryEntry) -> None:
        if entry.remote is not None and self.remote is not None:
            self.remote.remove(entry.remote.endpoint.url)
            return
        self.library.remove(entry.id)
        self.refresh_library()

    def _reveal(self, entry: LibraryEntry) -> None:
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(entry.path.parent)))

    def show_job_error(self, exc: BaseException) -> None:
        """A background job failed: its message in the banner (details for the unexpected)."""
        self.window.statusBar().clearMessage()
        if isinstance(exc, QuantDeskError):
            self.window.show_error(exc.message, exc.details)
        else:
            self.window.show_error(
                "Something unexpected went wrong.", f"{type(exc).__name__}: {exc}"
            )

    # -- settings --------------------------------------------------------------------------

    def open_preferences(self, section: str | None = None) -> None:
        """Show Preferences on the current settings (at the page titled ``section``, if given);
        applied changes take effect at once."""
        dialog = PreferencesDialog(SETTINGS.values(), self.settings.values(), SECTIONS, self.window)
        dialog.applied.connect(self._preferences_applied)
        if self.hub_token is not None:
            dialog.add_page(HUB_TOKEN_SECTION, self.hub_token.page())
        if section is not None:
            dialog.show_section(section)
        dialog.finished.connect(dialog.deleteLater)
        dialog.open()
        self.preferences = dialog

    def open_about(self) -> None:
        """Show the About dialog (llama.cpp's build is probed first: a fraction of a second)."""
        from quantdesk import __version__
        from quantdesk.engine.diagnostics.about import (
            components,
            environment_line,
            llama_build_lines,
        )
        from quantdesk.ui.about_dialog import AboutDialog

        parts = [(c.name, c.version, c.licence, c.role) for c in components()]
        dialog = AboutDialog(__version__, environment_line(), llama_build_lines(), parts,
                             self.window)  # fmt: skip
        dialog.finished.connect(dialog.deleteLater)
        dialog.open()
        self.about = dialog

    def _preferences_applied(self, changes: dict) -> None:
        self.apply_settings(changes)

    def apply_settings(self, changes: dict[str, Any]) -> None:
        """Change several settings (already valid) at once, saved once, with their effects:
        shown in the settings panel, the system prompt kept with the chat, a reload offered
        for load settings, the theme and parallel downloads applied."""
        self.settings.update(changes)
        self.window.settings_panel.set_values(changes)
        if "chat.system_prompt" in changes:
            self.history.on_system_prompt(str(changes["chat.system_prompt"]))
        if any(name.startswith("load.") for name in changes) and self.loaded is not None:
            self.window.settings_panel.set_reload_needed(True)
            self._estimate_timer.start()
        if "appearance.theme" in changes:
            apply_theme(QApplication.instance(), changes["appearance.theme"])
        self.settingsApplied.emit(changes)

    def _setting_changed(self, name: str, value: object) -> None:
        """The user edited one setting in the panel."""
        try:
            self.apply_settings({name: value})
        except ValueError as exc:
            self.window.show_error(str(exc))
            return
        if name in PRESET_KEYS:
            self.presets.settings_edited()

    def _reset_settings(self) -> None:
        self.presets.settings_edited()
        self.settings.reset("load.")
        self.settings.reset("sampling.")
        self.window.settings_panel.set_values({n: self.settings.get(n) for n in SETTINGS})
        if self.loaded is not None:
            self.window.settings_panel.set_reload_needed(True)

    def reload(self) -> None:
        """Load the current model again (or the one whose host process stopped)."""
        model = self.loaded or self.stopped_model
        entry = self.library.find(Path(model.path)) if model else None
        if entry is not None:
            self.load(entry)

    # -- model -----------------------------------------------------------------------------

    def load(self, entry: LibraryEntry) -> None:
        """Load ``entry`` on the model worker (the previous model is unloaded first)."""
        if not entry.exists:
            self.window.show_error(
                f"'{entry.path}' no longer exists. It was moved or deleted outside QuantDesk; "
                "remove it from the library or put the file back."
            )
            return
        self.models.worker.stop()
        self.presets.before_load(entry.path)
        if entry.remote is not None:
            self.models.worker.loadRemoteRequested.emit(entry.remote)
            return
        self.models.worker.loadRequested.emit(str(entry.path), self.settings.load_settings())

    def _load_started(self, path: str) -> None:
        self.loading = True
        self.window.chat.set_loaded(None)
        remote = parse_remote_key(path)
        what = f"{remote[1]} on {remote[0]}" if remote else Path(path).name
        self.window.chat.model_status.setText(f"{'Connecting to' if remote else 'Loading'} {what}…")
        self.window.chat.send.setEnabled(False)

    def _loaded(self, model: LoadedModel) -> None:
        self.loading = False
        self.loaded = model
        self.stopped_model = None
        self.window.chat.send.setEnabled(True)
        self.window.settings_panel.set_reload_needed(False)
        notice = COMPLETION_MODE_NOTICE if model.mode == MODE_COMPLETION else ""
        remote = parse_remote_key(model.path)
        if remote is not None:
            notice = (f"{model.name} runs on {remote[0]}: what you type in this chat is sent "
                      "to that server.")  # fmt: skip
        mode = "completion mode" if model.mode == MODE_COMPLETION else "chat mode"
        ctx = f"ctx {model.context_size:,} · " if model.context_size else ""
        self.window.chat.set_loaded(f"{ctx}{model.backend} · {mode}", notice)
        if model.adjustments:
            self.window.show_info(
                f"{Path(model.path).name} was loaded with safer settings so that it fits in this "
                f"computer's free memory: {'; '.join(model.adjustments)}. Your settings are "
                "unchanged; close other programs and Reload to try them again."
            )
        self.settings.set("library.last_model", model.path)
        self._update_welcome(model.name)
        self._select(model.path)
        self._show_chat_figures(self.history.shown_messages())  # the chat shown keeps its own
        self._update_estimate()
        self.presets.on_model(model)
        self.modelLoaded.emit(model)

    def _update_welcome(self, model_name: str) -> None:
        """The welcome card says what to do now: type (a model is loaded) or pick one."""
        transcript = self.window.chat.transcript
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
        self.window.speed_label.setText(f"{speed:.1f} tok/s" if speed else "")
        size = self.loaded.context_size if self.loaded is not None else 0
        self._show_context(int(last.get("context_used", 0)) if stored else 0,
                           size or int(last.get("context_size", 0)))  # fmt: skip

    def _show_context(self, used: int, size: int) -> None:
        """Context used / size in the status bar (nothing for a remote model: size 0)."""
        self.window.context_label.setText(f"Context {used:,} / {size:,}" if size else "")

    def _update_estimate(self) -> None:
        """Show what the current load settings need for the loaded model (off the GUI thread)."""
        if self.loaded is None or parse_remote_key(self.loaded.path):
            self.window.settings_panel.set_estimate_text("")  # a remote model uses no memory here
            return
        path, load = Path(self.loaded.path), self.settings.load_settings()

        def work() -> str:
            if self._budget is None:
                self._budget = machine_budget()
            return settings_estimate_text(path, load, self._budget)

        run_job(
            work,
            on_done=self.window.settings_panel.set_estimate_text,
            on_error=lambda exc: self.window.settings_panel.set_estimate_text(
                f"No estimate: {getattr(exc, 'message', exc)}"
            ),
        )

    def _load_failed(self, message: str, details: str) -> None:
        self.loading = False
        self.loaded = None
        self.window.chat.send.setEnabled(True)
        self.window.chat.set_loaded(None)
        self.presets.on_model(None)
        self.window.show_error(message, details)
        self.modelLoadFailed.emit(message)

    def _unloaded(self) -> None:
        self.loaded = None
        self._update_welcome("")
        self.presets.on_model(None)
        self.window.chat.set_loaded(None)
        self.window.context_label.setText("")

    # -- chat ------------------------------------------------------------------------------

    def eject(self) -> None:
        """Stop any reply and unload the model, freeing its memory."""
        self.models.worker.stop()
        self.models.worker.unloadRequested.emit()

    def stop_generation(self) -> None:
        """Stop the streaming reply before its next token (called on the GUI thread)."""
        self.models.worker.stop()

    def new_chat(self) -> None:
        """Start an empty conversation (the model stays loaded)."""
        self.models.worker.stop()
        self.cancel_edit()
        self.messages.clear()
        self.window.chat.transcript.clear()
        self._show_chat_figures([])
        self.history.on_new_chat()

    def show_conversation(self, stored: list[StoredMessage], system_prompt: str) -> None:
        """Show a saved chat: its messages in the transcript, its system prompt in settings."""
        transcript = self.window.chat.transcript
        transcript.clear()
        for message in stored:
            row = transcript.append_message(message.role, message.text)  # type: ignore[arg-type]
            if message.role == "assistant":
                note = "" if message.complete else CUT_OFF_NOTE
                transcript.finish(row, note or saved_stats_summary(message.stats))
            if message.versions > 1:
                transcript.set_versions(row, message.version, message.versions)
        self.messages = context_messages(stored)
        self._show_chat_figures(stored)
        if system_prompt != self.settings.get("chat.system_prompt"):
            self.settings.set("chat.system_prompt", system_prompt)
            self.window.settings_panel.set_values({"chat.system_prompt": system_prompt})

    def send(self, text: str) -> None:
        """Add the user's message (or the edited one, as a new version) and ask for a reply."""
        if self.loaded is None:
            self._say_no_model()
            return
        transcript = self.window.chat.transcript
        replaces = self._editing
        system = self.settings.get("chat.system_prompt").strip()
        try:  # saved first: a message the chat's file refuses stays in the box, unsent
            version = self.history.on_user_message(text, system, self.loaded.path, replaces)
        except ChatNotSaved as exc:
            self.window.show_error(exc.message)
            return
        self._editing = None
        if replaces is not None:  # the branch from the edited message on leaves the view
            transcript.remove_from(self._row_of(replaces))
            self.messages = self.history.context_before(replaces)
            self.window.chat.set_editing(False)
        self.window.chat.input.clear()
        self.messages.append(Message("user", text))
        row = transcript.append_message("user", text)
        transcript.set_versions(row, *version)
        if replaces is not None:
            self.window.chat.input.setPlainText(self._draft_before_edit)
        self._request_reply()

    def _request_reply(self, continue_row: int = -1, replaces: int | None = None) -> None:
        """Ask the worker for a reply: a new one, more of the one at ``continue_row``, or a new
        version of the reply at place ``replaces``."""
        transcript = self.window.chat.transcript
        model_path = self.loaded.path if self.loaded else ""
        sampling = self.settings.sampling_settings()
        if continue_row >= 0:
            prefill = transcript.message(continue_row).text
            transcript.resume(continue_row)
            self._reply_row = continue_row
            self.history.on_reply_continued(self._seq_of(continue_row), prefill)
        else:
            prefill = ""
            snapshot = {"sampling": asdict(sampling), "load": asdict(self.settings.load_settings())}
            try:
                version = self.history.on_reply_started(model_path, snapshot, replaces)
            except ChatNotSaved as exc:  # no reply the chat could not keep
                self.window.show_error(exc.message)
                self.history.reshow()
                return
            self._reply_row = transcript.append_message("assistant", "", streaming=True)
            transcript.set_versions(self._reply_row, *version)
        self._reply_parts = [prefill] if prefill else []
        self._continued = len(prefill)
        self.window.chat.set_generating(True)
        self.replyStarted.emit()
        system = self.settings.get("chat.system_prompt").strip()
        history = ([Message("system", system)] if system else []) + list(self.messages)
        self.models.worker.request_reply(history, sampling, prefill)

    def _token(self, text: str) -> None:
        if self._reply_row >= 0:
            self._reply_parts.append(text)
            self.window.chat.transcript.append_text(self._reply_row, text)
            self.history.on_reply_text(self._reply_parts)

    def _live_figures(self, figures: LiveFigures) -> None:
        """tok/s and context use of the reply streaming now (it belongs to the chat shown:
        switching chats stops it)."""
        if self._reply_row < 0:
            return
        speed = f"{figures.tokens_per_s:.1f} tok/s" if figures.tokens > 1 else "…"
        self.window.speed_label.setText(speed)
        self._show_context(figures.context_used, figures.context_size)

    def _finished(self, stats: GenerationStats) -> None:
        if self._continued:  # the footer and the store count the whole reply
            stats = continued_stats(self.history.reply_stats_before, stats)
        reply = "".join(self._reply_parts)
        self.window.chat.transcript.finish(self._reply_row, stats.summary())
        self.messages.append(Message("assistant", reply))
        self.history.on_reply_finished(reply, stats)
        self._reply_row = -1
        self.window.chat.set_generating(False)
        self.window.speed_label.setText(f"{stats.decode_tokens_per_s:.1f} tok/s")
        self._show_context(stats.context_used, stats.context_size)
        if not reply[self._continued:].strip() and stats.stop_reason == "eos":
            self.window.show_info(
                "The model had nothing to add: it ended the reply again."
                if self._continued
                else "The model ended its reply without any text. Try Regenerate."
            )
        if stats.dropped_messages:  # a visible marker, not a failure (notices are not stored)
            self.window.chat.transcript.append_message("notice", CONTEXT_FULL_NOTICE.format(
                n=stats.dropped_messages, ctx=stats.context_size))  # fmt: skip
        self.replyFinished.emit(stats)

    def _generation_failed(self, message: str, details: str) -> None:
        if self._reply_row >= 0 and self._continued:  # keep the reply that was being continued
            self.window.chat.transcript.finish(self._reply_row, f"Continue failed: {message}")
        elif self._reply_row >= 0:
            self.window.chat.transcript.set_error(self._reply_row, message)
        if self.messages and self.messages[-1].role == "user":
            pass  # the user message stays; Regenerate or a new message retries
        self.history.on_reply_failed("".join(self._reply_parts))
        self._reply_row = -1
        self.window.chat.set_generating(False)
        self.window.show_error(message, details)
        self.replyFailed.emit(message)

    def _model_stopped(self, message: str, details: str) -> None:
        """The model's host process ended (llama.cpp crashed, or a limit stopped it): the reply
        written so far stays, marked incomplete; one line in the chat says what happened, and
        the banner offers Reload. The window and the saved chat are untouched."""
        transcript = self.window.chat.transcript
        if self._reply_row >= 0:
            transcript.finish(self._reply_row, STOPPED_MARK)
            written = "".join(self._reply_parts)
            self.history.on_reply_failed(written)
            if written:  # the next message (or Continue, after Reload) sees what was written
                self.messages.append(Message("assistant", written))
            self._reply_row = -1
            self.window.chat.set_generating(False)
            self.replyFailed.emit(message)
        self.stopped_model = self.loaded
        self._unloaded()
        if self.stopped_model is not None:
            self.window.chat.model_status.setText(f"{self.stopped_model.name} stopped")
        transcript.append_message("notice", message)
        self.window.show_error(message, details, actions=[("Reload", self.reload)])

    def _say_no_model(self) -> None:
        """Send, Regenerate or Continue with no model loaded: say how to get one (after the
        model's process stopped: Reload, in the banner again)."""
        if self.stopped_model is not None:
            self.window.show_error(f"{self.stopped_model.name} stopped. Reload it to go on.",
                                   actions=[("Reload", self.reload)])  # fmt: skip
        else:
            self.window.show_error(
                "No model is loaded. Double-click a model in the library, or drop a .gguf file."
            )

    def _reply_actionable(self, row: int) -> bool:
        """Whether the reply at ``row`` can be regenerated or continued now: no reply is being
        written, the row is a reply, and a model is loaded (else it says how to get one)."""
        transcript = self.window.chat.transcript
        if self._reply_row >= 0 or not 0 <= row < transcript.rowCount():
            return False
        if self.loaded is None:
            self._say_no_model()
            return False
        return transcript.message(row).role == "assistant"

    def regenerate(self, row: int) -> None:
        """Generate a new version of the reply at ``row``; the old one stays (‹ 1/2 ›)."""
        transcript = self.window.chat.transcript
        if not self._reply_actionable(row):
            return
        self.cancel_edit()
        seq = self._seq_of(row)
        self.messages = self.history.context_before(seq)
        if not self.messages or self.messages[-1].role != "user":
            return
        transcript.remove_from(row)
        self._request_reply(replaces=seq)

    def continue_reply(self, row: int) -> None:
        """Let the model carry on writing the last reply (cut off, or stopped at max tokens)."""
        transcript = self.window.chat.transcript
        if not self._reply_actionable(row):
            return
        later = [m.role for m in transcript.messages()[row + 1:] if m.role != "notice"]
        if later or not self.messages or self.messages[-1].role != "assistant":
            return  # only the last reply can be continued
        self.messages.pop()
        self._request_reply(continue_row=row)

    def edit(self, row: int) -> None:
        """Put a user message in the message box to edit: Send keeps the edit as a new version
        of it (the original and its replies stay), Cancel leaves everything as it was."""
        transcript = self.window.chat.transcript
        if self._reply_row >= 0 or not 0 <= row < transcript.rowCount():
            return
        if transcript.message(row).role != "user":
            return
        if self._editing is None:
            self._draft_before_edit = self.window.chat.input.toPlainText()
        self._editing = self._seq_of(row)
        self.window.chat.set_message_text(transcript.message(row).text)
        self.window.chat.set_editing(True)
        self.window.chat.view.scrollTo(transcript.index(row, 0))
        self.window.chat.input.setFocus()

    def cancel_edit(self) -> None:
        """Leave the message being edited as it was and put the draft back in the box."""
        if self._editing is None:
            return
        self._editing = None
        self.window.chat.set_editing(False)
        self.window.chat.input.setPlainText(self._draft_before_edit)

    def switch_version(self, row: int, step: int) -> None:
        """Show the previous (-1) or next (+1) version of the message at ``row``."""
        if self._reply_row >= 0:
            return
        self.cancel_edit()
        self.history.select_version(self._seq_of(row), step)

    def _row_of(self, seq: int) -> int:
        """The transcript row of stored place ``seq`` (notices are not stored)."""
        stored = -1
        for row, message in enumerate(self.window.chat.transcript.messages()):
            if message.role != "notice":
                stored += 1
                if stored == seq:
                    return row
        return self.window.chat.transcript.rowCount()

    def _seq_of(self, row: int) -> int:
        """The stored message index of transcript ``row`` (notices are not stored)."""
        return sum(1 for m in self.window.chat.transcript.messages()[:row] if m.role != "notice")

    # -- status ----------------------------------------------------------------------------

    def _show_memory(self) -> None:
        snap = memory_snapshot()
        self.window.ram_label.setText(
            f"RAM: app {human_bytes(snap.process_rss)} · {human_bytes(snap.available)} free"
            f" of {human_bytes(snap.total)}"
        )


NARROW_WINDOW = 1100  # below this width a first start opens without the settings panel

CONTEXT_FULL_NOTICE = (
    "Context full: the {n} oldest messages were left out of what the model saw for this reply "
    "(context {ctx:,} tokens). They stay in the chat; a longer context length or a new chat "
    "keeps them in view."
)
