"""The conversation store on real SQLite: order, search, streaming saves, damaged/newer files."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from quantdesk.engine.chat.conversations import (
    ChatStoreError,
    ConversationStore,
    title_from,
)


@pytest.fixture
def store(tmp_path: Path):
    s = ConversationStore(tmp_path / "chats.sqlite3")
    yield s
    s.close()


def test_chats_messages_order_and_search(store: ConversationStore) -> None:
    a = store.create_chat("Pasta recipes")
    b = store.create_chat("Rust lifetimes")
    store.add_message(a.id, "user", "How long do I boil penne?")
    store.add_message(b.id, "user", "Explain borrowing")
    reply = store.add_message(b.id, "assistant", "", model="/m.gguf", complete=False)
    store.update_message(reply, "Borrowing lets you")
    assert [c.id for c in store.chats()] == [b.id, a.id]  # most recently updated first
    store.set_pinned(a.id, True)
    assert [c.title for c in store.chats()] == ["Pasta recipes", "Rust lifetimes"]
    assert [c.id for c in store.chats("penne")] == [a.id]  # message text is searched
    assert [c.id for c in store.chats("LIFETIMES")] == [b.id]  # titles, case-insensitive
    assert store.chats("100%") == []  # LIKE wildcards are literal
    [user, partial] = store.messages(b.id)
    assert (user.seq, partial.seq, partial.text, partial.complete) == (0, 1, "Borrowing lets you",
                                                                       False)  # fmt: skip
    store.update_message(reply, "Borrowing lets you lend.", complete=True, stats={"tokens": 5})
    assert store.messages(b.id)[1].complete and store.messages(b.id)[1].stats == {"tokens": 5}
    again = store.add_version(reply, "again")
    assert [m.text for m in store.messages(b.id)] == ["Explain borrowing", "again"]
    assert (store.messages(b.id)[1].seq, store.messages(b.id)[1].version) == (1, 2)
    assert len(store.all_messages(b.id)) == 3 and again != reply  # the old reply stays
    store.rename(b.id, "Borrowing")
    store.delete_chat(a.id)
    assert [(c.title, c.message_count) for c in store.chats()] == [("Borrowing", 2)]
    assert store.latest().id == b.id


def test_wal_mode_and_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "chats.sqlite3"
    first = ConversationStore(path)
    chat = first.create_chat("kept")
    first.add_message(chat.id, "user", "hello")
    first.close()
    again = ConversationStore(path)
    assert again._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert [m.text for m in again.messages(chat.id)] == ["hello"]
    again.close()


def test_newer_database_is_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "chats.sqlite3"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE future (x)")
    db.execute("PRAGMA user_version=99")
    db.commit()
    db.close()
    before = path.read_bytes()
    with pytest.raises(ChatStoreError, match="newer QuantDesk"):
        ConversationStore(path)
    assert path.read_bytes() == before


def test_damaged_database_is_backed_up_and_replaced(tmp_path: Path) -> None:
    path = tmp_path / "chats.sqlite3"
    path.write_bytes(b"SQLite format 3\0" + b"\xff" * 4000)
    store = ConversationStore(path)
    assert store.recovered_from is not None and store.recovered_from.exists()
    assert store.recovered_from.read_bytes().startswith(b"SQLite format 3")
    assert store.chats() == []
    store.close()


def test_titles() -> None:
    assert title_from("  Hello   there\nsecond line ") == "Hello there second line"
    long = title_from("word " * 40)
    assert len(long) <= 61 and long.endswith("…")
    assert title_from("   ") == "New chat"


def test_edits_and_regenerations_are_versions_and_nothing_is_lost(store) -> None:
    """A chat is a tree: each edit or regenerated reply is a version beside the old one; the
    branch shown follows the versions chosen, and returning to a version shows what followed
    it then."""
    chat = store.create_chat("Haiku")
    q1 = store.add_message(chat.id, "user", "Write a haiku about the sea.")
    a1 = store.add_message(chat.id, "assistant", "Waves fold into foam")
    store.add_message(chat.id, "user", "Now one about hills.")
    a2 = store.add_message(chat.id, "assistant", "Green shoulders rise")
    regenerated = store.add_version(a1, "Salt wind, grey water")  # Regenerate the first reply
    assert [m.text for m in store.messages(chat.id)] == [
        "Write a haiku about the sea.", "Salt wind, grey water"]  # a new branch from there
    assert store.chat(chat.id).message_count == 2
    edited = store.add_version(q1, "Write a haiku about rain.")  # Edit the first message
    store.add_message(chat.id, "assistant", "Drops on the window")
    shown = store.messages(chat.id)
    assert [(m.text, m.version, m.versions) for m in shown] == [
        ("Write a haiku about rain.", 2, 2), ("Drops on the window", 1, 1)]
    assert len(store.all_messages(chat.id)) == 7  # nothing left the store
    store.select_version(q1)  # ‹ back to the original question: its branch as it was left
    assert [m.id for m in store.messages(chat.id)] == [q1, regenerated]
    store.select_version(a1)  # and the first reply's first version, with what followed
    assert [m.text for m in store.messages(chat.id)][-1] == "Green shoulders rise"
    assert store.messages(chat.id)[-1].id == a2 and store.chat(chat.id).message_count == 4
    assert store.versions(a1) == [a1, regenerated] and store.versions(q1) == [q1, edited]
    store.add_message(chat.id, "user", "Thanks")  # appends to the branch shown
    assert [m.text for m in store.messages(chat.id)][-2:] == ["Green shoulders rise", "Thanks"]


def test_a_draft_belongs_to_its_chat(tmp_path: Path) -> None:
    path = tmp_path / "chats.sqlite3"
    store = ConversationStore(path)
    a, b = store.create_chat("a"), store.create_chat("b")
    store.set_draft(a.id, "half a thought")
    store.close()
    store = ConversationStore(path)
    assert (store.chat(a.id).draft, store.chat(b.id).draft) == ("half a thought", "")
    store.close()


_V1_SCHEMA = """
CREATE TABLE chats (id INTEGER PRIMARY KEY, title TEXT NOT NULL, created REAL NOT NULL,
    updated REAL NOT NULL, pinned INTEGER NOT NULL DEFAULT 0,
    system_prompt TEXT NOT NULL DEFAULT '', model_path TEXT NOT NULL DEFAULT '');
