"""One model, many callers: a thread that owns the model's host process and runs generation jobs
one after the other, in the order they came.

Callers (server requests, the CLI) submit a job and read its events from the job's own queue;
a caller that goes away sets the job's stop event and the host moves on at the next token. Only
the host thread touches the model, so callers never corrupt each other's context. When a job
crashes the model's process (llama.cpp aborted), that job gets the error and the model is
loaded again for the next one.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from quantdesk.engine.chat.templates import Message
from quantdesk.engine.chat.tools import ToolRequest
from quantdesk.engine.errors import QuantDeskError
from quantdesk.engine.events import GenerationEvent
from quantdesk.engine.params import LoadSettings, SamplingSettings
from quantdesk.engine.run.model_process import ModelProcess

log = logging.getLogger(__name__)

DONE = object()  # the last item a job's events receive


@dataclass
class Job:
    """One generation: its inputs, a stop switch and the queue its events arrive on."""

    messages: Sequence[Message]
    sampling: SamplingSettings
    raw: bool = False
    thinking_apart: bool = False  # a reasoning model's thinking comes as ThinkingText
    tools: ToolRequest | None = None  # functions the reply may call (ToolCall events)
    stop: threading.Event = field(default_factory=threading.Event)
    events: queue.Queue = field(default_factory=queue.Queue)

    @classmethod
    def new(cls, messages: Sequence[Message], sampling: SamplingSettings, *, raw: bool = False,
            thinking_apart: bool = False, events: object | None = None,
            tools: ToolRequest | None = None) -> Job:  # fmt: skip
        """A job for ``messages``; ``events``: any object with ``put(item)`` to receive its
        events instead of the job's own queue (an asyncio bridge)."""
        job = cls(list(messages), sampling, raw=raw, thinking_apart=thinking_apart, tools=tools)
        if events is not None:
            job.events = events  # type: ignore[assignment]
        return job

    def results(self, timeout: float | None = None) -> Iterator[GenerationEvent]:
        """The job's events as they come (TokenText..., then GenerationStats); raises the
        QuantDeskError the generation raised."""
        while True:
            item = self.events.get(timeout=timeout)
            if item is DONE:
                return
            if isinstance(item, QuantDeskError):
                raise item
            yield item


def run_job(session: ModelProcess | None, job: Job) -> None:
    """Generate ``job`` on ``session`` (on the thread that owns it), putting its events, any
    error and the DONE marker on the job's queue; a job stopped before its turn only ends."""
    if session is None:
        job.events.put(QuantDeskError("No model is loaded in QuantDesk. Load one first."))
    elif not job.stop.is_set():
        try:
            for event in session.generate(job.messages, job.sampling, job.stop, raw=job.raw,
                                          thinking_apart=job.thinking_apart,
                                          tools=job.tools):  # fmt: skip
                job.events.put(event)
        except QuantDeskError as exc:
            job.events.put(exc)
    job.events.put(DONE)


class ModelHost:
    """Owns one loaded model on its own thread; :meth:`submit` queues a job for it."""

    def __init__(self, path: Path, settings: LoadSettings,
                 notice: Callable[[str], None] = log.warning) -> None:  # fmt: skip
        """Load ``path`` in a host process; ``notice`` hears of each restart after a crash."""
        self.session = ModelProcess.load(path, settings)
        self.path = Path(path)
        self._settings = settings
        self._notice = notice
        self.restarts = 0
        self._jobs: queue.Queue[Job | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="model-host", daemon=True)
        self._thread.start()

    @property
    def waiting(self) -> int:
        """Jobs queued behind the one running."""
        return self._jobs.qsize()

    def submit(self, messages: Sequence[Message], sampling: SamplingSettings, *,
               raw: bool = False, thinking_apart: bool = False,
               events: object | None = None, tools: ToolRequest | None = None) -> Job:  # fmt: skip
        """Queue a generation; read it with ``job.results()``, cancel with ``job.stop.set()``.

        ``raw``: the last message's text is the whole prompt (no chat template: a plain
        completion). ``thinking_apart``: a reasoning model's thinking comes as ThinkingText.
        ``events``: any object with ``put(item)`` to receive the events instead of the job's
        own queue (an asyncio bridge); the end is the :data:`DONE` marker. ``tools``: the
        functions the reply may call.
        """
        job = Job.new(messages, sampling, raw=raw, thinking_apart=thinking_apart, events=events,
                      tools=tools)  # fmt: skip
        self._jobs.put(job)
        return job

    def close(self) -> None:
        """Finish the running job's current token, drop the queue, free the model."""
        self._jobs.put(None)
        self._thread.join()
        self.session.close()

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            if self.session.stopped is not None:  # loading it again failed last time: retry
                self._restart(self.session.stopped)
            run_job(self.session, job)
            if self.session.stopped is not None:
                self._restart(self.session.stopped)
        while not self._jobs.empty():  # closing: nobody will run these
            leftover = self._jobs.get_nowait()
            if leftover is not None:
                leftover.events.put(DONE)

    def _restart(self, why: str) -> None:
        """Load the model again after its process ended (the job that crashed it has its 500)."""
        self.session.close()
        try:
            self.session = ModelProcess.load(self.path, self._settings)
        except QuantDeskError as exc:  # the file itself went bad: the next jobs say so
            self._notice(f"{why} Loading it again failed: {exc.message}")
            return
        self.restarts += 1
        self._notice(f"{why} It was loaded again; the server goes on.")
