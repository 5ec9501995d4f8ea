"""Conversations that last: chats and their messages in SQLite (WAL).

A reply being streamed is a row saved as it grows (``complete = 0`` until it ends), so a
crash or a kill loses at most the text since the last save. A database from a newer
QuantDesk, or one that is damaged, is reported and moved aside (never silently dropped):
:class:`ConversationStore` raises :class:`ChatStoreError` with the backup's path and, for a
damaged file, starts a fresh database.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from quantdesk.engine.sqlite_files import NewerDatabase, open_database

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS chats (
    id INTEGER PRIMARY KEY,
    title TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    pinned INTEGER NOT NULL DEFAULT 0,
    system_prompt TEXT NOT NULL DEFAULT '',
    model_path TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY,
    chat_id INTEGER NOT NULL REFERENCES chats(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    role TEXT NOT NULL,
    text TEXT NOT NULL,
    created REAL NOT NULL,
    model TEXT NOT NULL DEFAULT '',
    stats TEXT NOT NULL DEFAULT '{}',
    settings TEXT NOT NULL DEFAULT '{}',
    complete INTEGER NOT NULL DEFAULT 1,
    UNIQUE (chat_id, seq)
);
CREATE INDEX IF NOT EXISTS messages_by_chat ON messages (chat_id, seq);
"""

TITLE_LENGTH = 60


class ChatStoreError(NewerDatabase):
    """The chat database cannot be used as it is (newer version, damaged)."""


@dataclass(frozen=True)
class Chat:
    """One conversation's header."""

    id: int
    title: str
    created: float
    updated: float
    pinned: bool
    system_prompt: str
    model_path: str
    message_count: int = 0


@dataclass(frozen=True)
class StoredMessage:
    """One message as saved; ``complete`` is False for a reply cut off while streaming."""

    id: int
    chat_id: int
    seq: int
    role: str
    text: str
    created: float
    model: str = ""
    stats: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    complete: bool = True


def title_from(text: str) -> str:
    """A chat title from its first message: the first line, shortened at a word."""
    line = " ".join(text.strip().split())
    if len(line) <= TITLE_LENGTH:
        return line or "New chat"
    return line[:TITLE_LENGTH].rsplit(" ", 1)[0].rstrip(",.;:") + "…"


