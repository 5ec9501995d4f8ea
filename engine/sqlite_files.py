"""Opening the app's SQLite files safely: WAL, schema versions, damaged or newer files.

A file written by a newer QuantDesk is never changed (:class:`NewerDatabase`); a damaged
file is moved aside with its ``-wal``/``-shm`` companions and a new one is created, so the
caller can tell the user where the old data went. Nothing is ever silently dropped.
"""

from __future__ import annotations

import atexit
import os
import re
import sqlite3
import tempfile
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


class DatabaseUnwritable(QuantDeskError):
    """The file is fine but cannot be written now: in use by another program past the wait,
    read-only, or on a full disk. It was left untouched; :func:`open_store` shows a copy."""


# SQLite's primary result codes (the low byte of an extended code)
_BUSY, _LOCKED, _READONLY, _FULL, _CORRUPT, _NOTADB = 5, 6, 8, 13, 11, 26
BUSY_TIMEOUT_S = 10.0
"""How long opening waits for another program's write transaction before saying so."""
_CREATED = re.compile(r"CREATE\s+(?:TABLE|INDEX|UNIQUE\s+INDEX|TRIGGER|VIEW)\s+IF\s+NOT\s+EXISTS"
                      r"\s+(\w+)", re.IGNORECASE)  # fmt: skip


class _Corrupt(sqlite3.DatabaseError):
    """``PRAGMA quick_check`` found damage SQLite did not raise for yet."""


def problem_of(exc: sqlite3.Error) -> str:
    """What an SQLite error means for the user's file: "corrupt", "busy", "readonly", "full"
    or "other" (by SQLite's result code; by its message on Python < 3.11)."""
    if isinstance(exc, _Corrupt):
        return "corrupt"
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return {_CORRUPT: "corrupt", _NOTADB: "corrupt", _BUSY: "busy", _LOCKED: "busy",
                _READONLY: "readonly", _FULL: "full"}.get(code & 0xFF, "other")  # fmt: skip
    text = str(exc).lower()
    for needle, kind in (("malformed", "corrupt"), ("not a database", "corrupt"),
                         ("locked", "busy"), ("busy", "busy"), ("readonly", "readonly"),
                         ("read-only", "readonly"), ("disk is full", "full")):  # fmt: skip
        if needle in text:
            return kind
    return "other"


def unwritable_message(what: str, path: Path, problem: str) -> str:
    """Why ``what`` at ``path`` cannot be saved to now, and what to do, in words."""
    if problem == "busy":
        return (f"{what} ({path.name}) is in use by another program (another QuantDesk, the "
                f"command line, a backup tool): it stayed locked for {BUSY_TIMEOUT_S:.0f} s.")
    if problem == "full":
        return f"{what} ({path}) cannot be written: the disk is full. Free some space."
    if problem == "other":  # an I/O error, a file that cannot be opened: not "read-only"
        return f"{what} ({path}) could not be opened; it was left as it is."
    return (f"{what} ({path}) is read-only for you. Give yourself write permission "
            f"(chmod u+w '{path}') to save changes.")  # fmt: skip


def write_failure_words(exc: sqlite3.Error) -> str:
    """What a failed read or write of one of the app's files means, for a message."""
    problem = problem_of(exc)
    if problem == "busy":
        return ("A QuantDesk data file is in use by another program (another QuantDesk, the "
                "command line or a backup tool), so the change was not saved. Try again when "
                "it is done.")  # fmt: skip
    if problem == "full":
        return "The disk is full, so the change was not saved. Free some space and try again."
    if problem == "readonly":
        return "A QuantDesk data file is read-only, so the change was not saved."
    if problem == "corrupt":
        return ("A QuantDesk data file is damaged, so the change was not saved. Start "
                "QuantDesk again: the damaged file is then kept aside and a new one begun.")
    return f"A QuantDesk data file could not be used ({exc})."


def peek_version(path: Path) -> int:
    """The schema version of ``path``, read-only (0 for a missing file or ``:memory:``)."""
    if str(path) == ":memory:" or not path.exists():
        return 0
    db = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True, timeout=BUSY_TIMEOUT_S)
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


def _writable(path: Path) -> bool:
    """Whether this process may write ``path`` and create its WAL files beside it."""
    folder_ok = os.access(path.parent, os.W_OK | os.X_OK)
    return folder_ok and (not path.exists() or os.access(path, os.W_OK))


