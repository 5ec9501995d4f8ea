"""Conversations that last: chats and their messages in SQLite (WAL).

Nothing is lost by Edit or Regenerate: a chat's messages form a tree. An edited message or a
regenerated reply is a new *version* beside the old one (same parent); the chat shows one
branch (``messages()``), the others stay in the store (``all_messages()``) and a version is
chosen again with ``select_version()``. Only deleting the chat removes messages.

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

SCHEMA_VERSION = 4

_SCHEMA = """
CREATE TABLE IF NOT EXISTS chats (
    id INTEGER PRIMARY KEY,
    title TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    pinned INTEGER NOT NULL DEFAULT 0,
    system_prompt TEXT NOT NULL DEFAULT '',
    model_path TEXT NOT NULL DEFAULT '',
    active_root INTEGER,              -- first message of the branch shown
    leaf_id INTEGER,                  -- last message of the branch shown
    draft TEXT NOT NULL DEFAULT '',   -- what was typed and not sent yet
    response_format TEXT NOT NULL DEFAULT '' -- JSON output: OpenAI's response_format, as JSON
);
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY,
    chat_id INTEGER NOT NULL REFERENCES chats(id) ON DELETE CASCADE,
    parent_id INTEGER REFERENCES messages(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,             -- position in its branch (0 for the first message)
    role TEXT NOT NULL,
    text TEXT NOT NULL,
    created REAL NOT NULL,
    model TEXT NOT NULL DEFAULT '',
    stats TEXT NOT NULL DEFAULT '{}',
    settings TEXT NOT NULL DEFAULT '{}',
    complete INTEGER NOT NULL DEFAULT 1,
    active_child INTEGER,             -- the version of the next message shown after this one
    thinking TEXT NOT NULL DEFAULT '' -- a reasoning model's thinking before this reply
);
CREATE INDEX IF NOT EXISTS messages_by_chat ON messages (chat_id, seq);
CREATE INDEX IF NOT EXISTS messages_by_parent ON messages (parent_id);
"""


def _to_v2(db: sqlite3.Connection) -> None:
    """Version 1 kept one list per chat (unique seq): each message becomes the parent of the
    next, and the list is the branch shown."""
    db.execute("ALTER TABLE chats ADD COLUMN active_root INTEGER")
    db.execute("ALTER TABLE chats ADD COLUMN leaf_id INTEGER")
    db.execute("ALTER TABLE chats ADD COLUMN draft TEXT NOT NULL DEFAULT ''")
    db.execute("""
        CREATE TABLE messages_v2 (
            id INTEGER PRIMARY KEY,
            chat_id INTEGER NOT NULL REFERENCES chats(id) ON DELETE CASCADE,
            parent_id INTEGER REFERENCES messages(id) ON DELETE CASCADE,
            seq INTEGER NOT NULL, role TEXT NOT NULL, text TEXT NOT NULL,
            created REAL NOT NULL, model TEXT NOT NULL DEFAULT '',
            stats TEXT NOT NULL DEFAULT '{}', settings TEXT NOT NULL DEFAULT '{}',
            complete INTEGER NOT NULL DEFAULT 1, active_child INTEGER)""")
    db.execute("""
        INSERT INTO messages_v2
        SELECT id, chat_id,
            lag(id) OVER (PARTITION BY chat_id ORDER BY seq),
            row_number() OVER (PARTITION BY chat_id ORDER BY seq) - 1,
            role, text, created, model, stats, settings, complete,
            lead(id) OVER (PARTITION BY chat_id ORDER BY seq)
        FROM messages""")
    db.execute("DROP TABLE messages")
    db.execute("ALTER TABLE messages_v2 RENAME TO messages")
    db.execute("""
        UPDATE chats SET
            active_root = (SELECT id FROM messages m WHERE m.chat_id = chats.id AND m.seq = 0),
            leaf_id = (SELECT id FROM messages m WHERE m.chat_id = chats.id
                       ORDER BY m.seq DESC LIMIT 1)""")


def _to_v3(db: sqlite3.Connection) -> None:
    """Version 3: a reply keeps its thinking (reasoning models) apart from its text."""
    db.execute("ALTER TABLE messages ADD COLUMN thinking TEXT NOT NULL DEFAULT ''")


def _to_v4(db: sqlite3.Connection) -> None:
    """Version 4: a chat can hold its replies to JSON (its response format)."""
    db.execute("ALTER TABLE chats ADD COLUMN response_format TEXT NOT NULL DEFAULT ''")


MIGRATIONS = {2: _to_v2, 3: _to_v3, 4: _to_v4}

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
    message_count: int = 0  # in the branch shown
    draft: str = ""
    stored_count: int = 0  # every version of every message
    response_format: dict[str, Any] | None = None  # JSON output (OpenAI's form); None: text


@dataclass(frozen=True)
class StoredMessage:
    """One message as saved; ``complete`` is False for a reply cut off while streaming.

    ``version`` of ``versions``: where it stands among the versions of its place in the chat
    (edits of a message, regenerated replies), oldest first.
    """

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
    parent_id: int | None = None
    version: int = 1
    versions: int = 1
    thinking: str = ""  # a reasoning model's thinking before the reply ``text``


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
                self.path, _SCHEMA, SCHEMA_VERSION, what="The chat history",
                migrations=MIGRATIONS,
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
        row = self._db.execute(_CHAT_SELECT + " WHERE c.id = ?", (chat_id,)).fetchone()
        if row is None:
            raise KeyError(chat_id)
        return _chat(row)

    def chats(self, search: str = "") -> list[Chat]:
        """Pinned first, then the most recently updated; ``search`` matches titles and text."""
        sql = _CHAT_SELECT
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

    def set_draft(self, chat_id: int, text: str) -> None:
        """What was typed in this chat and not sent (kept with the chat, not with the app)."""
        with self._db:
            self._db.execute("UPDATE chats SET draft = ? WHERE id = ?", (text, chat_id))

    def set_response_format(self, chat_id: int, response_format: dict[str, Any] | None) -> None:
        """Hold this chat's replies to JSON (``{"type": "json_object"}``, or ``json_schema``
        with a schema, as OpenAI's API writes it), or let them be text again (None)."""
        stored = json.dumps(response_format) if response_format else ""
        with self._db:
            self._db.execute("UPDATE chats SET response_format = ? WHERE id = ?",
                             (stored, chat_id))  # fmt: skip

    def delete_chat(self, chat_id: int) -> None:
        """Delete a chat and its messages."""
        with self._db:
            self._db.execute("DELETE FROM chats WHERE id = ?", (chat_id,))

    # -- messages ----------------------------------------------------------------------------

    def add_message(self, chat_id: int, role: str, text: str, **fields: Any) -> int:
        """Append a message after the last one of the branch shown; returns its id.

        ``fields`` as for :meth:`add_message_after` (model, stats, settings, complete, and
        ``created`` to keep an original time). The chat's ``updated`` time becomes now.
        """
        leaf = self._db.execute("SELECT leaf_id FROM chats WHERE id = ?", (chat_id,)).fetchone()
        if leaf is None:
            raise KeyError(chat_id)
        return self.add_message_after(chat_id, leaf[0], role, text, **fields)

    def add_message_after(
        self,
        chat_id: int,
        parent_id: int | None,
        role: str,
        text: str,
        *,
        model: str = "",
        stats: dict[str, Any] | None = None,
        settings: dict[str, Any] | None = None,
        complete: bool = True,
        created: float | None = None,
        thinking: str = "",
    ) -> int:
        """Add a message after ``parent_id`` (None: a first message), shown from now on."""
        with self._db:
            return self._insert(chat_id, parent_id, role, text, model, stats, settings,
                                complete, created, thinking)  # fmt: skip

    def add_version(
        self,
        message_id: int,
        text: str,
        *,
        model: str = "",
        settings: dict[str, Any] | None = None,
        complete: bool = True,
    ) -> int:
        """A new version of message ``message_id`` (an edit, a regenerated reply) beside it,
        shown from now on; the old version and what followed it stay. Returns its id."""
        with self._db:
            row = self._place(message_id)
            return self._insert(row["chat_id"], row["parent_id"], row["role"], text, model,
                                None, settings, complete, None, "")  # fmt: skip

    def _insert(
        self, chat_id: int, parent_id: int | None, role: str, text: str, model: str,
        stats: dict[str, Any] | None, settings: dict[str, Any] | None, complete: bool,
        created: float | None, thinking: str,
    ) -> int:  # fmt: skip
        now = time.time()
        seq = 0
        if parent_id is not None:
            seq = self._db.execute(
                "SELECT seq + 1 FROM messages WHERE id = ?", (parent_id,)
            ).fetchone()[0]
        cur = self._db.execute(
            "INSERT INTO messages (chat_id, parent_id, seq, role, text, created, model, stats,"
            " settings, complete, thinking) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (chat_id, parent_id, seq, role, text, now if created is None else created, model,
             json.dumps(stats or {}), json.dumps(settings or {}), int(complete), thinking),
        )  # fmt: skip
        new_id = int(cur.lastrowid or 0)
        self._show(chat_id, parent_id, new_id)
        self._db.execute("UPDATE chats SET updated = ? WHERE id = ?", (now, chat_id))
        return new_id

    def _place(self, message_id: int) -> sqlite3.Row:
        """Where message ``message_id`` stands: its chat, parent and role; KeyError if none."""
        row = self._db.execute(
            "SELECT chat_id, parent_id, role FROM messages WHERE id = ?", (message_id,)
        ).fetchone()
        if row is None:
            raise KeyError(message_id)
        return row

    def _show(self, chat_id: int, parent_id: int | None, message_id: int) -> None:
        """Make ``message_id`` the version shown after ``parent_id``; the branch shown then
        goes on through the versions last shown after it."""
        if parent_id is None:
            self._db.execute("UPDATE chats SET active_root = ? WHERE id = ?",
                             (message_id, chat_id))  # fmt: skip
        else:
            self._db.execute("UPDATE messages SET active_child = ? WHERE id = ?",
                             (message_id, parent_id))  # fmt: skip
        leaf = self._db.execute(
            "WITH RECURSIVE down(id, next) AS ("
            " SELECT id, active_child FROM messages WHERE id = ?"
            " UNION ALL SELECT m.id, m.active_child FROM messages m JOIN down ON m.id = down.next)"
            " SELECT id FROM down WHERE next IS NULL OR next NOT IN (SELECT id FROM messages)",
            (message_id,),
        ).fetchone()
        self._db.execute("UPDATE chats SET leaf_id = ? WHERE id = ?",
                         (leaf[0] if leaf else message_id, chat_id))  # fmt: skip

    def select_version(self, message_id: int) -> None:
        """Show version ``message_id`` of its place, and the branch that follows it."""
        with self._db:
            row = self._place(message_id)
            self._show(row["chat_id"], row["parent_id"], message_id)

    def versions(self, message_id: int) -> list[int]:
        """The ids of every version of message ``message_id``'s place, oldest first."""
        row = self._place(message_id)
        rows = self._db.execute(
            "SELECT id FROM messages WHERE chat_id = ? AND parent_id IS ? ORDER BY id",
            (row["chat_id"], row["parent_id"]),
        )
        return [int(r[0]) for r in rows]

    def update_message(
        self,
        message_id: int,
        text: str,
        *,
        complete: bool | None = None,
        stats: dict[str, Any] | None = None,
        thinking: str | None = None,
    ) -> None:
        """Save a message's text so far (a streaming reply), optionally marking it complete;
        ``thinking``: its thinking so far, too."""
        sets, args = ["text = ?"], [text]
        if thinking is not None:
            sets.append("thinking = ?")
            args.append(thinking)
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
        """The chat's branch shown, in order (each with its version number)."""
        rows = self._db.execute(
            f"{_BRANCH} SELECT v.* FROM ({_VERSIONED}) v JOIN up ON v.id = up.id ORDER BY v.seq",
            (chat_id, chat_id),
        )
        return [_message(row) for row in rows]

    def all_messages(self, chat_id: int) -> list[StoredMessage]:
        """Every message of the chat, every version of every branch: parents before children."""
        rows = self._db.execute(f"SELECT * FROM ({_VERSIONED}) ORDER BY seq, id", (chat_id,))
        return [_message(row) for row in rows]

    def message_id(self, chat_id: int, seq: int) -> int | None:
        """The id of the message at position ``seq`` of the branch shown, or None."""
        row = self._db.execute(
            f"{_BRANCH} SELECT m.id FROM messages m JOIN up ON m.id = up.id WHERE m.seq = ?",
            (chat_id, seq),
        ).fetchone()
        return None if row is None else int(row[0])