class ConversationStore:
    """The chats database; one instance per thread (sqlite3 connections are)."""

    def __init__(self, path: Path | str) -> None:
        """Open (or create) the database; ``":memory:"`` keeps nothing on disk.

        A damaged file is moved aside (``recovered_from`` names the backup) and a new one
        started; a file from a newer QuantDesk raises ChatStoreError and is left untouched.
        """
        self.path = Path(path)
        try:
            self._db, self.recovered_from = open_database(
                self.path, _SCHEMA, SCHEMA_VERSION, what="The chat history"
            )
        except NewerDatabase as exc:
            raise ChatStoreError(
                exc.message + " Chats of this session are not saved.", exc.details
            ) from None

    def close(self) -> None:
        """Close the connection."""
        self._db.close()

    # -- chats -------------------------------------------------------------------------------

    def create_chat(self, title: str = "New chat", system_prompt: str = "",
                    model_path: str = "") -> Chat:  # fmt: skip
        """A new, empty chat."""
        now = time.time()
        with self._db:
            cur = self._db.execute(
                "INSERT INTO chats (title, created, updated, system_prompt, model_path) "
                "VALUES (?, ?, ?, ?, ?)",
                (title, now, now, system_prompt, model_path),
            )
        return self.chat(int(cur.lastrowid or 0))

    def chat(self, chat_id: int) -> Chat:
        """One chat; KeyError when it does not exist."""
        row = self._db.execute(
            "SELECT c.*, (SELECT count(*) FROM messages m WHERE m.chat_id = c.id) AS n "
            "FROM chats c WHERE c.id = ?",
            (chat_id,),
        ).fetchone()
        if row is None:
            raise KeyError(chat_id)
        return _chat(row)

    def chats(self, search: str = "") -> list[Chat]:
        """Pinned first, then the most recently updated; ``search`` matches titles and text."""
        sql = (
            "SELECT c.*, (SELECT count(*) FROM messages m WHERE m.chat_id = c.id) AS n "
            "FROM chats c"
        )
        args: tuple[Any, ...] = ()
        if search.strip():
            sql += (
                " WHERE c.title LIKE ? ESCAPE '\\' OR EXISTS (SELECT 1 FROM messages m "
                "WHERE m.chat_id = c.id AND m.text LIKE ? ESCAPE '\\')"
            )
            pattern = "%" + _escape_like(search.strip()) + "%"
            args = (pattern, pattern)
        sql += " ORDER BY c.pinned DESC, c.updated DESC, c.id DESC"
        return [_chat(row) for row in self._db.execute(sql, args)]

    def latest(self) -> Chat | None:
        """The most recently updated chat, if any."""
        row = self._db.execute("SELECT id FROM chats ORDER BY updated DESC, id DESC LIMIT 1")
        found = row.fetchone()
        return self.chat(found[0]) if found else None

    def rename(self, chat_id: int, title: str) -> None:
        """Give a chat a new title."""
        with self._db:
            self._db.execute("UPDATE chats SET title = ? WHERE id = ?", (title.strip(), chat_id))

    def set_pinned(self, chat_id: int, pinned: bool) -> None:
        """Pin a chat to the top of the list, or unpin it."""
        with self._db:
            self._db.execute("UPDATE chats SET pinned = ? WHERE id = ?", (int(pinned), chat_id))

    def set_system_prompt(self, chat_id: int, prompt: str) -> None:
        """This chat's own system prompt."""
        with self._db:
            self._db.execute(
                "UPDATE chats SET system_prompt = ? WHERE id = ?", (prompt, chat_id)
            )

    def delete_chat(self, chat_id: int) -> None:
        """Delete a chat and its messages."""
        with self._db:
            self._db.execute("DELETE FROM chats WHERE id = ?", (chat_id,))

    # -- messages ----------------------------------------------------------------------------

    def add_message(
        self,
        chat_id: int,
        role: str,
        text: str,
        *,
        model: str = "",
        stats: dict[str, Any] | None = None,
        settings: dict[str, Any] | None = None,
        complete: bool = True,
        created: float | None = None,
    ) -> int:
        """Append a message; returns its id. ``created``: keep an original time (imports).

        The chat's ``updated`` time becomes now.
        """
        now = time.time()
        stamp = now if created is None else created
        with self._db:
            seq = self._db.execute(
                "SELECT coalesce(max(seq), -1) + 1 FROM messages WHERE chat_id = ?", (chat_id,)
            ).fetchone()[0]
            cur = self._db.execute(
                "INSERT INTO messages (chat_id, seq, role, text, created, model, stats, settings,"
                " complete) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (chat_id, seq, role, text, stamp, model, json.dumps(stats or {}),
                 json.dumps(settings or {}), int(complete)),
            )  # fmt: skip
            self._db.execute("UPDATE chats SET updated = ? WHERE id = ?", (now, chat_id))
        return int(cur.lastrowid or 0)

    def update_message(
        self,
        message_id: int,
        text: str,
        *,
        complete: bool | None = None,
        stats: dict[str, Any] | None = None,
    ) -> None:
        """Save a message's text so far (a streaming reply), optionally marking it complete."""
        sets, args = ["text = ?"], [text]
        if complete is not None:
            sets.append("complete = ?")
            args.append(int(complete))
        if stats is not None:
            sets.append("stats = ?")
            args.append(json.dumps(stats))
        with self._db:
            self._db.execute(f"UPDATE messages SET {', '.join(sets)} WHERE id = ?",
                             (*args, message_id))  # fmt: skip

    def messages(self, chat_id: int) -> list[StoredMessage]:
        """A chat's messages in order."""
        rows = self._db.execute(
            "SELECT * FROM messages WHERE chat_id = ? ORDER BY seq", (chat_id,)
        )
        return [_message(row) for row in rows]

    def message_id(self, chat_id: int, seq: int) -> int | None:
        """The id of a chat's message at position ``seq``, or None when there is none."""
        row = self._db.execute(
            "SELECT id FROM messages WHERE chat_id = ? AND seq = ?", (chat_id, seq)
        ).fetchone()
        return None if row is None else int(row[0])

    def delete_from(self, chat_id: int, seq: int) -> None:
        """Delete the message at ``seq`` and every later one (edit / regenerate)."""
        with self._db:
            self._db.execute("DELETE FROM messages WHERE chat_id = ? AND seq >= ?", (chat_id, seq))


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _chat(row: sqlite3.Row) -> Chat:
    return Chat(
        id=row["id"], title=row["title"], created=row["created"], updated=row["updated"],
        pinned=bool(row["pinned"]), system_prompt=row["system_prompt"],
        model_path=row["model_path"], message_count=row["n"],
    )  # fmt: skip


def _message(row: sqlite3.Row) -> StoredMessage:
    return StoredMessage(
        id=row["id"], chat_id=row["chat_id"], seq=row["seq"], role=row["role"],
        text=row["text"], created=row["created"], model=row["model"],
        stats=json.loads(row["stats"] or "{}"), settings=json.loads(row["settings"] or "{}"),
        complete=bool(row["complete"]),
    )  # fmt: skip
