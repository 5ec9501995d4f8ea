"""The download queue: SQLite-backed, survives restarts and kill -9, N transfers at a time.

States (:class:`DownloadState`): queued -> running -> done | failed | paused | cancelled. An
item is one file or a whole split set (all parts, in order). Work is done by
:func:`download.download_file`; this module schedules it, records progress, and reports
changes through ``on_change`` (called on worker threads, at most ~10 times a second per item
and on every state change).

:meth:`DownloadManager.shutdown` leaves running items "queued" (not "paused"): the user did
not ask to pause them, so the next :meth:`~DownloadManager.start` continues them, resuming
from their ``.part`` files. Items a ``kill -9`` left "running" are re-queued the same way.
"""

from __future__ import annotations

import errno
import logging
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import replace
from pathlib import Path

from quantdesk.engine.downloads._transfer import Paused, download_file, part_path, target_path
from quantdesk.engine.downloads.store import DownloadItem, DownloadState, DownloadStore
from quantdesk.engine.errors import DownloadFailed, InsufficientDiskSpace, QuantDeskError
from quantdesk.engine.gguf.model_info import human_bytes
from quantdesk.engine.hub.client import HubClient
from quantdesk.engine.sqlite_files import problem_of, write_failure_words

__all__ = ["DownloadItem", "DownloadManager", "DownloadState"]

S = DownloadState
QUEUED, RUNNING, PAUSED, FAILED, DONE, CANCELLED = (
    S.QUEUED, S.RUNNING, S.PAUSED, S.FAILED, S.DONE, S.CANCELLED,
)  # fmt: skip
REPORT_INTERVAL_S = 0.1
log = logging.getLogger(__name__)


