"""The download queue: SQLite-backed, survives restarts and kill -9, N transfers at a time.

States: queued -> running -> done | failed | paused | cancelled. An item is one file or a
whole split set (all parts, in order). Work is done by :func:`download.download_file`; this
module schedules it, records progress, and reports changes through ``on_change`` (called on
worker threads, at most ~10 times a second per item and on every state change).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from quantdesk.engine.download import Paused, download_file, target_path
from quantdesk.engine.errors import DownloadFailed, InsufficientDiskSpace, QuantDeskError
from quantdesk.engine.hub import HubClient

QUEUED, RUNNING, PAUSED, FAILED, DONE, CANCELLED = (
    "queued",
    "running",
    "paused",
    "failed",
    "done",
    "cancelled",
)
_SCHEMA = """CREATE TABLE IF NOT EXISTS downloads (
    id INTEGER PRIMARY KEY, repo_id TEXT NOT NULL, revision TEXT, files TEXT NOT NULL,
    dest TEXT NOT NULL, state TEXT NOT NULL, total_bytes INTEGER NOT NULL,
    done_bytes INTEGER NOT NULL, error TEXT NOT NULL, created_at REAL, updated_at REAL)"""


@dataclass(frozen=True)
class DownloadItem:
    """One queued download as plain data."""

    id: int
    repo_id: str
    revision: str | None
    files: tuple[str, ...]
    dest: Path
    state: str
    total_bytes: int
    done_bytes: int
    error: str = ""
    speed_bps: float = 0.0
    eta_s: float | None = None

    @property
    def fraction(self) -> float:
        """Share of the bytes on disk, 0..1."""
        return min(1.0, self.done_bytes / self.total_bytes) if self.total_bytes else 0.0


class DownloadManager:
    """Runs the queue on ``parallel`` worker threads; thread-safe."""

    def __init__(
        self,
        db_path: Path,
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
        db_path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(db_path), check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        with self._db:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(_SCHEMA)
        self._lock = threading.RLock()
        self._wake = threading.Condition(self._lock)
        self._stops: dict[int, threading.Event] = {}
        self._live: dict[int, DownloadItem] = {}
        self._pause_wanted: set[int] = set()
        self._closing = False
        self._threads: list[threading.Thread] = []

    # -- queue operations ---------------------------------------------------------------------

    def start(self) -> None:
        """Re-queue what a crash left running and start the workers."""
        with self._lock, self._db:
            self._db.execute("UPDATE downloads SET state=? WHERE state=?", (QUEUED, RUNNING))
        for n in range(self.parallel):
            thread = threading.Thread(target=self._work, name=f"download-{n}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def enqueue(
        self, repo_id: str, files: Sequence[str], revision: str | None = None
    ) -> DownloadItem:
        """Queue ``files`` of ``repo_id`` as one item (or return the existing one)."""
        files = tuple(files)
        for item in self.items():
            if item.repo_id == repo_id and item.files == files and item.state != CANCELLED:
                return item
        remote = [self.client.resolve_file(repo_id, f, revision) for f in files]
        total = sum(r.size or 0 for r in remote)
        dest = target_path(self.dest_root, repo_id, files[0])
        dest.parent.mkdir(parents=True, exist_ok=True)
        free = _free_bytes(dest.parent)
        if total > free:
            raise InsufficientDiskSpace(
                f"Not enough disk space: {total / 2**30:.2f} GiB needed, {free / 2**30:.2f} GiB "
                f"free in {dest.parent}. Free some space and try again."
            )
        now = time.time()
        with self._lock, self._db:
            cursor = self._db.execute(
                "INSERT INTO downloads (repo_id, revision, files, dest, state, total_bytes,"
                " done_bytes, error, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (
                    repo_id,
                    remote[0].commit,
                    json.dumps(files),
                    str(dest),
                    QUEUED,
                    total,
                    0,
                    "",
                    now,
                    now,
                ),
            )
            item_id = int(cursor.lastrowid)
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
        """Queue a failed or cancelled item again."""
        self._set(item_id, QUEUED, states=(FAILED, CANCELLED), error="")

    def cancel(self, item_id: int) -> None:
        """Stop and delete the partial files (a finished file is never touched)."""
        with self._lock:
            if item_id in self._stops:
                self._stops[item_id].set()
            self._set(item_id, CANCELLED, states=(QUEUED, RUNNING, PAUSED, FAILED))
        item = self.get(item_id)
        if item is not None and item.state == CANCELLED:
            for name in item.files:
                part = target_path(self.dest_root, item.repo_id, name)
                part.with_name(part.name + ".part").unlink(missing_ok=True)

    def remove(self, item_id: int) -> None:
        """Forget a finished, failed or cancelled item (its model file stays)."""
        with self._lock, self._db:
            self._db.execute(
                "DELETE FROM downloads WHERE id=? AND state IN (?,?,?)",
                (item_id, DONE, FAILED, CANCELLED),
            )

    def get(self, item_id: int) -> DownloadItem | None:
        """The item with ``item_id``, with live speed/ETA while it runs."""
        with self._lock:
            if item_id in self._live:
                return self._live[item_id]
            row = self._db.execute("SELECT * FROM downloads WHERE id=?", (item_id,)).fetchone()
        return _item(row) if row else None

    def items(self) -> list[DownloadItem]:
        """All items, oldest first."""
        with self._lock:
            ids = [r[0] for r in self._db.execute("SELECT id FROM downloads ORDER BY id")]
        return [i for i in (self.get(n) for n in ids) if i is not None]

    def wait(self, item_id: int, timeout: float | None = None) -> DownloadItem | None:
        """Block until the item is done, failed, paused or cancelled (or the timeout passes)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._wake:
            while True:
                item = self.get(item_id)
                if item is None or item.state in (DONE, FAILED, PAUSED, CANCELLED):
                    return item
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return item
                self._wake.wait(0.2 if left is None else min(left, 0.2))

    def shutdown(self) -> None:
        """Stop the workers; running items go back to the queue and resume at the next start."""
        with self._lock:
            self._closing = True
            for stop in self._stops.values():
                stop.set()
            self._wake.notify_all()
        for thread in self._threads:
            thread.join(timeout=10)
        self._threads.clear()
        with self._lock:
            self._db.close()

    # -- workers ------------------------------------------------------------------------------

    def _next(self) -> tuple[DownloadItem, threading.Event] | None:
        with self._wake:
            while not self._closing:
                row = self._db.execute(
                    "SELECT * FROM downloads WHERE state=? ORDER BY id LIMIT 1", (QUEUED,)
                ).fetchone()
                if row is not None:
                    self._set(row["id"], RUNNING, notify=False)
                    stop = self._stops[row["id"]] = threading.Event()
                    return _item(row), stop
                self._wake.wait(0.5)
        return None

    def _work(self) -> None:
        while (task := self._next()) is not None:
            item, stop = task
            self._changed(item.id)
            self._run(item, stop)

    def _run(self, item: DownloadItem, stop: threading.Event) -> None:
        started, base = time.monotonic(), None
        done_before = 0
        last_report = [0.0]

        def progress(done: int, _total: int) -> None:
            nonlocal base
            on_disk = done_before + done
            base = on_disk if base is None else base
            now = time.monotonic()
            if now - last_report[0] < 0.1:
                return
            last_report[0] = now
            speed = (on_disk - base) / max(now - started, 1e-6)
            eta = (item.total_bytes - on_disk) / speed if speed > 0 else None
            with self._lock:
                self._live[item.id] = replace(
                    item, state=RUNNING, done_bytes=on_disk, speed_bps=speed, eta_s=eta
                )
                self._db.execute("UPDATE downloads SET done_bytes=? WHERE id=?", (on_disk, item.id))
            self._notify(self._live[item.id])

        state, error = DONE, ""
        try:
            for name in item.files:
                result = download_file(
                    self.client,
                    item.repo_id,
                    name,
                    self.dest_root,
                    revision=item.revision,
                    stop=stop,
                    progress=progress,
                )
                done_before += result.size
        except Paused:
            state = PAUSED if item.id in self._pause_wanted else QUEUED
        except QuantDeskError as exc:
            state, error = FAILED, exc.message
        except OSError as exc:
            state, error = FAILED, f"Could not write the file: {exc.strerror or exc}."
        with self._lock:
            self._stops.pop(item.id, None)
            self._live.pop(item.id, None)
            self._pause_wanted.discard(item.id)
            current = self.get(item.id)
            if current is not None and current.state == CANCELLED:
                state = CANCELLED
            extra = {"done_bytes": item.total_bytes} if state == DONE else {}
            # An item interrupted by shutdown goes back to the queue quietly: it resumes at
            # the next start.
            self._set(item.id, state, error=error, notify=not self._closing, **extra)

    # -- storage ------------------------------------------------------------------------------

    def _set(
        self,
        item_id: int,
        state: str,
        *,
        states: Sequence[str] = (),
        error: str | None = None,
        notify: bool = True,
        done_bytes: int | None = None,
    ) -> None:
        with self._lock, self._db:
            sets, args = ["state=?", "updated_at=?"], [state, time.time()]
            if error is not None:
                sets.append("error=?")
                args.append(error)
            if done_bytes is not None:
                sets.append("done_bytes=?")
                args.append(done_bytes)
            where = "id=?" + (f" AND state IN ({','.join('?' * len(states))})" if states else "")
            self._db.execute(
                f"UPDATE downloads SET {', '.join(sets)} WHERE {where}", (*args, item_id, *states)
            )
            self._wake.notify_all()
        if notify:
            self._changed(item_id)

    def _changed(self, item_id: int) -> DownloadItem:
        item = self.get(item_id)
        if item is None:
            raise DownloadFailed(f"Download {item_id} is not in the queue.")
        self._notify(item)
        return item

    def _notify(self, item: DownloadItem) -> None:
        if self.on_change is not None:
            self.on_change(item)


def _free_bytes(folder: Path) -> int:
    import shutil

    return shutil.disk_usage(folder).free


def _item(row: sqlite3.Row) -> DownloadItem:
    return DownloadItem(
        id=row["id"],
        repo_id=row["repo_id"],
        revision=row["revision"],
        files=tuple(json.loads(row["files"])),
        dest=Path(row["dest"]),
        state=row["state"],
        total_bytes=row["total_bytes"],
        done_bytes=row["done_bytes"],
        error=row["error"],
    )
