"""The model the app chats with and serves: loading, ejecting, reloading, and what state it is
in. One worker thread (:class:`ModelThread`) owns it; the pages follow it through signals."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal

from quantdesk.config.settings import Settings
from quantdesk.engine.library.store import LibraryEntry
from quantdesk.gui.notifier import Notifier
from quantdesk.ui.model_worker import LoadedModel, ModelThread, ModelWorker


class ModelController(QObject):
    """Loads library entries on the model worker and keeps what is loaded (GUI thread)."""

    aboutToLoad = Signal(object)  # Path: before the load settings are read (presets apply)
    loadStarted = Signal(str)  # the path (or remote key) being loaded
    modelLoaded = Signal(object)  # LoadedModel
    modelLoadFailed = Signal(str)  # the message (the banner shows it with details)
    modelUnloaded = Signal()
    modelStopped = Signal(str, str)  # message, details: its host process ended; Reload goes on

    def __init__(self, settings: Settings, notifier: Notifier, probe_cache: Path) -> None:
        super().__init__()
        self.settings, self.notifier = settings, notifier
        self.thread = ModelThread(probe_cache)
        self.loaded: LoadedModel | None = None
        self.stopped_model: LoadedModel | None = None  # its host process ended: Reload it
        self.loading = False
        self._requested: dict[str, LibraryEntry] = {}  # path or key -> the entry asked for
        worker = self.worker
        worker.loadStarted.connect(self._load_started)
        worker.loaded.connect(self._loaded)
        worker.loadFailed.connect(self._load_failed)
        worker.unloaded.connect(self._unloaded)
        worker.modelStopped.connect(self._stopped)

    @property
    def worker(self) -> ModelWorker:
        """The worker that owns the model (its signals stream the replies)."""
        return self.thread.worker

    def load(self, entry: LibraryEntry) -> None:
        """Load ``entry`` on the model worker (the previous model is unloaded first)."""
        if not entry.exists:
            self.notifier.error(
                f"'{entry.path}' no longer exists. It was moved or deleted outside QuantDesk; "
                "remove it from the library or put the file back."
            )
            return
        self.worker.stop()
        self.aboutToLoad.emit(entry.path)
        self._requested[str(entry.path)] = entry
        if entry.remote is not None:
            self.worker.loadRemoteRequested.emit(entry.remote)
            return
        self.worker.loadRequested.emit(str(entry.path), self.settings.load_settings())

    def reload(self) -> None:
        """Load the current model again (or the one whose host process stopped)."""
        model = self.loaded or self.stopped_model
        entry = self._requested.get(model.path) if model else None
        if entry is not None:
            self.load(entry)

    def eject(self) -> None:
        """Stop any reply and unload the model, freeing its memory."""
        self.worker.stop()
        self.worker.unloadRequested.emit()

    def stop_generation(self) -> None:
        """Stop the streaming reply before its next token."""
        self.worker.stop()

    def shutdown(self) -> None:
        """Stop generation, free the model and end its thread."""
        self.thread.shutdown()

    def _load_started(self, path: str) -> None:
        self.loading = True
        self.loadStarted.emit(path)

    def _loaded(self, model: LoadedModel) -> None:
        self.loading = False
        self.loaded = model
        self.stopped_model = None
        if model.adjustments:
            self.notifier.info(
                f"{Path(model.path).name} was loaded with safer settings so that it fits in this "
                f"computer's free memory: {'; '.join(model.adjustments)}. Your settings are "
                "unchanged; close other programs and Reload to try them again."
            )
        self.settings.set("library.last_model", model.path)
        self.modelLoaded.emit(model)

    def _load_failed(self, message: str, details: str) -> None:
        self.loading = False
        self.loaded = None
        self.notifier.error(message, details)
        self.modelLoadFailed.emit(message)

    def _unloaded(self) -> None:
        self.loaded = None
        self.modelUnloaded.emit()

    def _stopped(self, message: str, details: str) -> None:
        self.stopped_model = self.loaded
        self.loaded = None
        self.modelStopped.emit(message, details)
