"""The conversation store on real SQLite: order, search, streaming saves, damaged/newer files."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from quantdesk.engine.conversations import (
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
    store.delete_from(b.id, 1)
    assert [m.role for m in store.messages(b.id)] == ["user"]
    assert store.add_message(b.id, "assistant", "again") and store.messages(b.id)[1].seq == 1
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
