"""A loaded model in its own process: llama.cpp can crash there, never in the app.

:class:`ModelProcess` has the interface of :class:`~quantdesk.engine.run.session.InferenceSession`
(``generate``, ``count_tokens``, ``close``, ``report``, ``mode``, ``context_size``) but the
``Llama`` lives in a host process (:mod:`quantdesk.engine.run._model_process_child`). Requests go to
it as JSON lines, token events come back as they are made. When the host dies (SIGABRT from an
uncaught C++ exception, SIGBUS from a model file truncated under it, SIGKILL), the running call
raises :class:`~quantdesk.engine.errors.ModelStopped` with llama.cpp's own words from the host's
standard error; what was streamed before stays with the caller.

The parent also enforces the limits the host cannot enforce on itself: the chat template and
tokenizer get :data:`PREPARE_LIMIT_S`, a stop that is not honoured within :data:`STOP_LIMIT_S`
ends the host, free memory below the RAM watchdog's floor ends it, so does a host that grows
past its own memory budget (:func:`memory_budget`: what the estimator says this model and
context take, with room to spare), and :meth:`close` waits :data:`QUIT_WAIT_S` at most.
"""

from __future__ import annotations

import json
import os
import queue
import re
import subprocess
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from quantdesk.engine import errors
from quantdesk.engine.chat.templates import Message
from quantdesk.engine.chat.tools import ToolRequest
from quantdesk.engine.child_process import EVENT_MARKER, crash_reason, module_command
from quantdesk.engine.errors import ModelLoadError, ModelStopped, QuantDeskError
from quantdesk.engine.events import (
    GenerationEvent,
    GenerationStats,
    PromptReady,
    ThinkingText,
    TokenText,
    ToolCall,
)
from quantdesk.engine.gguf.model_info import ModelReport, summarize
from quantdesk.engine.gguf.reader import read_header_cached
from quantdesk.engine.params import LoadSettings, SamplingSettings
from quantdesk.engine.run.session import MODE_CHAT

POLL_S = 0.02
PREPARE_LIMIT_S = 10.0  # the chat template (itself bounded to 1 s in the host) and tokenizing
STOP_LIMIT_S = 5.0  # a reply asked to stop that goes on this long: the host is ended
QUIT_WAIT_S = 1.0
MEMORY_CHECK_S = 0.5
BUDGET_SHARE = 1.5  # a host's memory budget: this times the estimate's peak RAM...
BUDGET_SLACK = 1 << 30  # ...plus this (the estimate's misses, a GPU runtime's host memory)
STDERR_LINES = 80

_EXITED = object()  # the host's standard output ended: it is gone