CREATE TABLE messages (id INTEGER PRIMARY KEY,
    chat_id INTEGER NOT NULL REFERENCES chats(id) ON DELETE CASCADE, seq INTEGER NOT NULL,
    role TEXT NOT NULL, text TEXT NOT NULL, created REAL NOT NULL,
    model TEXT NOT NULL DEFAULT '', stats TEXT NOT NULL DEFAULT '{}',
    settings TEXT NOT NULL DEFAULT '{}', complete INTEGER NOT NULL DEFAULT 1,
    UNIQUE (chat_id, seq));
CREATE INDEX messages_by_chat ON messages (chat_id, seq);
INSERT INTO chats VALUES (1, 'Old chat', 1.0, 2.0, 1, 'Be brief.', '/m.gguf');
INSERT INTO chats VALUES (2, 'Empty', 1.0, 1.0, 0, '', '');
INSERT INTO messages VALUES (10, 1, 0, 'user', 'Hi', 1.0, '', '{}', '{}', 1);
INSERT INTO messages VALUES (11, 1, 1, 'assistant', 'Hello!', 1.5, '/m.gguf',
    '{"tokens": 2}', '{}', 1);
INSERT INTO messages VALUES (12, 1, 3, 'user', 'More?', 2.0, '', '{}', '{}', 1);
PRAGMA user_version = 1;
"""


def _version_1_store(folder: Path) -> Path:
    """A chats file as version 1 wrote it (two chats, three messages in the first)."""
    path = folder / "chats.sqlite3"
    old = sqlite3.connect(path)
    old.executescript(_V1_SCHEMA)
    old.close()
    return path


def test_a_version_1_store_is_migrated_with_a_backup_kept(tmp_path: Path) -> None:
    path = _version_1_store(tmp_path)
    store = ConversationStore(path)
    [backup] = tmp_path.glob("chats.before-v4-*.sqlite3")
    kept = sqlite3.connect(backup)
    assert kept.execute("PRAGMA user_version").fetchone()[0] == 1
    assert kept.execute("SELECT count(*) FROM messages").fetchone()[0] == 3
    kept.close()
    shown = store.messages(1)
    assert [(m.id, m.seq, m.text, m.parent_id) for m in shown] == [
        (10, 0, "Hi", None), (11, 1, "Hello!", 10), (12, 2, "More?", 11)]  # a gap in seq closed
    assert shown[1].stats == {"tokens": 2} and store.chat(1).pinned
    assert store.chat(1).message_count == 3 and store.chat(2).message_count == 0
    assert store.messages(2) == []
    store.add_version(11, "Hello again!")
    assert [m.text for m in store.messages(1)] == ["Hi", "Hello again!"]
    store.close()
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == 4
    again = ConversationStore(path)  # opened again: no second migration, no second backup
    assert len(list(tmp_path.glob("chats.before-v4-*"))) == 1
    assert [m.text for m in again.messages(1)] == ["Hi", "Hello again!"]
    again.close()


def test_a_reply_keeps_its_thinking_apart_and_a_version_2_store_gains_the_column(
    tmp_path: Path,
) -> None:
    path = _version_1_store(tmp_path)
    ConversationStore(path).close()  # to version 4 through 2 and 3
    store = ConversationStore(path)
    assert [m.thinking for m in store.messages(1)] == ["", "", ""]  # old replies: none
    reply = store.add_message(1, "assistant", "", complete=False)
    store.update_message(reply, "Four.", thinking="Two and two.", complete=True)
    store.close()
    store = ConversationStore(path)
    last = store.messages(1)[-1]
    assert (last.thinking, last.text, last.complete) == ("Two and two.", "Four.", True)
    store.close()


def test_a_chat_keeps_its_json_output_and_a_version_3_store_gains_the_column(
    tmp_path: Path,
) -> None:
    path = _version_1_store(tmp_path)
    store = ConversationStore(path)
    assert store.chat(1).response_format is None  # an old chat: text
    schema = {"type": "json_schema", "json_schema": {"name": "chat", "schema": {
        "type": "object", "properties": {"n": {"type": "integer"}}}}}  # fmt: skip
    store.set_response_format(1, schema)
    store.set_response_format(2, {"type": "json_object"})
    store.close()
    store = ConversationStore(path)
    assert store.chat(1).response_format == schema
    assert store.chat(2).response_format == {"type": "json_object"}
    store.set_response_format(2, None)
    assert store.chat(2).response_format is None
    store.close()
