"""SQLite storage of the download queue (one table); used by :mod:`downloads` under its lock.

Every write is its own committed transaction (WAL, ``synchronous=NORMAL``), so the queue
survives an app restart and ``kill -9``; the ``.part`` files on disk, not ``done_bytes``, are
the truth about how much was fetched.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quantdesk.engine.sqlite_files import open_database


class DownloadState:
    """The states of a queued download."""

    QUEUED = "queued"
    RUNNING = "running"
    PAUSED = "paused"
    FAILED = "failed"
    DONE = "done"
    CANCELLED = "cancelled"

    FINISHED = (DONE, FAILED, PAUSED, CANCELLED)
    """States :meth:`DownloadManager.wait` returns on."""


@dataclass(frozen=True)
class DownloadItem:
    """One queued download (a file, or all parts of a split set) as plain data."""

    id: int
    repo_id: str
    revision: str | None
    files: tuple[str, ...]
    dest: Path
    state: str
    total_bytes: int
    done_bytes: int
    speed_bps: float = 0.0
    eta_s: float | None = None
    error: str = ""
    created_at: float = 0.0
    updated_at: float = 0.0

    @property
    def fraction(self) -> float:
        """Share of the bytes on disk, 0..1."""
        return min(1.0, self.done_bytes / self.total_bytes) if self.total_bytes else 0.0

    def to_json(self) -> dict[str, Any]:
        """The item as JSON-ready data (for ``--json`` output)."""
        return {
            "id": self.id,
            "repo_id": self.repo_id,
            "revision": self.revision,
            "files": list(self.files),
            "dest": str(self.dest),
            "state": self.state,
            "total_bytes": self.total_bytes,
            "done_bytes": self.done_bytes,
            "fraction": round(self.fraction, 4),
            "speed_bps": round(self.speed_bps, 1),
            "eta_s": None if self.eta_s is None else round(self.eta_s, 1),
            "error": self.error,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


_SCHEMA = """CREATE TABLE IF NOT EXISTS downloads (
    id INTEGER PRIMARY KEY, repo_id TEXT NOT NULL, revision TEXT, files TEXT NOT NULL,
    dest TEXT NOT NULL, state TEXT NOT NULL, total_bytes INTEGER NOT NULL,
    done_bytes INTEGER NOT NULL, error TEXT NOT NULL, created_at REAL, updated_at REAL)"""


SCHEMA_VERSION = 1  # files written before schema versions were kept have 0: the same table


class DownloadStore:
    """The ``downloads`` table. Not locked itself: the manager serializes calls (from its
    worker threads: the connection is shared across them).

    Opened by the rules of :func:`~quantdesk.engine.sqlite_files.open_database`: a damaged file
    is moved aside (``recovered_from``); a newer, read-only or locked one raises and is left
    untouched (:func:`~quantdesk.engine.sqlite_files.open_store` then runs on a copy).
    """

    def __init__(self, db_path: Path | str) -> None:
        self._db, self.recovered_from = open_database(
            Path(db_path), _SCHEMA + ";", SCHEMA_VERSION, what="The download queue",
            check_same_thread=False,
        )  # fmt: skip
        self._db.execute("PRAGMA synchronous=NORMAL")

    def insert(
        self, repo_id: str, commit: str | None, files: Sequence[str], dest: Path, total: int
    ) -> int:
        """Add a queued item; returns its id."""
        now = time.time()
        with self._db:
            cursor = self._db.execute(
                "INSERT INTO downloads (repo_id, revision, files, dest, state, total_bytes,"
                " done_bytes, error, created_at, updated_at) VALUES (?,?,?,?,?,?,0,'',?,?)",
                (
                    repo_id,
                    commit,
                    json.dumps(list(files)),
                    str(dest),
                    DownloadState.QUEUED,
                    total,
                    now,
                    now,
                ),
            )
        return int(cursor.lastrowid or 0)

    def get(self, item_id: int) -> DownloadItem | None:
        """The stored item, or None."""
        row = self._db.execute("SELECT * FROM downloads WHERE id=?", (item_id,)).fetchone()
        return _item(row) if row else None

    def all(self) -> list[DownloadItem]:
        """Every item, oldest first."""
        return [_item(r) for r in self._db.execute("SELECT * FROM downloads ORDER BY id")]

    def find(self, repo_id: str, files: Sequence[str]) -> DownloadItem | None:
        """The newest item for exactly these files of ``repo_id`` that is not cancelled."""
        for item in reversed(self.all()):
            if item.repo_id == repo_id and item.files == tuple(files):
                if item.state != DownloadState.CANCELLED:
                    return item
        return None

    def next_queued(self, only: frozenset[int] | None) -> DownloadItem | None:
        """The oldest queued item (among ``only`` when given)."""
        for row in self._db.execute(
            "SELECT * FROM downloads WHERE state=? ORDER BY id", (DownloadState.QUEUED,)
        ):
            if only is None or row["id"] in only:
                return _item(row)
        return None

    def set_state(
        self,
        item_id: int,
        state: str,
        *,
        states: Sequence[str] = (),
        error: str | None = None,
        done_bytes: int | None = None,
    ) -> bool:
        """Move an item to ``state`` (only from one of ``states`` when given); True if it moved."""
        sets, args = ["state=?", "updated_at=?"], [state, time.time()]
        if error is not None:
            sets.append("error=?")
            args.append(error)
        if done_bytes is not None:
            sets.append("done_bytes=?")
            args.append(done_bytes)
        where = "id=?" + (f" AND state IN ({','.join('?' * len(states))})" if states else "")
        with self._db:
            cursor = self._db.execute(
                f"UPDATE downloads SET {', '.join(sets)} WHERE {where}", (*args, item_id, *states)
            )
        return cursor.rowcount > 0

    def set_progress(self, item_id: int, done_bytes: int) -> None:
        """Record bytes on disk (a hint for lists; the part files are the truth)."""
        with self._db:
            self._db.execute("UPDATE downloads SET done_bytes=? WHERE id=?", (done_bytes, item_id))

    def requeue_running(self, only: frozenset[int] | None) -> None:
        """Items a crash or kill left "running" go back to the queue."""
        for item in self.all():
            if item.state == DownloadState.RUNNING and (only is None or item.id in only):
                self.set_state(item.id, DownloadState.QUEUED, states=(DownloadState.RUNNING,))

    def delete(self, item_id: int, states: Sequence[str]) -> None:
        """Forget an item in one of ``states``."""
        marks = ",".join("?" * len(states))
        with self._db:
            self._db.execute(
                f"DELETE FROM downloads WHERE id=? AND state IN ({marks})", (item_id, *states)
            )

    def close(self) -> None:
        """Close the connection."""
        self._db.close()


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
        created_at=row["created_at"] or 0.0,
        updated_at=row["updated_at"] or 0.0,
    )
