"""The GUI's composition root: every page's controller built with what it uses (its page, the
settings, the library, the model, a notifier), wired to the others by signals, started and
stopped in order. No controller is given this object.

Runs on the GUI thread. Slow work goes to the model worker (loading and generation) or to
:func:`run_job` (file validation and copying).
"""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QObject, QThreadPool

from quantdesk.config.hub_access import hub_client, token_store
from quantdesk.config.paths import AppPaths
from quantdesk.config.settings import Settings
from quantdesk.engine.downloads.queue import DownloadManager
from quantdesk.engine.downloads.store import DownloadStore
from quantdesk.engine.library.importer import MODE_REFERENCE
from quantdesk.engine.library.starter import (
    CHAT_STARTER_FILE_NAME,
    CHAT_STARTER_NAME,
    ensure_chat_starter_file,
    ensure_starter_file,
)
from quantdesk.engine.library.store import LibraryEntry, add_model_file
from quantdesk.engine.quantize.job_parts import PartJournal
from quantdesk.engine.remote.models import parse_remote_key
from quantdesk.engine.sqlite_files import open_store
from quantdesk.engine.wording import counted
from quantdesk.gui.chat_controller import ChatController
from quantdesk.gui.cluster_controller import ClusterController
from quantdesk.gui.discover_controller import DiscoverController
from quantdesk.gui.downloads_controller import DownloadsController
from quantdesk.gui.hub_token_controller import HubTokenController
from quantdesk.gui.import_controller import ImportController
from quantdesk.gui.lab_controller import LabController
from quantdesk.gui.library_controller import LibraryController
from quantdesk.gui.model_controller import ModelController
from quantdesk.gui.notifier import Notifier
from quantdesk.gui.quantize_controller import QuantizeController
from quantdesk.gui.remote_controller import RemoteController
from quantdesk.gui.server_controller import ServerController
from quantdesk.gui.settings_controller import HUB_TOKEN_SECTION, SettingsController
from quantdesk.gui.window_controller import WindowController
from quantdesk.ui.jobs import run_job
from quantdesk.ui.main_window import MainWindow


