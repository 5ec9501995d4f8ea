"""Run a piece of llama.cpp work in a child Python process and stream its events back.

The parent hands the child its job as JSON on standard input (:func:`read_job`; no size
limit, unlike a command-line argument: a user's text sample can be megabytes). The child
prints one JSON object per line after a marker on stdout; everything else it prints
(llama.cpp's own output) is kept as a tail for error details. Cancel kills the child
at once; a native crash (SIGSEGV, SIGABRT, SIGILL, OOM kill) ends only the child.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

EVENT_MARKER = "QUANTDESK-EVENT "


def exit_with_parent(parent_pid: int | None = None, interval_s: float = 1.0) -> None:
    """Child side: end this process when the process that started it is gone (killed, crashed)
    — a child holding a model or an RPC connection must not outlive the app."""
    parent = parent_pid if parent_pid is not None else os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval_s)
        os._exit(3)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def read_job() -> dict[str, Any]:
    """Child side: the job the parent passed to :func:`run_child` (JSON on standard input).
    From here on the child ends when its parent is gone (killed, crashed): a child holding a
    model must not outlive the app or the command that started it."""
    exit_with_parent()
    return json.loads(sys.stdin.read())


def serve_job(work: Callable[[dict[str, Any]], dict[str, Any]], what: str) -> int:
    """Child side: run ``work`` on the job and send its outcome as the ``result`` event
    (``work``'s dict merged into it); returns the exit status. A QuantDeskError's message
    reaches the parent as it is; anything else as "``what`` failed: …"."""
    from quantdesk.engine.errors import QuantDeskError

    job = read_job()
    try:
        payload = work(job)
    except QuantDeskError as exc:
        emit({"type": "result", "ok": False, "message": exc.message, "details": exc.details})
        return 1
    except Exception as exc:  # anything else still reaches the parent as words
        emit({"type": "result", "ok": False, "message": f"{what} failed: {exc}"})
        return 1
    emit({"type": "result", "ok": True, **payload})
    return 0


def progress_event(done: int, total: int) -> None:
    """Child side: send a (done, total) progress event."""
    emit({"type": "progress", "done": done, "total": total})


def emit(event: dict[str, Any]) -> None:
    """Child side: send one event to the parent."""
    sys.stdout.write(EVENT_MARKER + json.dumps(event) + "\n")
    sys.stdout.flush()


@dataclass(frozen=True)
class ChildOutcome:
    """How a child process ended."""

    returncode: int
    cancelled: bool
    timed_out: bool
    output_tail: str
    seconds: float

    @property
    def signal_name(self) -> str | None:
        """Name of the signal that killed the child ("SIGSEGV"), or None."""
        if self.returncode >= 0:
            return None
        try:
            return signal.Signals(-self.returncode).name
        except ValueError:
            return f"signal {-self.returncode}"


def crash_reason(signal_name: str) -> str:
    """Plain words for a signal that ended a llama.cpp child process."""
    reasons = {
        "SIGILL": "an illegal CPU instruction: this llama.cpp build was made for another CPU",
        "SIGKILL": "it was killed, most likely because the machine ran out of memory",
        "SIGABRT": "llama.cpp aborted on something it could not handle",
        "SIGSEGV": "a crash in llama.cpp's native code",
        "SIGBUS": "a file it had mapped became unreadable (changed, truncated or on a lost disk)",
    }
    return reasons.get(signal_name, f"it crashed ({signal_name})")


def module_command(module: str, *args: str) -> list[str]:
    """The command that runs ``python -m module *args`` with this app's Python; in a bundled
    app (PyInstaller: no ``-m``), the app's executable with ``--run-module``, which
    :func:`quantdesk.main.main` runs the same way."""
    if getattr(sys, "frozen", False):
        return [sys.executable, "--run-module", module, *args]
    return [sys.executable, "-m", module, *args]


def run_child(
    module: str,
    args: list[str],
    on_event: Callable[[dict[str, Any]], None],
    *,
    job: dict[str, Any] | None = None,
    cancel: threading.Event | None = None,
    timeout_s: float | None = None,
    tail_lines: int = 40,
    python: str | None = None,
    cwd: str | os.PathLike[str] | None = None,
) -> ChildOutcome:
    """Run ``python -m module *args``; call ``on_event`` for each event (on this thread).

    ``job``: sent as JSON on the child's standard input (the child reads it with
    :func:`read_job`); such a child runs in its own session, so a Ctrl-C in the terminal
    reaches only this process, which cancels it (and the child's parent watch ends it
    should this process die). ``python``: the interpreter (default: this one), e.g. a separate
    converter environment.
    """
    env = {**os.environ, "GGML_NO_BACKTRACE": "1", "PYTHONUNBUFFERED": "1"}
    started = time.monotonic()
    proc = subprocess.Popen(
        [python, "-m", module, *args] if python else module_command(module, *args),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL if job is None else subprocess.PIPE,
        text=True,
        errors="replace",
        env=env,
        bufsize=1,
        cwd=cwd,
        start_new_session=job is not None,
    )
    if job is not None:
        threading.Thread(target=_feed, args=(proc, json.dumps(job)), daemon=True).start()
    tail: deque[str] = deque(maxlen=tail_lines)
    lines: deque[str] = deque()
    done = threading.Event()
    reader = threading.Thread(target=_pump, args=(proc, lines, done), daemon=True)
    reader.start()
    cancelled = timed_out = False
    try:
        while True:
            for line in _drain(lines):
                if line.startswith(EVENT_MARKER):
                    on_event(json.loads(line[len(EVENT_MARKER) :]))
                elif line.strip():
                    tail.append(line.rstrip())
            if cancel is not None and cancel.is_set():  # first: a cancel always wins
                cancelled = True
                break
            if done.is_set() and not lines:
                break
            if timeout_s is not None and time.monotonic() - started > timeout_s:
                timed_out = True
                break
            done.wait(0.05)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        reader.join(timeout=5)
    return ChildOutcome(
        proc.returncode, cancelled, timed_out, "\n".join(tail), time.monotonic() - started
    )


def _feed(proc: subprocess.Popen[str], data: str) -> None:
    """Write the job to the child's stdin (a thread: a big job must not block reading its
    output); a child that died before reading it is reported by its exit, not here."""
    assert proc.stdin is not None
    try:
        proc.stdin.write(data)
        proc.stdin.close()
    except OSError:
        pass


def _pump(proc: subprocess.Popen[str], lines: deque[str], done: threading.Event) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
    done.set()


def _drain(lines: deque[str]) -> Iterator[str]:
    while lines:
        yield lines.popleft()


def run_child_job(
    module: str,
    job: dict[str, Any],
    *,
    what: str,
    on_progress: Callable[[int, int], None] | None = None,
    cancel: threading.Event | None = None,
) -> dict[str, Any]:
    """Run a child that emits ``progress`` (done, total) events and one ``result`` event.

    Returns the successful result event; raises QuantizeCancelled, or QuantizeError naming
    ``what`` ("The quality check") with the child's own message or the crash's reason.
    """
    from quantdesk.engine.errors import QuantizeCancelled, QuantizeError

    events: list[dict[str, Any]] = []

    def on_event(event: dict[str, Any]) -> None:
        if event["type"] == "progress" and on_progress is not None:
            on_progress(event["done"], event["total"])
        events.append(event)

    outcome = run_child(module, [], on_event, job=job, cancel=cancel)
    if outcome.cancelled:
        raise QuantizeCancelled(f"{what} was cancelled.")
    if outcome.signal_name:
        raise QuantizeError(f"{what} failed: {crash_reason(outcome.signal_name)}.",
                            outcome.output_tail)  # fmt: skip
    final = next((e for e in events if e["type"] == "result"), None)
    if final is None:
        raise QuantizeError(f"{what} ended without a result.", outcome.output_tail)
    if not final["ok"]:
        raise QuantizeError(final["message"], final.get("details", ""))
    return final
