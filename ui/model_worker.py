"""The one thread that talks to the loaded model.

:class:`ModelWorker` lives in its own QThread for the whole app life and is the
only object that ever touches the :class:`~quantdesk.engine.run.model_process.ModelProcess`
(llama.cpp itself runs in that host process: a crash there is the ``modelStopped`` signal,
never the app's end). Requests arrive as queued signals; tokens and results leave as queued
signals carrying plain data. ``stop()`` is safe to call from any thread: it sets an Event the
generator checks between tokens.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, QThread, Signal, Slot

from quantdesk.engine.chat.tools import ToolRequest
from quantdesk.engine.errors import (
    EstimateError,
    InvalidGGUF,
    ModelLoadError,
    ModelStopped,
    QuantDeskError,
)
from quantdesk.engine.estimate.load_plan import (
    Budget,
    LoadPlan,
    after_memory_failure,
    is_memory_error,
    machine_budget,
    plan_load,
)
from quantdesk.engine.events import (
    GenerationStats,
    LiveFigures,
    PromptReady,
    ThinkingText,
    TokenText,
)
from quantdesk.engine.params import AUTO_GPU_LAYERS, LoadSettings, SamplingSettings
from quantdesk.engine.remote.models import RemoteModel, RemoteSession
from quantdesk.engine.run.model_host import Job, run_job
from quantdesk.engine.run.model_process import ModelProcess
from quantdesk.engine.run.probe import ProbeCache, probe_load, raise_for_probe


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
    adjustments: tuple[str, ...] = ()  # settings made safer so that it fits ("context 8 → 4")


#: Loads retried with a smaller context (or KV cache) after running out of memory.
MAX_MEMORY_RETRIES = 4

# Text reaches the GUI at most this often, so a fast model never floods the event loop.
TOKEN_FLUSH_INTERVAL_S = 0.025
LIVE_FIGURES_INTERVAL_S = 0.5  # tok/s and context use in the status bar while a reply streams


class ModelWorker(QObject):
    """Owns the model; lives in a dedicated QThread."""

    # requests (connected with queued connections to the slots below)
    loadRequested = Signal(str, object)  # path, LoadSettings
    loadRemoteRequested = Signal(object)  # remote.RemoteModel
    generateRequested = Signal(object, object, str)  # list[Message], SamplingSettings, prefill
    unloadRequested = Signal()
    jobRequested = Signal(object)  # model_host.Job from the API server (any thread)

    # results
    loadStarted = Signal(str)
    loaded = Signal(object)  # LoadedModel
    loadFailed = Signal(str, str)  # message, details
    unloaded = Signal()
    generationStarted = Signal()
    tokenReady = Signal(str)
    thinkingReady = Signal(str)  # a piece of a reasoning model's thinking, before its answer
    figuresChanged = Signal(object)  # LiveFigures, at most every LIVE_FIGURES_INTERVAL_S
    generationFinished = Signal(object)  # GenerationStats
    generationFailed = Signal(str, str)
    modelStopped = Signal(str, str)  # message, details: the host process ended; Reload to go on

    def __init__(self, probe_cache: Path | None = None) -> None:
        super().__init__()
        self._session: ModelProcess | RemoteSession | None = None
        self.tokens_generated = 0  # tokens of the current reply (read by tests and benchmarks)
        self._stop = threading.Event()
        self._cancel_load = threading.Event()
        self._probe_cache = ProbeCache(probe_cache)
        #: What the machine offers, asked before each load (tests give a smaller machine).
        self.budget_probe: Callable[[], Budget] = machine_budget
        self.loadRequested.connect(self._load)
        self.loadRemoteRequested.connect(self._load_remote)
        self.generateRequested.connect(self._generate)
        self.jobRequested.connect(self._serve_job)
        self.unloadRequested.connect(self._unload)

    def request_reply(self, messages: list, sampling: SamplingSettings, prefill: str = "") -> None:
        """Ask for a reply (GUI thread). A stop from here on stops it, even one that comes
        before the worker thread has begun it."""
        self._stop.clear()
        self.generateRequested.emit(messages, sampling, prefill)

    def stop(self) -> None:
        """Stop the running generation before its next token (any thread)."""
        self._stop.set()
        session = self._session
        if isinstance(session, ModelProcess):
            session.interrupt()  # straight to the host: its next token is the last

    @Slot(str, object)
    def _load(self, path: str, settings: LoadSettings) -> None:
        self._unload_quietly()
        self.loadStarted.emit(path)
        try:
            session, settings, changes = self._load_stepping_down(Path(path), settings)
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
                adjustments=tuple(changes),
            )
        )

    @Slot(object)
    def _load_remote(self, remote: RemoteModel) -> None:
        """Use a model on a remote server as the loaded one (checked to answer first)."""
        self._unload_quietly()
        self.loadStarted.emit(remote.key)
        try:
            session = RemoteSession(remote)
        except QuantDeskError as exc:
            self.loadFailed.emit(exc.message, exc.details)
            return
        self._session = session
        self.loaded.emit(
            LoadedModel(path=remote.key, name=remote.model, file_type="remote", architecture="",
                        context_size=0, mode=session.mode, backend=f"remote · {remote.host}")
        )  # fmt: skip

    def _load_stepping_down(
        self, path: Path, asked: LoadSettings
    ) -> tuple[ModelProcess, LoadSettings, list[str]]:
        """Load with the asked settings, or safer ones when they would not fit in memory.

        Safer settings come first from the memory estimate (fewer GPU layers, a shorter
        context, a smaller KV cache type: :func:`step_down`), then from real failures: a test
        load stopped by the RAM watchdog or killed, or an allocation llama.cpp could not make,
        halves the context (then shrinks the KV cache) and tries again.
        """
        try:
            plan = plan_load(path, asked, self.budget_probe())
        except (EstimateError, InvalidGGUF):  # the estimator cannot model it: llama.cpp judges
            auto = asked.n_gpu_layers == AUTO_GPU_LAYERS
            plan = LoadPlan(asked.with_(n_gpu_layers=0) if auto else asked)
        settings, changes = plan.settings, list(plan.changes)
        if not plan.fits:  # not even tried: it would push the machine into swapping
            raise ModelLoadError(
                f"'{path.name}' needs more memory than this computer has free, even with "
                f"{'; '.join(changes)} ({plan.shortfall}). Close other programs, or pick a "
                "smaller quant of this model."
            )
        for _attempt in range(MAX_MEMORY_RETRIES + 1):
            result = probe_load(path, settings, cache=self._probe_cache, cancel=self._cancel_load)
            failure: QuantDeskError | None = None
            if not result.ok and not (result.out_of_memory or is_memory_error(result.details)):
                raise_for_probe(result)
            if result.ok:
                try:
                    host = ModelProcess.load(path, settings, cancel=self._cancel_load)
                    return host, settings, changes
                except ModelLoadError as exc:
                    if not is_memory_error(exc.message + exc.details):
                        raise
                    failure = exc
            smaller = after_memory_failure(settings)
            if smaller is None:
                if failure is not None:
                    raise failure
                raise_for_probe(result)
            settings, change = smaller
            changes.append(change)
        raise ModelLoadError(
            f"'{path.name}' does not fit in this computer's free memory, even with "
            + "; ".join(changes) + ". Close other programs or pick a smaller quant."
        )

    @Slot(object, object, str)
    def _generate(self, messages: list, sampling: SamplingSettings, prefill: str) -> None:
        session = self._session
        if session is None:
            self.generationFailed.emit("No model is loaded. Pick one in the library first.", "")
            return
        self.tokens_generated = 0  # the stop event was cleared when the reply was asked for
        self.generationStarted.emit()
        pending = _Pending(self.tokenReady, self.thinkingReady)
        last_flush = last_figures = time.monotonic()
        prompt: PromptReady | None = None
        first_at = 0.0
        try:
            for event in session.generate(messages, sampling, self._stop, prefill,
                                          thinking_apart=True):  # fmt: skip
                if isinstance(event, (TokenText, ThinkingText)):
                    self.tokens_generated += 1
                    pending.add(event)
                    now = time.monotonic()
                    if self.tokens_generated == 1:
                        first_at = now
                    if now - last_flush >= TOKEN_FLUSH_INTERVAL_S:
                        pending.flush()
                        last_flush = now
                    if prompt is not None and now - last_figures >= LIVE_FIGURES_INTERVAL_S:
                        self.figuresChanged.emit(self._figures(prompt, now - first_at))
                        last_figures = now
                elif isinstance(event, PromptReady):
                    prompt = event
                    self.figuresChanged.emit(self._figures(prompt, 0.0))
                elif isinstance(event, GenerationStats):
                    pending.flush()
                    self.generationFinished.emit(event)
        except ModelStopped as exc:
            pending.flush()
            self._host_ended(exc)
        except QuantDeskError as exc:
            pending.flush()
            self.generationFailed.emit(exc.message, exc.details)

    def _host_ended(self, exc: ModelStopped) -> None:
        """The model's host process is gone: forget it and say so (the chat offers Reload)."""
        self._unload_quietly()
        self.modelStopped.emit(exc.message, exc.details)

    def _figures(self, prompt: PromptReady, seconds: float) -> LiveFigures:
        """The reply's figures now (speed over the tokens after the first)."""
        n = self.tokens_generated
        speed = (n - 1) / seconds if n > 1 and seconds > 0 else 0.0
        return LiveFigures(n, speed, prompt.prompt_tokens + n, prompt.context_size)

    @Slot(object)
    def _serve_job(self, job: Job) -> None:
        """Run an API server's request on the model the chat uses, in turn with the chat's
        replies (both arrive as queued requests on this thread)."""
        run_job(self._session, job)
        session = self._session
        if isinstance(session, ModelProcess) and session.stopped is not None:
            self._host_ended(session.stopped_error())  # it crashed the model: the chat hears

    def _unload_quietly(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    @Slot()
    def _unload(self) -> None:
        self._unload_quietly()
        self.unloaded.emit()


class _Pending:
    """Streamed text waiting to be sent to the GUI in one signal: the thinking and the answer
    each in order, never mixed (a switch from one to the other sends what waits first)."""

    def __init__(self, answer: Signal, thinking: Signal) -> None:
        self._signals = {TokenText: answer, ThinkingText: thinking}
        self._kind: type = TokenText
        self._parts: list[str] = []

    def add(self, event: TokenText | ThinkingText) -> None:
        """Keep ``event``'s text (what waits of the other kind goes first)."""
        if type(event) is not self._kind:
            self.flush()
            self._kind = type(event)
        self._parts.append(event.text)

    def flush(self) -> None:
        """Send what waits."""
        if self._parts:
            self._signals[self._kind].emit("".join(self._parts))
            self._parts.clear()


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


class WorkerHost:
    """The API server's view of the GUI's model worker: the same ``submit`` as
    :class:`~quantdesk.engine.run.model_host.ModelHost`, so the server and the chat share one model
    (and one KV cache, reused by prefix) without touching each other's conversation."""

    def __init__(self, worker: ModelWorker) -> None:
        self._worker = worker

    def submit(self, messages: list, sampling: SamplingSettings, *, raw: bool = False,
               thinking_apart: bool = False, events: object | None = None,
               tools: ToolRequest | None = None) -> Job:  # fmt: skip
        """Queue a generation on the worker thread (callable from any thread)."""
        job = Job.new(messages, sampling, raw=raw, thinking_apart=thinking_apart, events=events,
                      tools=tools)  # fmt: skip
        self._worker.jobRequested.emit(job)
        return job