#: The branch shown, from its last message up to its first: ``up(id)`` (parameter: chat id).
_BRANCH = (
    "WITH RECURSIVE up(id) AS (SELECT leaf_id FROM chats WHERE id = ?"
    " UNION ALL SELECT m.parent_id FROM messages m JOIN up ON m.id = up.id"
    " WHERE m.parent_id IS NOT NULL)"
)
_VERSIONED = (
    "SELECT *, row_number() OVER (PARTITION BY parent_id ORDER BY id) AS version,"
    " count(*) OVER (PARTITION BY parent_id) AS versions FROM messages WHERE chat_id = ?"
)
_CHAT_SELECT = (
    "SELECT c.*, coalesce((SELECT m.seq + 1 FROM messages m WHERE m.id = c.leaf_id), 0) AS n,"
    " (SELECT count(*) FROM messages m WHERE m.chat_id = c.id) AS stored FROM chats c"
)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _chat(row: sqlite3.Row) -> Chat:
    return Chat(
        id=row["id"], title=row["title"], created=row["created"], updated=row["updated"],
        pinned=bool(row["pinned"]), system_prompt=row["system_prompt"],
        model_path=row["model_path"], message_count=row["n"], draft=row["draft"],
        stored_count=row["stored"], response_format=_response_format(row["response_format"]),
    )  # fmt: skip


def _response_format(stored: str) -> dict[str, Any] | None:
    try:
        value = json.loads(stored) if stored else None
    except ValueError:  # written by hand, or damaged: the chat is text again
        return None
    return value if isinstance(value, dict) else None


def _message(row: sqlite3.Row) -> StoredMessage:
    return StoredMessage(
        id=row["id"], chat_id=row["chat_id"], seq=row["seq"], role=row["role"],
        text=row["text"], created=row["created"], model=row["model"],
        stats=json.loads(row["stats"] or "{}"), settings=json.loads(row["settings"] or "{}"),
        complete=bool(row["complete"]), parent_id=row["parent_id"],
        version=row["version"], versions=row["versions"], thinking=row["thinking"],
    )  # fmt: skip