class AppController(QObject):
    """Builds and wires the controllers of one window; :meth:`start` fills it, the window's
    close (or :meth:`shutdown`) stops them."""

    def __init__(
        self, paths: AppPaths, settings: Settings, window: MainWindow, downloads_index: int
    ) -> None:
        """``window`` has its pages added; ``downloads_index`` is the Downloads page's place."""
        super().__init__()
        self.paths, self.settings, self.window = paths, settings, window
        notifier = self.notifier = Notifier(window)
        models = self.models = ModelController(settings, notifier, paths.probe_cache)
        self.window_ctl = WindowController(window, settings, paths.log_dir)
        library = self.library = LibraryController(
            window.library, settings, paths, notifier, models
        )
        self.remote = RemoteController(window.library, paths.remote_servers_file, notifier, models)
        self.imports = ImportController(library, settings, paths.models_dir, notifier, models)
        self.chat = ChatController(
            window.chat, window.chat_list, (window.speed_label, window.context_label),
            settings, notifier, models, paths.chats_db,
        )  # fmt: skip
        hub = hub_client(paths)
        self.hub_token = HubTokenController(token_store(paths), hub)
        self.settings_ctl = SettingsController(
            window.settings_panel, settings, notifier, models, paths.presets_db,
            conversation_under_way=lambda: bool(self.chat.messages),
            extra_pages=lambda: [(HUB_TOKEN_SECTION, self.hub_token.page())],
        )  # fmt: skip
        self.discover = DiscoverController(
            window.discover_page, settings, hub, lambda: {e.path.name for e in library.entries()}
        )
        queue, self._queue_warning = open_store(
            DownloadStore, paths.downloads_db, what="The download queue",
            not_kept="Downloads queued now are not kept after QuantDesk closes.",
            untouched="downloaded files were not touched",
        )  # fmt: skip
        manager = DownloadManager(queue, paths.models_dir / "hub", hub,
                                  parallel=settings.get("downloads.parallel"))  # fmt: skip
        self.downloads = DownloadsController(window.downloads_page, downloads_index, manager,
                                             settings, library, notifier, models)  # fmt: skip
        self.quantize = QuantizeController(library, paths, notifier, models)
        self.server = ServerController(window.server_page, settings, notifier, models)
        self.cluster = ClusterController(window.cluster_page, settings, paths, notifier, models,
                                         window.library.current_entry)  # fmt: skip
        self.lab = LabController(window.lab_page, settings, paths, library, notifier)
        self._shut_down = False
        self._wire()
        manager.start()

    def _wire(self) -> None:
        """The signals that cross from one controller (or the window's menus) to another."""
        w, chat, settings_ctl = self.window, self.chat, self.settings_ctl
        w.filesDropped.connect(lambda paths: self.imports.import_files([Path(p) for p in paths]))
        w.library.addRequested.connect(self.imports.add_dialog)
        w.chat.modelChosen.connect(self.models.load)
        w.newChatRequested.connect(chat.new_chat)
        w.exportChatRequested.connect(chat.export_shown_chat)
        w.preferencesRequested.connect(lambda: settings_ctl.open_preferences())
        w.reloadRequested.connect(self.models.reload)
        w.closing.connect(self.shutdown)
        self.remote.entriesChanged.connect(self.library.set_remote_entries)
        self.library.pathSelected.connect(w.chat.select_model)
        self.library.quantizeRequested.connect(self.quantize.open)
        self.imports.quantizeRequested.connect(self.quantize.open)
        chat.systemPromptShown.connect(settings_ctl.show_system_prompt)
        settings_ctl.applied.connect(chat.settings_applied)
        settings_ctl.applied.connect(self.downloads.settings_applied)
        settings_ctl.loadSettingsChanged.connect(self.library.load_settings_changed)
        w.discover_page.tokenRequested.connect(
            lambda: settings_ctl.open_preferences(HUB_TOKEN_SECTION))
        self.hub_token.changed.connect(w.show_info)
        self.hub_token.changed.connect(lambda _words: self.discover.token_changed())
        w.discover_page.downloadRequested.connect(
            lambda repo, row: self.downloads.request(repo, row, w.discover_page.context_length())
        )

    def start(self, open_files: list[Path]) -> None:
        """Fill the library, prepare the starter model, open files given on the command line."""
        self.library.refresh()
        self.chat.show_welcome()
        self.chat.history.restore_latest()
        found = (self.library.warning, self.chat.history.warning,
                 self.settings_ctl.presets.warning, self._queue_warning)  # fmt: skip
        warnings = [w for w in found if w]
        if warnings:
            self.notifier.error(" ".join(warnings))
        run_job(PartJournal(self.paths.jobs_dir).clean_stale, on_done=self._stale_parts_removed,
                on_error=lambda _exc: None)  # fmt: skip
        if open_files:
            self.imports.import_files(open_files, mode=MODE_REFERENCE, load_first=True)
        if os.environ.get("QUANTDESK_SKIP_STARTER") == "1":
            self._starter_ready(open_files)
            return
        run_job(
            self._add_starter,
            on_done=lambda _entry: self._starter_ready(open_files),
            on_error=self.notifier.job_failed,
        )

    def open_files(self, files: list[Path]) -> None:
        """Files handed over by a later launch (a double-click on a .gguf): bring the window to
        the front, add them where they are and load the first."""
        self.window_ctl.raise_window()
        if files:
            self.imports.import_files(files, mode=MODE_REFERENCE, load_first=True)

    def shutdown(self) -> None:
        """Save the window layout, stop the services, free the model, close the stores (once:
        the window's close and the caller may both ask)."""
        if self._shut_down:
            return
        self._shut_down = True
        self.window_ctl.shutdown()
        self.settings_ctl.shutdown()
        self.server.stop()
        self.library.shutdown()
        self.cluster.stop_server()
        self.downloads.shutdown()
        self.models.shutdown()
        # background jobs finish (2 s at most) and the pool's idle threads exit with them
        QThreadPool.globalInstance().waitForDone(2000)
        self.chat.shutdown()
        self.settings_ctl.close()
        self.library.close()

    def _stale_parts_removed(self, removed: list[Path]) -> None:
        """Say which unfinished files of stopped quantizations the start removed."""
        if removed:
            names = ", ".join(p.name for p in removed)
            self.notifier.info(
                f"Removed {counted(len(removed), 'unfinished file')} left by a quantization "
                f"that was stopped before it ended: {names}."
            )

    def _starter_ready(self, open_files: list[Path]) -> None:
        self.library.refresh()
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
        if remote is not None and self.remote.store.find(remote[0]):
            self.remote.load_when_listed(last)  # its server is asked for its models first
            return
        # never start loading a model found in another tool's folder that the user did not pick;
        # a first start chats with the instruct starter, not the base model
        owned = sorted((e for e in entries if e.owned),
                       key=lambda e: e.path.name != CHAT_STARTER_FILE_NAME)  # fmt: skip
        fallback = next(iter(owned), None)
        chosen = next((e for e in entries if str(e.path) == last), fallback)
        if chosen is not None and self.models.loaded is None and not self.models.loading:
            self.models.load(chosen)
