"""The model index: every discovered GGUF file with its header summary, in SQLite (WAL).

:meth:`ModelIndex.refresh` takes the models :mod:`discovery` found and brings the index up to
date: a header is read again only when a file's (size, mtime_ns) changed, files no longer found
are marked gone, and the caller learns what was added, changed and removed. A rescan of files
that did not change costs one ``stat`` each and one transaction. A file that is not a valid
GGUF is recorded with its error instead of raising. The index is a cache of what is on disk:
a damaged or newer-version database is set aside (renamed, never deleted) and rebuilt.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from quantdesk.engine.errors import QuantDeskError
from quantdesk.engine.library.discovery import DiscoveredModel, split_info
from quantdesk.engine.sqlite_files import DatabaseUnwritable, NewerDatabase, open_database

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS models (
    path TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    source TEXT NOT NULL,
    parts TEXT NOT NULL,
    aliases TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    sha256 TEXT,
    architecture TEXT,
    parameter_count INTEGER,
    parameter_label TEXT,
    file_type TEXT,
    context_length INTEGER,
    error TEXT,
    first_seen REAL NOT NULL,
    last_seen REAL NOT NULL,
    gone INTEGER NOT NULL DEFAULT 0
);
"""
_COLUMNS = (
    "path", "name", "source", "parts", "aliases", "size", "mtime_ns", "sha256", "architecture",
    "parameter_count", "parameter_label", "file_type", "context_length", "error", "first_seen",
    "last_seen", "gone",
)  # fmt: skip
_UPSERT = (
    f"INSERT INTO models ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))}) "
    "ON CONFLICT(path) DO UPDATE SET "
    + ", ".join(f"{c}=excluded.{c}" for c in _COLUMNS if c not in ("path", "first_seen"))
)