class DownloadManager:
    """Runs the queue on ``parallel`` worker threads; thread-safe."""

    def __init__(
        self,
        db_path: Path | DownloadStore,
        dest_root: Path,
        client: HubClient,
        *,
        parallel: int = 1,
        on_change: Callable[[DownloadItem], None] | None = None,
    ) -> None:
        self.dest_root = dest_root
        self.client = client
        self.parallel = max(1, parallel)
        self.on_change = on_change
        self._store = db_path if isinstance(db_path, DownloadStore) else DownloadStore(db_path)
        self._lock = threading.RLock()
        self._wake = threading.Condition(self._lock)
        self._stops: dict[int, threading.Event] = {}
        self._live: dict[int, DownloadItem] = {}
        # states the queue file could not take (a full disk, a lock): shown and waited on all
        # the same, saved by the item's next change that goes through
        self._unsaved: dict[int, DownloadItem] = {}
        self._verified: dict[int, str] = {}  # item id -> sha256 of its (first) file, as checked
        self._pause_wanted: set[int] = set()
        self._only: frozenset[int] | None = None
        self._closing = False
        self._threads: list[threading.Thread] = []

    # -- queue operations ---------------------------------------------------------------------

    def verified_sha256(self, item_id: int) -> str:
        """The sha256 the download of ``item_id`` checked (its first file; "" if none was)."""
        with self._lock:
            return self._verified.get(item_id, "")

    def start(self, *, only: Collection[int] | None = None) -> None:
        """Re-queue what a crash left running and start the workers.

        ``only`` limits the workers to these item ids (the CLI runs just the item it was asked
        for, leaving the rest of the queue to the app).
        """
        with self._lock:
            self._only = None if only is None else frozenset(only)
            self._store.requeue_running(self._only)
        for n in range(self.parallel):
            thread = threading.Thread(target=self._work, name=f"download-{n}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def enqueue(
        self, repo_id: str, files: Sequence[str], revision: str | None = None
    ) -> DownloadItem:
        """Queue ``files`` of ``repo_id`` as one item (or return the existing one).

        Resolves sizes, sha256 and the commit through the hub client (HubError subclasses on
        401/403/404 or no network) and refuses with InsufficientDiskSpace when the files do
        not fit. A finished item whose files were deleted since is queued again.
        """
        files = tuple(files)
        if not files:
            raise DownloadFailed("Nothing to download: no file was named.")
        targets = [target_path(self.dest_root, repo_id, f) for f in files]  # refuses traversal
        with self._lock:
            existing = self._store.find(repo_id, files)
        if existing is not None:
            if existing.state == DONE and not all(t.exists() for t in targets):
                self._set(existing.id, QUEUED, error="", done_bytes=0)
            return self.get(existing.id) or existing
        remote = [self.client.resolve_file(repo_id, f, revision) for f in files]
        total = sum(r.size or 0 for r in remote)
        on_disk = sum(_size(part_path(t)) for t in targets)
        targets[0].parent.mkdir(parents=True, exist_ok=True)
        free = _free_bytes(targets[0].parent)
        if total - on_disk > free:
            raise InsufficientDiskSpace(
                f"Not enough disk space for {files[0]}: {human_bytes(total - on_disk)} needed, "
                f"{human_bytes(free)} free in {targets[0].parent}. Free some space and try again.",
                needed=total - on_disk,
                free=free,
            )
        with self._lock:
            item_id = self._store.insert(repo_id, remote[0].commit, files, targets[0], total)
            self._wake.notify_all()
        return self._changed(item_id)

    def pause(self, item_id: int) -> None:
        """Pause: a running transfer stops before its next chunk; the part is kept."""
        with self._lock:
            if item_id in self._stops:
                self._pause_wanted.add(item_id)
                self._stops[item_id].set()
            else:
                self._set(item_id, PAUSED, states=(QUEUED,))

    def resume(self, item_id: int) -> None:
        """Put a paused item back in the queue."""
        self._set(item_id, QUEUED, states=(PAUSED,))

    def retry(self, item_id: int) -> None:
        """Queue a failed or cancelled item again (it resumes from any part kept)."""
        with self._lock:
            unsaved = self._unsaved.get(item_id)  # failed while the queue file refused writes
            if unsaved is not None and unsaved.state not in (FAILED, CANCELLED):
                return
            states = (FAILED, CANCELLED) if unsaved is None else ()
        self._set(item_id, QUEUED, states=states, error="")

    def cancel(self, item_id: int) -> None:
        """Stop and delete the partial files (a finished file is never touched)."""
        with self._lock:
            if item_id in self._stops:
                self._stops[item_id].set()
            moved = self._set(item_id, CANCELLED, states=(QUEUED, RUNNING, PAUSED, FAILED))
            item = self.get(item_id)
        if moved and item is not None:
            self._remove_parts(item)

    def remove(self, item_id: int) -> None:
        """Forget a finished, failed or cancelled item (its model file stays)."""
        with self._lock:
            self._store.delete(item_id, (DONE, FAILED, CANCELLED))

    def get(self, item_id: int) -> DownloadItem | None:
        """The item with ``item_id``, with live speed/ETA while it runs."""
        with self._lock:
            return (self._live.get(item_id) or self._unsaved.get(item_id)
                    or self._store.get(item_id))  # fmt: skip

    def items(self) -> list[DownloadItem]:
        """All items, oldest first."""
        with self._lock:
            return [self._live.get(i.id) or self._unsaved.get(i.id, i) for i in self._store.all()]

    def wait(self, item_id: int, timeout: float | None = None) -> DownloadItem:
        """Block until the item is done, failed, paused or cancelled (or the timeout passes)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._wake:
            while True:
                item = self.get(item_id)
                if item is None:
                    raise DownloadFailed(f"Download {item_id} is not in the queue.")
                if item.state in S.FINISHED:
                    return item
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return item
                self._wake.wait(0.2 if left is None else min(left, 0.2))

    def shutdown(self) -> None:
        """Stop the workers; running items stay "queued" and continue at the next start."""
        with self._lock:
            self._closing = True
            for stop in self._stops.values():
                stop.set()
            self._wake.notify_all()
        for thread in self._threads:
            thread.join(timeout=10)
        self._threads.clear()
        with self._lock:
            self._save_unsaved()
            self._store.close()

    def _save_unsaved(self) -> None:
        """Write the states the queue file refused earlier, now that it may take them (space
        freed); what it still refuses stays "running" there and is queued again at the next
        start, like an item a kill -9 interrupted."""
        for item_id, item in list(self._unsaved.items()):
            try:
                self._store.set_state(item_id, item.state, error=item.error,
                                      done_bytes=item.done_bytes)  # fmt: skip
            except sqlite3.Error:
                continue
            del self._unsaved[item_id]

    # -- workers ------------------------------------------------------------------------------

    def _next(self) -> tuple[DownloadItem, threading.Event] | None:
        with self._wake:
            while not self._closing:
                item = self._store.next_queued(self._only)
                if item is not None and item.id not in self._unsaved:
                    self._set(item.id, RUNNING, notify=False)
                    if item.id in self._unsaved:  # its start could not be recorded: failed
                        self._changed(item.id)
                        continue
                    stop = self._stops[item.id] = threading.Event()
                    return item, stop
                if self._unsaved:
                    self._save_unsaved()
                self._wake.wait(0.5)
        return None

    def _work(self) -> None:
        while (task := self._next()) is not None:
            item, stop = task
            self._changed(item.id)
            self._run(item, stop)

    def _run(self, item: DownloadItem, stop: threading.Event) -> None:
        started = time.monotonic()
        first = self._bytes_on_disk(item)  # speed counts only this run's bytes
        done_before, last_report = 0, 0.0

        def progress(done: int, _total: int) -> None:
            nonlocal last_report
            on_disk = done_before + done
            now = time.monotonic()
            if now - last_report < REPORT_INTERVAL_S:
                return
            last_report = now
            speed = (on_disk - first) / max(now - started, 1e-6)
            eta = (item.total_bytes - on_disk) / speed if speed > 0 else None
            live = replace(item, state=RUNNING, done_bytes=on_disk, speed_bps=speed, eta_s=eta)
            with self._lock:
                self._live[item.id] = live
                self._store.set_progress(item.id, on_disk)
            self._notify(live)

        state, error = DONE, ""
        try:
            for number, name in enumerate(item.files):
                result = download_file(
                    self.client, item.repo_id, name, self.dest_root,
                    revision=item.revision, stop=stop, progress=progress,
                )  # fmt: skip
                done_before += result.size
                if number == 0 and result.sha256 and result.verified:
                    with self._lock:
                        self._verified[item.id] = result.sha256
        except Paused:
            state = PAUSED if item.id in self._pause_wanted else QUEUED
        except QuantDeskError as exc:
            state, error = FAILED, exc.message
        except OSError as exc:
            state, error = FAILED, self._write_failure(item, exc)
        except sqlite3.Error as exc:  # the queue's own file: full disk, locked, read-only
            state, error = FAILED, _queue_failure(exc)
        except Exception as exc:  # noqa: BLE001 - a worker never dies: the item says why
            log.exception("download %s failed unexpectedly", item.id)
            state, error = FAILED, f"The download stopped on an unexpected error ({exc})."
        with self._lock:
            self._stops.pop(item.id, None)
            self._live.pop(item.id, None)
            self._pause_wanted.discard(item.id)
            current = self._store.get(item.id)
            cancelled = current is not None and current.state == CANCELLED
            if not cancelled:
                extra = {"done_bytes": item.total_bytes} if state == DONE else {}
                # An item interrupted by shutdown goes back to the queue quietly.
                self._set(item.id, state, error=error, notify=not self._closing, **extra)
        if cancelled:  # the worker may have opened the next part after cancel() cleaned up
            self._remove_parts(item)
            self._changed(item.id)

    # -- helpers ------------------------------------------------------------------------------

    def _write_failure(self, item: DownloadItem, exc: OSError) -> str:
        if exc.errno == errno.ENOSPC:
            left = max(item.total_bytes - self._bytes_on_disk(item), 0)
            folder = target_path(self.dest_root, item.repo_id, item.files[0]).parent
            return (f"The disk is full: {human_bytes(left)} more is needed in {folder}. What "
                    "was downloaded is kept; free some space and retry.")  # fmt: skip
        return f"Could not write the file: {exc.strerror or exc}."

    def _bytes_on_disk(self, item: DownloadItem) -> int:
        total = 0
        for name in item.files:
            final = target_path(self.dest_root, item.repo_id, name)
            total += _size(final) or _size(part_path(final))
        return total

    def _remove_parts(self, item: DownloadItem) -> None:
        for name in item.files:
            part_path(target_path(self.dest_root, item.repo_id, name)).unlink(missing_ok=True)

    def _set(
        self,
        item_id: int,
        state: str,
        *,
        states: Sequence[str] = (),
        error: str | None = None,
        notify: bool = True,
        done_bytes: int | None = None,
    ) -> bool:
        with self._lock:
            try:
                moved = self._store.set_state(
                    item_id, state, states=states, error=error, done_bytes=done_bytes
                )
                self._unsaved.pop(item_id, None)
            except sqlite3.Error as exc:
                moved = self._keep_unsaved(item_id, state, error, done_bytes, exc)
            self._wake.notify_all()
        if notify and moved:
            self._changed(item_id)
        return moved

    def _keep_unsaved(self, item_id: int, state: str, error: str | None,
                      done_bytes: int | None, exc: sqlite3.Error) -> bool:  # fmt: skip
        """The queue file refused a state change: keep it in memory (so waiters and the window
        see it) and say why; an item that could not start fails, it does not run unrecorded."""
        log.warning("download %s: state %s not saved: %s", item_id, state, exc)
        current = self._unsaved.get(item_id) or self._store.get(item_id)
        if current is None:
            return False
        if state == RUNNING:  # not started: it fails, so a full disk does not spin the worker
            state, error = FAILED, _queue_failure(exc)
        self._unsaved[item_id] = replace(
            current, state=state, error=current.error if error is None else error,
            done_bytes=current.done_bytes if done_bytes is None else done_bytes,
        )  # fmt: skip
        return True

    def _changed(self, item_id: int) -> DownloadItem:
        item = self.get(item_id)
        if item is None:
            raise DownloadFailed(f"Download {item_id} is not in the queue.")
        self._notify(item)
        return item

    def _notify(self, item: DownloadItem) -> None:
        if self.on_change is not None:
            self.on_change(item)


def _queue_failure(exc: sqlite3.Error) -> str:
    """Why the queue's own file stopped a download, in words."""
    if problem_of(exc) == "full":
        return ("The disk is full: the download queue cannot record progress. What was "
                "downloaded is kept; free some space and retry.")  # fmt: skip
    return write_failure_words(exc)


def _free_bytes(folder: Path) -> int:
    return shutil.disk_usage(folder).free


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0
