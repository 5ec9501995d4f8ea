"""The model host process: owns one loaded model and does what its parent asks.

Started by :class:`~quantdesk.engine.run.model_process.ModelProcess`. Requests arrive as one JSON
object per line on standard input (``load``, ``generate``, ``stop``, ``tokenize``, ``quit``);
events leave as marked JSON lines on standard output (see
:data:`~quantdesk.engine.child_process.EVENT_MARKER`). ``stop`` is read by its own thread, so it
takes effect before the next token even while a reply streams. llama.cpp's own words (an abort's
``what():`` line, a ``GGML_ASSERT``) go to standard error, which the parent keeps.

When llama.cpp crashes here (SIGABRT, SIGBUS, SIGSEGV), only this process ends; the parent tells
the user what happened and the app goes on.
"""

from __future__ import annotations

import json
import os
import queue
import sys
import threading
from dataclasses import asdict
from typing import Any

from quantdesk.engine.child_process import emit, exit_with_parent


class _Requests:
    """Standard input, read on its own thread: ``stop`` sets the running reply's stop event at
    once (if it names that reply); other requests queue for the main thread."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self._queue: queue.Queue[dict[str, Any]] = queue.Queue()
        self._lock = threading.Lock()
        self._running: int | None = None
        self.emitted = 0  # token events of the running reply sent so far
        self.stop_seen_at: int | None = None  # ``emitted`` when its stop arrived
        threading.Thread(target=self._read, name="requests", daemon=True).start()

    def _read(self) -> None:
        for line in sys.stdin:
            if not line.strip():
                continue
            request = json.loads(line)
            if request["op"] == "stop":
                with self._lock:
                    if request.get("id") == self._running and not self.stop.is_set():
                        self.stop_seen_at = self.emitted
                        self.stop.set()
            else:
                self._queue.put(request)
        self._queue.put({"op": "quit"})  # the parent closed the pipe (or died)

    def next(self) -> dict[str, Any]:
        """The next request other than ``stop`` (blocks)."""
        return self._queue.get()

    def running(self, reply_id: int | None) -> None:
        """The reply that a ``stop`` with this id now stops (None: none runs)."""
        with self._lock:
            self._running = reply_id
            self.stop.clear()
            self.emitted = 0
            self.stop_seen_at = None


def _event(event: object) -> dict[str, Any]:
    from quantdesk.engine.events import (
        GenerationStats,
        PromptReady,
        ThinkingText,
        TokenText,
        ToolCall,
    )

    if isinstance(event, TokenText):
        return {"type": "token", "text": event.text}
    if isinstance(event, ThinkingText):
        return {"type": "thinking", "text": event.text}
    if isinstance(event, ToolCall):
        return {"type": "tool_call", **asdict(event)}
    if isinstance(event, PromptReady):
        return {"type": "prompt", **asdict(event)}
    if isinstance(event, GenerationStats):
        return {"type": "stats", **asdict(event)}
    raise TypeError(f"unknown generation event {event!r}")


def _tools(sent: dict | None) -> object:
    """The ToolRequest the parent sent (None for none)."""
    from quantdesk.engine.chat.tools import ToolRequest

    return None if sent is None else ToolRequest(tuple(sent["tools"]), sent["choice"])


def _serve(requests: _Requests) -> None:
    from quantdesk.engine.chat.templates import Message
    from quantdesk.engine.errors import QuantDeskError
    from quantdesk.engine.params import LoadSettings, SamplingSettings
    from quantdesk.engine.run.session import InferenceSession

    session: InferenceSession | None = None
    while True:
        request = requests.next()
        op = request["op"]
        if op == "quit":
            os._exit(0)  # the system frees the model at once; freeing it here takes time
        try:
            if op == "load":
                session = InferenceSession.load(request["path"],
                                                LoadSettings(**request["settings"]),
                                                keep_stderr=True)  # fmt: skip
                emit({"type": "loaded", "settings": asdict(session.settings),
                      "context_size": session.context_size, "mode": session.mode})  # fmt: skip
            elif session is None:
                raise QuantDeskError("No model is loaded in this model host.")
            elif op == "tokenize":
                emit({"type": "count", "n": session.count_tokens(request["text"])})
            elif op == "generate":
                requests.running(request["id"])
                events = session.generate(
                    [Message(**m) for m in request["messages"]],
                    SamplingSettings(**request["sampling"]), requests.stop,
                    request.get("prefill", ""), request.get("raw", False),
                    on_prepared=lambda: emit({"type": "prepared"}),
                    thinking_apart=request.get("thinking_apart", False),
                    tools=_tools(request.get("tools")),
                )  # fmt: skip
                for event in events:
                    sent = _event(event)
                    if sent["type"] in ("token", "thinking"):
                        requests.emitted += 1
                    elif sent["type"] == "stats":  # how soon a stop took effect, for tests
                        sent["stop_seen_at"] = requests.stop_seen_at
                        sent["tokens_sent"] = requests.emitted
                    emit(sent)
                requests.running(None)
            else:
                raise QuantDeskError(f"The model host does not know the request '{op}'.")
        except QuantDeskError as exc:
            requests.running(None)
            emit({"type": "error", "kind": type(exc).__name__, "message": exc.message,
                  "details": exc.details})  # fmt: skip
        except Exception as exc:  # a fault of ours: words for the parent, the host lives on
            requests.running(None)
            emit({"type": "error", "kind": "GenerationError",
                  "message": f"The model host failed on '{op}': {exc!r}.", "details": ""})


def main() -> int:
    """Serve the parent's requests until it says ``quit`` or goes away."""
    exit_with_parent()
    _serve(_Requests())
    return 0


if __name__ == "__main__":
    sys.exit(main())