class ModelProcess:
    """One model loaded in its own host process (see the module's docstring)."""

    def __init__(self, path: Path, report: ModelReport, proc: subprocess.Popen[bytes]) -> None:
        self.path = path
        self.report = report
        self.settings = LoadSettings()
        self.mode = MODE_CHAT
        self.context_size = 0
        self.context_used = 0
        self.stopped: str | None = None  # why the host ended, once it has
        self.budget: int | None = None  # the host's memory budget, bytes (None: unknown)
        self._limited = False  # ended by a limit of the parent (memory, time)
        self._reply = 0  # the reply generating now (or last)
        #: Tokens the host sent after it received the last reply's stop (None: not stopped).
        self.tokens_after_stop: int | None = None
        self._proc = proc
        self._events: queue.Queue[Any] = queue.Queue()
        self._stderr: deque[str] = deque(maxlen=STDERR_LINES)
        self._send_lock = threading.Lock()
        self._ids = iter(range(1, 1 << 62))
        self._stdout = threading.Thread(target=self._read_events, name="host-events", daemon=True)
        self._stderr_reader = threading.Thread(target=self._read_stderr, name="host-stderr",
                                               daemon=True)  # fmt: skip
        self._stdout.start()
        self._stderr_reader.start()

    # -- starting --------------------------------------------------------------------------

    @classmethod
    def load(cls, path: str | Path, settings: LoadSettings, *,
             cancel: threading.Event | None = None) -> ModelProcess:  # fmt: skip
        """Start a host and load ``path`` in it; raises what the load raised there
        (InvalidGGUF, ModelLoadError...) or ModelLoadError when the host died loading."""
        path = Path(path)
        report = summarize(read_header_cached(path), path=path)  # a bad header: said here
        env = {**os.environ, "GGML_NO_BACKTRACE": "1", "PYTHONUNBUFFERED": "1"}
        proc = subprocess.Popen(
            module_command("quantdesk.engine.run._model_process_child"),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
            start_new_session=True,  # a Ctrl-C in the terminal reaches the command, which stops
        )  # fmt: skip
        host = cls(path, report, proc)
        try:
            host._send({"op": "load", "path": str(path), "settings": asdict(settings)})
            loaded = host._wait_for(("loaded",), during="loading", cancel=cancel)
        except ModelStopped as exc:
            if host._limited:  # a limit of ours ended it: its words say which
                raise ModelLoadError(exc.message, exc.details) from exc
            why = crash_cause(proc.returncode, list(host._stderr), path.name)
            raise ModelLoadError(
                f"'{path.name}' could not be loaded: {why}. The app kept running; the file may be "
                "damaged or unsupported by this llama.cpp build.", exc.details) from exc
        except BaseException:
            host._end()
            raise
        host.settings = LoadSettings(**loaded["settings"])
        host.context_size = int(loaded["context_size"])
        host.mode = loaded["mode"]
        host.budget = memory_budget(path, host.settings)
        return host

    @property
    def pid(self) -> int:
        """The host process's id."""
        return self._proc.pid

    # -- requests --------------------------------------------------------------------------

    def count_tokens(self, text: str) -> int:
        """How many tokens ``text`` takes with this model's tokenizer."""
        self._send({"op": "tokenize", "text": text})
        return int(self._wait_for(("count",), during="tokenizing")["n"])

    def generate(
        self,
        messages: Sequence[Message],
        sampling: SamplingSettings,
        stop: threading.Event,
        prefill: str = "",
        raw: bool = False,
        thinking_apart: bool = False,
        tools: ToolRequest | None = None,
    ) -> Iterator[GenerationEvent]:
        """Stream the reply to ``messages`` from the host: TokenText events (and ThinkingText
        with ``thinking_apart``, ToolCall with ``tools``, see ``InferenceSession.generate``),
        then one GenerationStats; ``stop`` set: the host stops before its next token."""
        reply = next(self._ids)
        self._reply = reply
        self._send({"op": "generate", "id": reply, "messages": [asdict(m) for m in messages],
                    "sampling": asdict(sampling), "prefill": prefill, "raw": raw,
                    "thinking_apart": thinking_apart,
                    "tools": None if tools is None else asdict(tools)})  # fmt: skip
        started = time.monotonic()
        prepared = False
        asked_stop_at: float | None = None
        watch = _MemoryWatch(self.pid, self.budget)
        while True:
            if stop.is_set() and asked_stop_at is None:
                asked_stop_at = time.monotonic()
                self._send({"op": "stop", "id": reply}, quiet=True)
            event = self._next(timeout=POLL_S, during="writing the reply", messages=messages)
            # the limits hold while tokens stream too, not only while the host is silent
            now = time.monotonic()
            if asked_stop_at is not None and now - asked_stop_at > STOP_LIMIT_S:
                self._limit(f"it did not stop within {STOP_LIMIT_S:g} s of being asked")
            if not prepared and event is None and now - started > PREPARE_LIMIT_S:
                self._limit(f"preparing the prompt (the chat template and the tokenizer) "
                            f"took over {PREPARE_LIMIT_S:g} s")  # fmt: skip
            if (low := watch.running_out()) is not None:
                self._limit(f"free memory fell to {low // 2**20:,} MiB")
            if (used := watch.over_budget()) is not None:
                self._limit(f"it took {used // 2**20:,} MiB of memory, more than the "
                            f"{self.budget // 2**20:,} MiB this model and context can need "
                            "(its memory estimate, with room to spare)")  # fmt: skip
            if event is None:
                continue
            kind = event["type"]
            if kind == "token":
                yield TokenText(event["text"])
            elif kind == "thinking":
                yield ThinkingText(event["text"])
            elif kind == "tool_call":
                yield ToolCall(event["id"], event["name"], event["arguments"])
            elif kind == "prepared":
                prepared = True
            elif kind == "prompt":
                yield PromptReady(event["prompt_tokens"], event["context_size"])
            elif kind == "stats":
                seen_at, sent = event.pop("stop_seen_at"), event.pop("tokens_sent")
                self.tokens_after_stop = None if seen_at is None else sent - seen_at
                stats = GenerationStats(**{k: v for k, v in event.items() if k != "type"})
                self.context_used = stats.context_used
                yield stats
                return
            elif kind == "error":
                raise _error(event)

    def interrupt(self) -> None:
        """Ask the host to stop the running reply now (any thread): it ends before its next
        token, without waiting for this side's loop to notice the stop event."""
        self._send({"op": "stop", "id": self._reply}, quiet=True)

    def stopped_error(self) -> ModelStopped:
        """The host's end as the error a caller gets: :attr:`stopped` and llama.cpp's last
        words as its details."""
        said = "\n".join(list(self._stderr)[-40:])
        return ModelStopped(self.stopped or "The model stopped.", said)

    def close(self) -> None:
        """End the host (the system frees the model at once); waits QUIT_WAIT_S at most."""
        if self._proc.poll() is None:
            self._send({"op": "quit"}, quiet=True)
        self._end()

    # -- plumbing --------------------------------------------------------------------------

    def _end(self) -> None:
        try:
            self._proc.wait(timeout=QUIT_WAIT_S)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        try:
            if self._proc.stdin is not None:
                self._proc.stdin.close()
        except OSError:  # a broken pipe: the host is gone anyway
            pass
        if self.stopped is None:
            self.stopped = "The model was unloaded."

    def _send(self, request: dict[str, Any], *, quiet: bool = False) -> None:
        """Write one request; a host that is gone raises ModelStopped (unless ``quiet``)."""
        data = (json.dumps(request) + "\n").encode("utf-8")
        try:
            with self._send_lock:
                assert self._proc.stdin is not None
                self._proc.stdin.write(data)
                self._proc.stdin.flush()
        except (OSError, ValueError):
            if not quiet:
                raise self._died(during="starting", messages=()) from None

    def _wait_for(self, kinds: tuple[str, ...], *, during: str,
                  cancel: threading.Event | None = None) -> dict[str, Any]:  # fmt: skip
        """The next event of one of ``kinds``; an ``error`` event raises its error."""
        watch = _MemoryWatch()
        while True:
            if cancel is not None and cancel.is_set():
                self._proc.kill()
                raise ModelLoadError(f"Loading '{self.path.name}' was cancelled.")
            event = self._next(timeout=POLL_S, during=during, messages=())
            if event is None:
                if (low := watch.running_out()) is not None:
                    self._limit(f"free memory fell to {low // 2**20:,} MiB: this model does not "
                                "fit in the memory free now (out of memory)")  # fmt: skip
                continue
            if event["type"] == "error":
                raise _error(event)
            if event["type"] in kinds:
                return event

    def _next(self, *, timeout: float, during: str,
              messages: Sequence[Message]) -> dict[str, Any] | None:  # fmt: skip
        """The next event, None after ``timeout``; the host's end raises ModelStopped."""
        if self.stopped is not None:
            raise ModelStopped(self.stopped)
        try:
            event = self._events.get(timeout=timeout)
        except queue.Empty:
            return None
        if event is not _EXITED:
            return event
        raise self._died(during=during, messages=messages)

    def _died(self, *, during: str, messages: Sequence[Message]) -> ModelStopped:
        """The error that says how the host ended (waiting a second at most for its end)."""
        if self.stopped is None:
            try:
                code = self._proc.wait(timeout=QUIT_WAIT_S)
            except subprocess.TimeoutExpired:  # its pipe broke but it lives: end it
                self._proc.kill()
                code = self._proc.wait()
            self._stderr_reader.join(timeout=QUIT_WAIT_S)  # its last words
            self.stopped = stopped_words(code, list(self._stderr), during=during,
                                         messages=messages, file_name=self.path.name)  # fmt: skip
        return self.stopped_error()

    def _limit(self, why: str) -> None:
        """End a host that went past a limit; raises ModelStopped saying so."""
        self._proc.kill()
        self._proc.wait()
        self._limited = True
        self.stopped = f"The model was stopped: {why}."
        raise ModelStopped(self.stopped, "\n".join(self._stderr))

    def _read_events(self) -> None:
        assert self._proc.stdout is not None
        marker = EVENT_MARKER.encode()
        for line in self._proc.stdout:
            if line.startswith(marker):
                self._events.put(json.loads(line[len(marker):]))
            elif line.strip():
                self._stderr.append(line.decode("utf-8", "replace").rstrip())
        self._events.put(_EXITED)

    def _read_stderr(self) -> None:
        assert self._proc.stderr is not None
        for line in self._proc.stderr:
            if line.strip():
                self._stderr.append(line.decode("utf-8", "replace").rstrip())


