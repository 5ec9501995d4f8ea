"""The model library: GGUF files the user can load, indexed in SQLite.

Files are never locked into a private store: an entry is a path. Files the app
copied into its own models folder are marked ``owned`` (only those may ever be
deleted by the app); everything else is referenced in place.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from quantdesk.engine.gguf.model_info import ModelReport
from quantdesk.engine.remote.models import RemoteModel
from quantdesk.engine.sqlite_files import open_database

SCHEMA_VERSION = 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS models (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    source TEXT NOT NULL,
    owned INTEGER NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    architecture TEXT NOT NULL,
    file_type TEXT NOT NULL,
    parameters TEXT NOT NULL,
    context_length INTEGER NOT NULL,
    has_chat_template INTEGER NOT NULL,
    added_at REAL NOT NULL,
    sha256 TEXT              -- checked when it was downloaded or written (NULL: not known)
);
"""


def _to_v2(db: sqlite3.Connection) -> None:
    """A column for the sha256 checked at download; files QuantDesk quantized are its own
    (version 1 listed them as not owned, so they could not be deleted)."""
    db.execute("ALTER TABLE models ADD COLUMN sha256 TEXT")
    db.execute("UPDATE models SET owned = 1 WHERE source = 'quantized'")


MIGRATIONS = {2: _to_v2}


@dataclass(frozen=True)
class LibraryEntry:
    """One model in the library, as plain data the UI can show."""

    id: int
    path: Path
    name: str
    source: str  # "starter", "imported", "opened", "downloaded", "quantized"
    owned: bool
    size: int
    architecture: str
    file_type: str
    parameters: str
    context_length: int
    has_chat_template: bool
    remote: RemoteModel | None = None  # a model on a remote server (path is then its key)
    sha256: str = ""  # as checked when downloaded or written ("" when not known)

    @property
    def exists(self) -> bool:
        """False when the file was moved or deleted outside the app (remote models: True)."""
        return self.remote is not None or self.path.is_file()

    @classmethod
    def for_remote(cls, remote: RemoteModel) -> LibraryEntry:
        """A library row for a model offered by a remote server."""
        return cls(id=-1, path=Path(remote.key), name=remote.model, source="remote",
                   owned=False, size=0, architecture="", file_type="remote", parameters="",
                   context_length=0, has_chat_template=True, remote=remote)  # fmt: skip

    @property
    def is_unquantized(self) -> bool:
        """True for F32/F16/BF16 models: the ones worth offering to quantize."""
        return self.file_type in ("F32", "F16", "BF16")


class ModelLibrary:
    """SQLite-backed list of models; one instance per thread (sqlite3 connections are)."""

    def __init__(self, db_path: Path) -> None:
        """Open the library; a damaged file is moved aside (``recovered_from``) and rebuilt.

        A library from a newer QuantDesk raises NewerDatabase and is left untouched.
        """
        self._db, self.recovered_from = open_database(
            db_path, _SCHEMA, SCHEMA_VERSION, what="The model library", migrations=MIGRATIONS
        )

    def close(self) -> None:
        """Close the database connection."""
        self._db.close()

    def add(
        self, path: Path, report: ModelReport, *, source: str, owned: bool, keep_link: bool = False,
        sha256: str = "", name: str = "",
    ) -> LibraryEntry:
        """Add (or refresh) the model at ``path``; returns its entry. ``sha256``: the hash
        checked when it was written (kept while the file's size and time stay the same).
        ``name``: what to call it when its header's ``general.name`` is no name for a person.

        ``keep_link``: store ``path`` itself, not where its symlinks lead: the first part of a
        split set in the Hugging Face cache must keep its name, since llama.cpp finds the
        other parts by name beside it (the blobs they link to are named by hash).
        """
        path = path.absolute() if keep_link else path.resolve()
        stat = path.stat()
        with self._db:
            self._db.execute(
                """INSERT INTO models (path, name, source, owned, size, mtime_ns, architecture,
                       file_type, parameters, context_length, has_chat_template, added_at,
                       sha256)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT(path) DO UPDATE SET name=excluded.name,
                       sha256=CASE WHEN excluded.size = size AND excluded.mtime_ns = mtime_ns
                                   THEN coalesce(excluded.sha256, sha256)
                                   ELSE excluded.sha256 END,
                       owned=max(owned, excluded.owned), size=excluded.size,
                       mtime_ns=excluded.mtime_ns, architecture=excluded.architecture,
                       file_type=excluded.file_type, parameters=excluded.parameters,
                       context_length=excluded.context_length,
                       has_chat_template=excluded.has_chat_template""",
                (
                    str(path),
                    name or report.name or path.stem,
                    source,
                    int(owned),
                    stat.st_size,
                    stat.st_mtime_ns,
                    report.architecture or "unknown",
                    report.file_type or "unknown",
                    report.parameter_label,
                    report.context_length or 0,
                    int(report.has_chat_template),
                    time.time(),
                    sha256 or None,
                ),
            )
        entry = self.find(path)
        assert entry is not None
        return entry

    def find(self, path: Path) -> LibraryEntry | None:
        """The entry for ``path``, if it is in the library."""
        row = self._db.execute(
            "SELECT * FROM models WHERE path IN (?, ?)", (str(path.absolute()), str(path.resolve()))
        ).fetchone()
        return _entry(row) if row else None

    def entries(self) -> list[LibraryEntry]:
        """All models, starter first, then by name."""
        rows = self._db.execute(
            "SELECT * FROM models ORDER BY source = 'starter' DESC, name COLLATE NOCASE"
        ).fetchall()
        return [_entry(r) for r in rows]

    def remove(self, entry_id: int) -> None:
        """Forget a model (the file itself is left alone)."""
        with self._db:
            self._db.execute("DELETE FROM models WHERE id = ?", (entry_id,))


def _entry(row: sqlite3.Row) -> LibraryEntry:
    return LibraryEntry(
        id=row["id"],
        path=Path(row["path"]),
        name=row["name"],
        source=row["source"],
        owned=bool(row["owned"]),
        size=row["size"],
        architecture=row["architecture"],
        file_type=row["file_type"],
        parameters=row["parameters"],
        context_length=row["context_length"],
        has_chat_template=bool(row["has_chat_template"]),
        sha256=row["sha256"] or "",
    )


def add_model_file(db_path: Path, path: Path, *, source: str, owned: bool,
                   sha256: str = "", name: str = "") -> LibraryEntry:  # fmt: skip
    """Read ``path``'s header and add it to the library at ``db_path`` (any thread).

    Opens its own connection, so worker threads can call it; raises InvalidGGUF for a bad file.
    """
    from quantdesk.engine.gguf.model_info import summarize
    from quantdesk.engine.gguf.reader import read_header_from_file

    library = ModelLibrary(db_path)
    try:
        report = summarize(read_header_from_file(path), path=path)
        return library.add(path, report, source=source, owned=owned, sha256=sha256, name=name)
    finally:
        library.close()
