"""One helper to run a function off the GUI thread and get its result back on it.

Like Anki's QueryOp: ``run_job(fn, on_done=..., on_error=...)``. The function
runs on Qt's global thread pool; its result or its exception comes back through
a queued signal to a QObject that lives on the GUI thread, so the callbacks
always run there (a plain Python callable as the slot would run on the pool
thread instead).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QCoreApplication, QObject, QRunnable, QThreadPool, Signal, Slot

_live: set[_JobRelay] = set()


class _JobRelay(QObject):
    """Lives on the GUI thread; receives the outcome and calls the callbacks there."""

    done = Signal(object)
    failed = Signal(object)
    progress = Signal(object)

    def __init__(
        self,
        on_done: Callable[[Any], None],
        on_error: Callable[[BaseException], None],
        on_progress: Callable[[Any], None] | None = None,
    ) -> None:
        super().__init__()
        self._on_done = on_done
        self._on_error = on_error
        self.done.connect(self._deliver_result)
        self.failed.connect(self._deliver_error)
        self._on_progress = on_progress
        self.progress.connect(self._deliver_progress)

    @Slot(object)
    def _deliver_result(self, result: Any) -> None:
        self._retire()
        self._on_done(result)

    @Slot(object)
    def _deliver_progress(self, value: Any) -> None:
        if self._on_progress is not None:
            self._on_progress(value)

    @Slot(object)
    def _deliver_error(self, exc: BaseException) -> None:
        self._retire()
        self._on_error(exc)

    def _retire(self) -> None:
        # Qt deletes the relay later on this (the GUI) thread: never by a reference count
        # dropping on the pool thread while events for it are still queued here.
        _live.discard(self)
        self.deleteLater()


class _Job(QRunnable):
    def __init__(self, fn: Callable[..., Any], relay: _JobRelay, with_progress: bool) -> None:
        super().__init__()
        self._fn = fn
        self._relay = relay
        self._with_progress = with_progress

    def run(self) -> None:
        try:
            result = self._fn(self._relay.progress.emit) if self._with_progress else self._fn()
        except BaseException as exc:  # noqa: BLE001 - every failure goes back to the GUI
            self._relay.failed.emit(exc)
        else:
            self._relay.done.emit(result)


def run_job(
    fn: Callable[..., Any],
    *,
    on_done: Callable[[Any], None],
    on_error: Callable[[BaseException], None],
    on_progress: Callable[[Any], None] | None = None,
) -> None:
    """Run ``fn()`` off the GUI thread; ``on_done(result)`` or ``on_error(exc)`` run on it.

    With ``on_progress``, ``fn`` is called as ``fn(report)``: each ``report(value)`` on the
    pool thread becomes an ``on_progress(value)`` call on the GUI thread.
    """
    relay = _JobRelay(on_done, on_error, on_progress)
    # owned by the application object (C++), so dropping the last Python reference on the pool
    # thread cannot destroy it; _retire() deletes it on the GUI thread
    relay.setParent(QCoreApplication.instance())
    _live.add(relay)
    QThreadPool.globalInstance().start(_Job(fn, relay, on_progress is not None))