def memory_budget(path: Path, settings: LoadSettings) -> int | None:
    """The most memory a host of ``path`` loaded with ``settings`` may take: BUDGET_SHARE times
    the estimator's peak RAM plus BUDGET_SLACK; None when the model cannot be estimated."""
    from quantdesk.engine.estimate.memory import EstimateParams, estimate
    from quantdesk.engine.library.discovery import split_parts

    try:
        headers = [read_header_cached(part) for part in split_parts(path)]
        peak = estimate(headers, EstimateParams.from_load_settings(settings)).peak_ram
    except (QuantDeskError, OSError, ValueError, KeyError):
        return None
    return int(peak * BUDGET_SHARE) + BUDGET_SLACK


class _MemoryWatch:
    """The RAM watchdog's verdict, and the host's memory against its budget, at most every
    MEMORY_CHECK_S each."""

    def __init__(self, pid: int | None = None, budget: int | None = None) -> None:
        self._next = time.monotonic() + MEMORY_CHECK_S
        self._next_own = 0.0  # the host's own size: at once, then every MEMORY_CHECK_S
        self._pid, self._budget = pid, budget

    def running_out(self) -> int | None:
        """The free RAM in bytes when it fell below the watchdog's floor (else None)."""
        now = time.monotonic()
        if now < self._next:
            return None
        self._next = now + MEMORY_CHECK_S
        from quantdesk.engine.run.probe import memory_running_out

        return memory_running_out()

    def over_budget(self) -> int | None:
        """The host's resident memory in bytes when it is over its budget (else None)."""
        now = time.monotonic()
        if self._pid is None or self._budget is None or now < self._next_own:
            return None
        self._next_own = now + MEMORY_CHECK_S
        import psutil

        try:
            used = psutil.Process(self._pid).memory_info().rss
        except psutil.Error:  # gone: its end is reported as such
            return None
        return used if used > self._budget else None