@dataclass(frozen=True)
class IndexedModel:
    """One row of the index, as plain data (``error`` is set for a file that is not valid)."""

    path: Path
    name: str
    source: str
    parts: tuple[Path, ...]
    aliases: tuple[str, ...]
    size: int
    mtime_ns: int
    sha256: str | None
    architecture: str | None
    parameter_count: int | None
    parameter_label: str | None
    file_type: str | None
    context_length: int | None
    error: str | None
    first_seen: float
    last_seen: float
    gone: bool

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (paths as strings)."""
        data = asdict(self)
        data["path"] = str(self.path)
        data["parts"] = [str(p) for p in self.parts]
        data["aliases"] = list(self.aliases)
        return data


@dataclass(frozen=True)
class RefreshReport:
    """What one :meth:`ModelIndex.refresh` found (paths of the models' first files)."""

    added: tuple[Path, ...]
    changed: tuple[Path, ...]
    removed: tuple[Path, ...]
    unchanged: int
    headers_read: int
    seconds: float


@dataclass(frozen=True)
class _Summary:
    architecture: str | None = None
    parameter_count: int | None = None
    parameter_label: str | None = None
    file_type: str | None = None
    context_length: int | None = None
    error: str | None = None


def summarize_parts(parts: tuple[Path, ...]) -> _Summary:
    """Header summary of a model (all parts of a split set); a bad file gives ``error``."""
    from quantdesk.engine.gguf.model_info import parameter_label, summarize
    from quantdesk.engine.gguf.reader import read_header_from_file

    info = split_info(parts[0])
    if info is not None:
        have = [i[1] for p in parts if (i := split_info(p))]
        missing = [k for k in range(1, info[2] + 1) if k not in have]
        if missing:
            return _Summary(error=f"incomplete split set: part(s) {missing} of {info[2]} missing")
    try:
        reports = [summarize(read_header_from_file(p), path=p) for p in parts]
    except QuantDeskError as exc:
        return _Summary(error=exc.message)
    except (ValueError, KeyError, TypeError, OverflowError) as exc:  # odd but parseable metadata
        return _Summary(error=f"{parts[0].name}: unreadable header ({exc})")
    first = reports[0]
    n_params = sum(r.parameter_count for r in reports)
    return _Summary(
        first.architecture, n_params, parameter_label(n_params), first.file_type,
        first.context_length,
    )  # fmt: skip


def _stat(parts: tuple[Path, ...]) -> tuple[int, int] | None:
    """(total size, newest mtime_ns) of the parts, None if one is missing."""
    size = mtime = 0
    for p in parts:
        try:
            st = os.stat(p)
        except OSError:
            return None
        size += st.st_size
        mtime = max(mtime, st.st_mtime_ns)
    return size, mtime


class ModelIndex:
    """SQLite index of discovered models; one instance per thread (sqlite3 connections are)."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        self.set_aside: Path | None = None  # where a damaged database was moved
        self.in_memory = False  # a newer, read-only or busy file: left as it is
        self.note = ""  # what to tell the user about the file, if anything
        what = "The index of models found on disk"
        try:
            self._db, self.set_aside = open_database(db_path, _SCHEMA, SCHEMA_VERSION, what=what)
        except (NewerDatabase, DatabaseUnwritable) as exc:
            # only a cache of what is on disk: this run keeps it in memory, the file untouched
            self._db, _ = open_database(":memory:", _SCHEMA, SCHEMA_VERSION, what=what)
            self.in_memory = True
            self.note = (f"{exc.message} It was left as it is: models on disk are looked up "
                         "again each time (your model files were not touched).")  # fmt: skip
        if self.set_aside is not None:
            self.note = (f"{what} was damaged; it was kept as '{self.set_aside.name}' and "
                         "rebuilt (your model files were not touched).")  # fmt: skip
        self._db.execute("PRAGMA synchronous=NORMAL")

    def close(self) -> None:
        """Close the database connection."""
        self._db.close()

    def refresh(self, candidates: Iterable[DiscoveredModel]) -> RefreshReport:
        """Bring the index in line with ``candidates`` (what discovery found just now)."""
        start = time.perf_counter()
        now = time.time()
        stored = {
            row["path"]: row
            for row in self._db.execute(
                "SELECT path, name, source, parts, aliases, size, mtime_ns, sha256, gone, "
                "first_seen FROM models"
            )
        }
        added: list[Path] = []
        changed: list[Path] = []
        writes: list[tuple[Any, ...]] = []
        seen_only: list[tuple[float, str]] = []
        present: set[str] = set()
        headers_read = 0
        for model in candidates:
            key = str(model.path)
            stat = _stat(model.parts)
            if stat is None or key in present:
                continue  # vanished since discovery; marked gone below if it was indexed
            present.add(key)
            row = stored.get(key)
            parts = json.dumps([str(p) for p in model.parts])
            aliases = json.dumps(list(model.aliases))
            same_file = row is not None and (row["size"], row["mtime_ns"]) == stat
            if row is not None and same_file and not row["gone"]:
                if (row["name"], row["source"], row["parts"], row["aliases"]) == (
                    model.name, model.source, parts, aliases,
                ) and (row["sha256"] == model.sha256 or model.sha256 is None):  # fmt: skip
                    seen_only.append((now, key))
                    continue
            if same_file:
                summary = None  # header unchanged: keep the stored summary
            else:
                summary = summarize_parts(model.parts)
                headers_read += 1
            if row is None or row["gone"]:
                added.append(model.path)
            elif not same_file:
                changed.append(model.path)  # else only re-labelled (a new alias): not news
            sha = model.sha256 or (row["sha256"] if same_file and row is not None else None)
            writes.append((model, stat, parts, aliases, sha, summary, row))
        removed = [Path(p) for p, row in stored.items() if p not in present and not row["gone"]]
        with self._db:
            self._db.executemany("UPDATE models SET last_seen=? WHERE path=?", seen_only)
            for model, stat, parts, aliases, sha, summary, row in writes:
                if summary is None:
                    self._db.execute(
                        "UPDATE models SET name=?, source=?, parts=?, aliases=?, sha256=?, "
                        "last_seen=?, gone=0 WHERE path=?",
                        (model.name, model.source, parts, aliases, sha, now, str(model.path)),
                    )
                    continue
                self._db.execute(
                    _UPSERT,
                    (
                        str(model.path), model.name, model.source, parts, aliases, *stat, sha,
                        summary.architecture, summary.parameter_count, summary.parameter_label,
                        summary.file_type, summary.context_length, summary.error,
                        row["first_seen"] if row is not None else now, now, 0,
                    ),
                )  # fmt: skip
            self._db.executemany(
                "UPDATE models SET gone=1 WHERE path=?", [(str(p),) for p in removed]
            )
        return RefreshReport(
            tuple(added), tuple(changed), tuple(removed),
            len(present) - len(added) - len(changed), headers_read, time.perf_counter() - start,
        )  # fmt: skip

    def entries(self, *, include_gone: bool = False) -> list[IndexedModel]:
        """Indexed models by name; models no longer on disk only with ``include_gone``."""
        where = "" if include_gone else "WHERE gone = 0"
        rows = self._db.execute(f"SELECT * FROM models {where} ORDER BY name COLLATE NOCASE, path")
        return [_indexed(r) for r in rows]

    def find(self, path: Path) -> IndexedModel | None:
        """The index row for the model whose first file is ``path``."""
        row = self._db.execute("SELECT * FROM models WHERE path = ?", (str(path),)).fetchone()
        return _indexed(row) if row else None

    def set_sha256(self, path: Path, digest: str) -> None:
        """Record a sha256 computed elsewhere (e.g. while downloading or exporting)."""
        with self._db:
            self._db.execute("UPDATE models SET sha256=? WHERE path=?", (digest, str(path)))


def _indexed(row: sqlite3.Row) -> IndexedModel:
    return IndexedModel(
        path=Path(row["path"]),
        name=row["name"],
        source=row["source"],
        parts=tuple(Path(p) for p in json.loads(row["parts"])),
        aliases=tuple(json.loads(row["aliases"])),
        size=row["size"],
        mtime_ns=row["mtime_ns"],
        sha256=row["sha256"],
        architecture=row["architecture"],
        parameter_count=row["parameter_count"],
        parameter_label=row["parameter_label"],
        file_type=row["file_type"],
        context_length=row["context_length"],
        error=row["error"],
        first_seen=row["first_seen"],
        last_seen=row["last_seen"],
        gone=bool(row["gone"]),
    )