def open_database(
    path: Path | str,
    schema: str,
    version: int,
    *,
    what: str,
    migrations: Mapping[int, Migration] | None = None,
    check_same_thread: bool = True,
) -> tuple[sqlite3.Connection, Path | None]:
    """Open (or create) ``path`` with ``schema`` at ``version``: (connection, backup or None).

    One set of rules for every store. ``what`` names the data in messages ("The chat
    history"). A file at an older version is brought up to ``version`` by ``migrations[v]`` for
    each v after its own, in one transaction, after a copy of the file was kept beside it
    (``<stem>.before-v<N>-<time><suffix>``). A file SQLite reports as corrupt (or that fails
    ``PRAGMA quick_check``) is moved aside and its backup returned; nothing else is. Raises
    NewerDatabase for a file from a newer QuantDesk and DatabaseUnwritable for one that is
    read-only, locked by another program past :data:`BUSY_TIMEOUT_S` or on a full disk: both
    are left untouched. ``check_same_thread=False``: the caller serializes threads itself.
    """
    path = Path(path)
    backup: Path | None = None
    in_memory = str(path) == ":memory:"
    try:
        if not in_memory:
            path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatabaseUnwritable(unwritable_message(what, path, "readonly"), str(exc)) from None
    if not in_memory and not _writable(path):
        raise DatabaseUnwritable(unwritable_message(what, path, "readonly"), str(path))
    try:
        found = peek_version(path)
        if found > version:
            raise NewerDatabase(
                f"{what} was written by a newer QuantDesk (format {found}; this one reads "
                f"{version}). It was left untouched; update QuantDesk to use it.",
                str(path),
            )
        db = _connect(path, schema, version, migrations or {}, check_same_thread)
    except sqlite3.Error as exc:
        problem = problem_of(exc)
        if problem != "corrupt":
            raise DatabaseUnwritable(unwritable_message(what, path, problem), str(exc)) from None
        backup = move_aside(path, "damaged")
        db = _connect(path, schema, version, migrations or {}, check_same_thread)
    return db, backup


def _connect(
    path: Path, schema: str, version: int, migrations: Mapping[int, Migration],
    check_same_thread: bool = True,
) -> sqlite3.Connection:  # fmt: skip
    existed = str(path) != ":memory:" and path.exists() and path.stat().st_size > 0
    db = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_S, check_same_thread=check_same_thread)
    try:
        db.row_factory = sqlite3.Row
        if existed:
            answer = [row[0] for row in db.execute("PRAGMA quick_check")]
            if answer != ["ok"]:
                raise _Corrupt("; ".join(answer[:3]))
        if db.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            db.execute("PRAGMA journal_mode=WAL")
        found = int(db.execute("PRAGMA user_version").fetchone()[0])
        if 0 < found < version:
            _migrate(db, path, found, version, migrations)
        db.execute("PRAGMA foreign_keys=ON")
        # write only when something is missing: a file another program holds a write lock on
        # opens for reading without waiting
        wanted = set(_CREATED.findall(schema))
        present = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
        if found != version or not wanted <= present:
            with db:
                db.executescript(schema)
                db.execute(f"PRAGMA user_version={version}")
    except sqlite3.Error:
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


def snapshot(path: Path) -> Path | None:
    """A private copy of ``path`` (read without writing to it) to run a session on, removed
    when the process ends; None when it cannot be read either."""
    try:
        source = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True,
                                 timeout=BUSY_TIMEOUT_S)  # fmt: skip
    except sqlite3.Error:
        return None
    fd, name = tempfile.mkstemp(prefix=f"quantdesk-{path.stem}-", suffix=path.suffix)
    os.close(fd)
    copy = Path(name)
    atexit.register(_remove_copy, copy)
    try:
        target = sqlite3.connect(str(copy))
        try:
            source.backup(target)
            if [r[0] for r in target.execute("PRAGMA quick_check")] != ["ok"]:
                raise _Corrupt("damaged")
        finally:
            target.close()
    except sqlite3.Error:
        _remove_copy(copy)
        return None
    finally:
        source.close()
    return copy


def _remove_copy(copy: Path) -> None:
    for extra in ("", "-wal", "-shm", "-journal"):
        Path(f"{copy}{extra}").unlink(missing_ok=True)


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
    except DatabaseUnwritable as exc:
        copy = snapshot(path)
        if copy is not None:
            try:
                return open_at(copy), (f"{exc.message} It is shown as it was; what you change "
                                       "now is not saved there.")  # fmt: skip
            except QuantDeskError:
                pass
        return open_at(":memory:"), " ".join(
            filter(None, (exc.message, "It could not be read either.", not_kept)))
    backup = getattr(store, "recovered_from", None)
    if backup is None:
        return store, ""
    note = f" ({untouched})" if untouched else ""
    return store, (
        f"{what} was damaged; it was kept as '{backup.name}' and a new one was started{note}."
    )