def _error(event: dict[str, Any]) -> QuantDeskError:
    """The host's error event as the error it was there."""
    kind = getattr(errors, event.get("kind", ""), None)
    if not (isinstance(kind, type) and issubclass(kind, QuantDeskError)):
        kind = QuantDeskError
    return kind(event["message"], event.get("details", ""))


_WHAT = re.compile(r"what\(\):\s*(.+)")
_ASSERT = re.compile(r"(GGML_ASSERT\(.+?\) failed|GGML_ABORT.*|error: .+)")


def crash_cause(returncode: int, said: Sequence[str], file_name: str = "") -> str:
    """How the host ended, in words: llama.cpp's own where it left some (an uncaught
    exception's ``what():``, a failed ``GGML_ASSERT``), else the signal's meaning."""
    import signal

    cause = ""
    for line in reversed(said):
        if found := _WHAT.search(line) or _ASSERT.search(line):
            cause = found.group(1).strip()
            break
    if returncode >= 0:
        return f"its process ended (exit code {returncode})" + (f": {cause}" if cause else "")
    try:
        name = signal.Signals(-returncode).name
    except ValueError:
        name = f"signal {-returncode}"
    if cause and name == "SIGABRT":
        return f"llama.cpp aborted: {cause}"
    if name == "SIGBUS" and file_name:
        return (f"the model's file '{file_name}' became unreadable while in use (changed, "
                f"truncated or on a lost disk) ({name})")  # fmt: skip
    return f"{crash_reason(name)} ({name})"


def stopped_words(returncode: int, said: Sequence[str], *, during: str,
                  messages: Sequence[Message], file_name: str = "") -> str:  # fmt: skip
    """The one line the user reads when the host ended while ``during``."""
    cause = crash_cause(returncode, said, file_name)
    if "unordered_map::at" in cause and during == "writing the reply":
        cause += _unencodable(messages)
    return f"The model stopped: {cause}."


def _unencodable(messages: Sequence[Message]) -> str:
    """Which characters of the newest message an SPM vocabulary without byte tokens cannot
    encode (llama.cpp looks their byte tokens up with ``unordered_map::at``): the non-ASCII
    ones, since such a vocabulary has its ASCII characters."""
    text = messages[-1].content if messages else ""
    chars = list(dict.fromkeys(c for c in text if ord(c) > 127))[:5]
    if not chars:
        return " — this model's vocabulary cannot encode some of the text"
    shown = ", ".join(f"'{c}'" for c in chars)
    if len(chars) == 1:
        return f" — this model's vocabulary cannot encode {shown}"
    return f" — this model's vocabulary cannot encode one of {shown}"
