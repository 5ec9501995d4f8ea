"""One helper to run a function off the GUI thread and get its result back on it.

Like Anki's QueryOp: ``run_job(fn, on_done=..., on_error=...)``. The function
runs on Qt's global thread pool; its result or its exception comes back through
a queued signal, so callbacks always run on the GUI thread.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

_live: set[_JobSignals] = set()


class _JobSignals(QObject):
    done = Signal(object)
    failed = Signal(object)


class _Job(QRunnable):
    def __init__(self, fn: Callable[[], Any], signals: _JobSignals) -> None:
        super().__init__()
        self._fn = fn
        self._signals = signals

    def run(self) -> None:
        try:
            result = self._fn()
        except BaseException as exc:  # noqa: BLE001 - every failure goes back to the GUI
            self._signals.failed.emit(exc)
        else:
            self._signals.done.emit(result)


def run_job(
    fn: Callable[[], Any],
    *,
    on_done: Callable[[Any], None],
    on_error: Callable[[BaseException], None],
) -> None:
    """Run ``fn()`` off the GUI thread; ``on_done(result)`` or ``on_error(exc)`` run on it."""
    signals = _JobSignals()
    _live.add(signals)

    def finish_ok(result: Any) -> None:
        _live.discard(signals)
        on_done(result)

    def finish_error(exc: BaseException) -> None:
        _live.discard(signals)
        on_error(exc)

    signals.done.connect(finish_ok)
    signals.failed.connect(finish_error)
    QThreadPool.globalInstance().start(_Job(fn, signals))
