"""Opening the app's SQLite files safely: WAL, schema versions, damaged or newer files.

A file written by a newer QuantDesk is never changed (:class:`NewerDatabase`); a damaged
file is moved aside with its ``-wal``/``-shm`` companions and a new one is created, so the
caller can tell the user where the old data went. Nothing is ever silently dropped.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar

from quantdesk.engine.errors import QuantDeskError

T = TypeVar("T")

#: A schema migration: the statements that bring a file from the version before to its own.
Migration = Callable[[sqlite3.Connection], None]


class NewerDatabase(QuantDeskError):
    """The file's schema version is newer than this QuantDesk reads; it was left untouched."""


def peek_version(path: Path) -> int:
    """The schema version of ``path``, read-only (0 for a missing file or ``:memory:``)."""
    if str(path) == ":memory:" or not path.exists():
        return 0
    db = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)
    try:
        return int(db.execute("PRAGMA user_version").fetchone()[0])
    finally:
        db.close()


def move_aside(path: Path, why: str) -> Path:
    """Rename ``path`` (and its WAL files) to ``<stem>.<why>-<time><suffix>``; returns it."""
    backup = path.with_name(f"{path.stem}.{why}-{int(time.time())}{path.suffix}")
    for extra in ("", "-wal", "-shm"):
        src = Path(f"{path}{extra}")
        if src.exists():
            src.replace(f"{backup}{extra}")
    return backup


def open_database(
    path: Path | str,
    schema: str,
    version: int,
    *,
    what: str,
    migrations: Mapping[int, Migration] | None = None,
) -> tuple[sqlite3.Connection, Path | None]:
    """Open (or create) ``path`` with ``schema`` at ``version``: (connection, backup or None).

    ``what`` names the data in messages ("The chat history"). A file at an older version is
    brought up to ``version`` by ``migrations[v]`` for each v after its own, in one transaction,
    after a copy of the file was kept beside it (``<stem>.before-v<N>-<time><suffix>``).
    Raises NewerDatabase for a file from a newer QuantDesk; a damaged file is moved aside and
    its backup returned.
    """
    path = Path(path)
    if str(path) != ":memory:":
        path.parent.mkdir(parents=True, exist_ok=True)
    backup: Path | None = None
    try:
        found = peek_version(path)
        if found > version:
            raise NewerDatabase(
                f"{what} was written by a newer QuantDesk (format {found}; this one reads "
                f"{version}). It was left untouched; update QuantDesk to use it.",
                str(path),
            )
        db = _connect(path, schema, version, migrations or {})
    except sqlite3.DatabaseError:
        backup = move_aside(path, "damaged")
        db = _connect(path, schema, version, migrations or {})
    return db, backup


def _connect(
    path: Path, schema: str, version: int, migrations: Mapping[int, Migration]
) -> sqlite3.Connection:
    db = sqlite3.connect(str(path), timeout=10)
    try:
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA journal_mode=WAL")
        found = int(db.execute("PRAGMA user_version").fetchone()[0])
        if 0 < found < version:
            _migrate(db, path, found, version, migrations)
        db.execute("PRAGMA foreign_keys=ON")
        with db:
            db.executescript(schema)
            db.execute(f"PRAGMA user_version={version}")
        db.execute("SELECT count(*) FROM sqlite_master").fetchone()  # damage shows here
    except sqlite3.DatabaseError:
        db.close()
        raise
    return db


def _migrate(
    db: sqlite3.Connection, path: Path, found: int, version: int,
    migrations: Mapping[int, Migration],
) -> None:  # fmt: skip
    """Run the migrations after ``found`` up to ``version`` in one transaction (foreign keys
    off, as SQLite's table-rebuild recipe asks), after keeping a copy of the file."""
    missing = [v for v in range(found + 1, version + 1) if v not in migrations]
    if missing:
        raise ValueError(f"no migration to schema version {missing[0]}")
    if str(path) != ":memory:":
        copy = path.with_name(f"{path.stem}.before-v{version}-{int(time.time())}{path.suffix}")
        target = sqlite3.connect(str(copy))
        try:
            db.backup(target)
        finally:
            target.close()
    db.execute("PRAGMA foreign_keys=OFF")
    saved, db.isolation_level = db.isolation_level, None
    try:
        db.execute("BEGIN IMMEDIATE")
        try:
            for step in range(found + 1, version + 1):
                migrations[step](db)
            db.execute(f"PRAGMA user_version={version}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
    finally:
        db.isolation_level = saved


def open_store(
    open_at: Callable[[Path | str], T],
    path: Path,
    *,
    what: str,
    not_kept: str,
    untouched: str = "",
) -> tuple[T, str]:
    """Open one of the app's stores at ``path``, and what to tell the user about it ("" if all
    is well). ``open_at`` builds the store (it sets ``recovered_from`` after moving a damaged
    file aside); a file from a newer QuantDesk is left untouched and a store in memory stands in
    for this session (``not_kept`` says what that means: "Presets saved now are not kept.");
    ``what`` names the data ("The presets file"); ``untouched`` may reassure about what a
    damaged store did not affect ("your model files were not touched")."""
    try:
        store = open_at(path)
    except NewerDatabase as exc:
        return open_at(":memory:"), " ".join(filter(None, (exc.message, not_kept)))
    backup = getattr(store, "recovered_from", None)
    if backup is None:
        return store, ""
    note = f" ({untouched})" if untouched else ""
    return store, (
        f"{what} was damaged; it was kept as '{backup.name}' and a new one was started{note}."
    )
