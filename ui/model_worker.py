"""The one thread that owns the loaded model.

:class:`ModelWorker` lives in its own QThread for the whole app life and is the
only object that ever touches the :class:`InferenceSession`. Requests arrive as
queued signals; tokens and results leave as queued signals carrying plain data.
``stop()`` is safe to call from any thread: it sets an Event the generator
checks between tokens.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, QThread, Signal, Slot

from quantdesk.engine.errors import QuantDeskError
from quantdesk.engine.events import GenerationStats, TokenText
from quantdesk.engine.load_plan import load_settings_for
from quantdesk.engine.params import LoadSettings, SamplingSettings
from quantdesk.engine.probe import ProbeCache, probe_load, raise_for_probe
from quantdesk.engine.session import InferenceSession


@dataclass(frozen=True)
class LoadedModel:
    """What the GUI needs to know about the loaded model."""

    path: str
    name: str
    file_type: str
    architecture: str
    context_size: int
    mode: str  # "chat" or "completion"
    backend: str


# Text reaches the GUI at most this often, so a fast model never floods the event loop.
TOKEN_FLUSH_INTERVAL_S = 0.025


class ModelWorker(QObject):
    """Owns the model; lives in a dedicated QThread."""

    # requests (connected with queued connections to the slots below)
    loadRequested = Signal(str, object)  # path, LoadSettings
    generateRequested = Signal(object, object, str)  # list[Message], SamplingSettings, prefill
    unloadRequested = Signal()

    # results
    loadStarted = Signal(str)
    loaded = Signal(object)  # LoadedModel
    loadFailed = Signal(str, str)  # message, details
    unloaded = Signal()
    generationStarted = Signal()
    tokenReady = Signal(str)
    generationFinished = Signal(object)  # GenerationStats
    generationFailed = Signal(str, str)

    def __init__(self, probe_cache: Path | None = None) -> None:
        super().__init__()
        self._session: InferenceSession | None = None
        self.tokens_generated = 0  # tokens of the current reply (read by tests and benchmarks)
        self._stop = threading.Event()
        self._cancel_load = threading.Event()
        self._probe_cache = ProbeCache(probe_cache)
        self.loadRequested.connect(self._load)
        self.generateRequested.connect(self._generate)
        self.unloadRequested.connect(self._unload)

    def stop(self) -> None:
        """Stop the running generation before its next token (any thread)."""
        self._stop.set()

    @Slot(str, object)
    def _load(self, path: str, settings: LoadSettings) -> None:
        self._unload_quietly()
        self.loadStarted.emit(path)
        try:
            settings = load_settings_for(Path(path), settings)  # "auto" GPU layers resolved once
            raise_for_probe(
                probe_load(path, settings, cache=self._probe_cache, cancel=self._cancel_load)
            )
            session = InferenceSession.load(path, settings)
        except QuantDeskError as exc:
            self.loadFailed.emit(exc.message, exc.details)
            return
        self._session = session
        layers = settings.n_gpu_layers
        backend = "CPU" if layers == 0 else "GPU offload" if layers < 0 else f"GPU: {layers} layers"
        self.loaded.emit(
            LoadedModel(
                path=path,
                name=session.report.name,
                file_type=session.report.file_type,
                architecture=session.report.architecture,
                context_size=session.context_size,
                mode=session.mode,
                backend=backend,
            )
        )

    @Slot(object, object, str)
    def _generate(self, messages: list, sampling: SamplingSettings, prefill: str) -> None:
        session = self._session
        if session is None:
            self.generationFailed.emit("No model is loaded. Pick one in the library first.", "")
            return
        self._stop.clear()
        self.tokens_generated = 0
        self.generationStarted.emit()
        pending: list[str] = []
        last_flush = time.monotonic()
        try:
            for event in session.generate(messages, sampling, self._stop, prefill):
                if isinstance(event, TokenText):
                    self.tokens_generated += 1
                    pending.append(event.text)
                    now = time.monotonic()
                    if now - last_flush >= TOKEN_FLUSH_INTERVAL_S:
                        self.tokenReady.emit("".join(pending))
                        pending.clear()
                        last_flush = now
                elif isinstance(event, GenerationStats):
                    if pending:
                        self.tokenReady.emit("".join(pending))
                        pending.clear()
                    self.generationFinished.emit(event)
        except QuantDeskError as exc:
            if pending:
                self.tokenReady.emit("".join(pending))
            self.generationFailed.emit(exc.message, exc.details)

    def _unload_quietly(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    @Slot()
    def _unload(self) -> None:
        self._unload_quietly()
        self.unloaded.emit()


class ModelThread:
    """Starts a :class:`ModelWorker` in its own QThread and shuts it down cleanly."""

    def __init__(self, probe_cache: Path | None = None) -> None:
        self.thread = QThread()
        self.thread.setObjectName("model-worker")
        self.worker = ModelWorker(probe_cache)
        self.worker.moveToThread(self.thread)
        self.thread.start()

    def shutdown(self) -> None:
        """Stop generation, free the model on its own thread, and join the thread."""
        self.worker.stop()
        self.worker._cancel_load.set()
        self.worker.unloadRequested.emit()
        self.thread.quit()
        self.thread.wait()
