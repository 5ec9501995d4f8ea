"""Chat export (JSON, Markdown) and import: real SQLite, a real tiny model, a real reply."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import threading
from dataclasses import asdict
from pathlib import Path

import pytest

import quantdesk
from quantdesk.cli import chats as cli_chats
from quantdesk.cli import export as cli_export
from quantdesk.cli import import_chat as cli_import_chat
from quantdesk.config.paths import resolve_paths
from quantdesk.engine.chat.conversations import ConversationStore
from quantdesk.engine.chat.export import (
    ChatImportError,
    ChatNotFound,
    export_json,
    export_markdown,
    import_json,
)
from quantdesk.engine.chat.prompting import Message
from quantdesk.engine.events import GenerationStats, TokenText
from quantdesk.engine.params import LoadSettings, SamplingSettings
from quantdesk.engine.run.session import InferenceSession
from tests.support.tiny_models import write_tiny_model

SAMPLING = SamplingSettings(temperature=0.0, seed=1234, max_tokens=12)
LOAD = LoadSettings(n_ctx=256, n_threads=1)
# as stored (JSON: tuples such as LoadSettings.rpc_workers come back as lists)
SETTINGS = json.loads(json.dumps({"sampling": asdict(SAMPLING), "load": asdict(LOAD)}))
CUT_OFF = "Here is code:\n\n```python\nprint('half"


@pytest.fixture(scope="module")
def reply(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, dict]:
    """A tiny Q8_0 model and one real reply from it (text and its GenerationStats)."""
    model = write_tiny_model(tmp_path_factory.mktemp("models") / "tiny-q8.gguf", quant="Q8_0")
    session = InferenceSession.load(model, LOAD)
    try:
        events = list(session.generate([Message("user", "Hello")], SAMPLING, threading.Event()))
    finally:
        session.close()
    stats = events[-1]
    assert isinstance(stats, GenerationStats)
    text = "".join(e.text for e in events if isinstance(e, TokenText))
    return model, text, asdict(stats)


@pytest.fixture
def store(data_dir: Path) -> ConversationStore:
    """The app's own chat database in this test's data dir (closed after the test)."""
    s = ConversationStore(resolve_paths().chats_db)
    yield s
    s.close()


def _chat(store: ConversationStore, reply: tuple[Path, str, dict]) -> int:
    """A pinned chat with a system prompt, a full reply and a reply cut off mid code block."""
    model, text, stats = reply
    chat = store.create_chat("Greetings ✨", "Be brief.", str(model))
    store.set_pinned(chat.id, True)
    store.add_message(chat.id, "user", "Hello")
    store.add_message(chat.id, "assistant", text, model=str(model), stats=stats, settings=SETTINGS)
    store.add_message(chat.id, "user", "Show me *code*, please.")
    store.add_message(chat.id, "assistant", CUT_OFF, model=str(model), settings=SETTINGS,
                      complete=False)  # fmt: skip
    return chat.id


def _comparable(export: dict) -> tuple[dict, list[dict]]:
    chat = {k: v for k, v in export["chat"].items() if k not in ("created", "updated")}
    return chat, export["messages"]


def test_json_export_holds_every_message_and_a_real_reproducibility_block(store, reply) -> None:
    model, text, stats = reply
    chat_id = _chat(store, reply)
    data = export_json(store, chat_id)
    assert data["format"] == "quantdesk-chat" and data["version"] == 2
    assert data["chat"]["title"] == "Greetings ✨" and data["chat"]["pinned"] is True
    assert data["chat"]["system_prompt"] == "Be brief." and data["chat"]["model_path"] == str(model)
    roles = [(m["role"], m["complete"]) for m in data["messages"]]
    assert roles == [("user", True), ("assistant", True), ("user", True), ("assistant", False)]
    assert data["messages"][1]["text"] == text and data["messages"][1]["stats"] == stats
    assert data["messages"][1]["settings"] == SETTINGS
    repro = data["reproducibility"]
    assert repro["model_file"] == str(model)
    assert repro["model_sha256"] == hashlib.sha256(model.read_bytes()).hexdigest()
    assert repro["quant_type"] == "Q8_0"
    import llama_cpp

    assert repro["llama_cpp_version"] == llama_cpp.__version__
    assert repro["quantdesk_version"] == quantdesk.__version__
    assert repro["sampling"] == asdict(SAMPLING) and repro["sampling"]["seed"] == 1234
    assert repro["load"] == SETTINGS["load"]
    json.dumps(data)  # JSON-ready as it is


def test_export_import_export_round_trip_is_equal(store, reply) -> None:
    chat_id = _chat(store, reply)
    first = export_json(store, chat_id)
    through_a_file = json.loads(json.dumps(first))
    imported = import_json(store, through_a_file)
    assert imported.id != chat_id and imported.message_count == 4
    second = export_json(store, imported.id)
    assert _comparable(second) == _comparable(first)  # message created times included
    assert second["reproducibility"]["model_sha256"] == first["reproducibility"]["model_sha256"]
    assert second["chat"]["created"] >= first["chat"]["updated"]  # a new chat, made now
    assert [c.id for c in store.chats()] == [imported.id, chat_id]  # the original is untouched
    again = export_json(store, chat_id)
    assert {**again, "reproducibility": None} == {**first, "reproducibility": None}


def test_markdown_reads_as_a_conversation_with_its_reproducibility_block(store, reply) -> None:
    model, text, _ = reply
    md = export_markdown(store, _chat(store, reply))
    assert md.startswith("# Greetings ✨\n")
    order = [md.index(h) for h in ("**System**", "Be brief.", "**You**\n\nHello", "**Assistant**")]
    assert order == sorted(order)
    assert md.count("**You**") == 2 and md.count("**Assistant**") == 2
    assert text in md and "Show me *code*, please." in md  # text kept as Markdown
    assert "tok/s" in md  # the full reply's stats line
    assert "*(reply cut off)*" in md
    assert CUT_OFF + "\n```\n" in md  # the open fence is closed before what follows
    repro = md[md.index("## Reproducibility") :]
    sha = hashlib.sha256(model.read_bytes()).hexdigest()
    assert repro.startswith("## Reproducibility\n\n```text\n") and repro.rstrip().endswith("```")
    for line in (f"model_file: {model}", f"model_sha256: {sha}", "quant_type: Q8_0",
                 f"quantdesk_version: {quantdesk.__version__}", "seed=1234", "n_ctx=256"):
        assert line in repro  # fmt: skip


def test_a_missing_model_file_gives_null_hash_with_a_note(store, reply, tmp_path) -> None:
    gone = tmp_path / "gone.gguf"
    chat = store.create_chat("Old", model_path=str(gone))
    store.add_message(chat.id, "user", "Hi")
    store.add_message(chat.id, "assistant", "Hello", model=str(gone), settings=SETTINGS)
    repro = export_json(store, chat.id)["reproducibility"]
    assert repro["model_file"] == str(gone)
    assert repro["model_sha256"] is None and repro["quant_type"] is None
    assert any("not there any more" in n for n in repro["notes"])
    assert "model_sha256: unknown" in export_markdown(store, chat.id)


def test_hashing_can_be_skipped_and_random_seeds_are_flagged(store, reply) -> None:
    model, text, stats = reply
    chat = store.create_chat("Random")
    random_seed = {"sampling": asdict(SamplingSettings()), "load": asdict(LOAD)}
    store.add_message(chat.id, "assistant", text, model=str(model), settings=random_seed)
    repro = export_json(store, chat.id, hash_models=False)["reproducibility"]
    assert repro["model_sha256"] is None and repro["quant_type"] == "Q8_0"
    assert any("not computed" in n for n in repro["notes"])
    assert any("Seed -1" in n for n in repro["notes"])


def test_an_unknown_chat_cannot_be_exported(store) -> None:
    with pytest.raises(ChatNotFound, match="no chat 99"):
        export_json(store, 99)


GOOD = {"format": "quantdesk-chat", "version": 1, "chat": {"title": "T"},
        "messages": [{"role": "user", "text": "Hi"}]}  # fmt: skip


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([1, 2, 3], "not a QuantDesk chat export"),
        ({"format": "other-app", "messages": []}, "not a QuantDesk chat export"),
        ({**GOOD, "version": 3}, "newer QuantDesk \\(format version 3"),
        ({**GOOD, "version": 2, "messages": [{"id": 1, "parent": 7, "role": "user",
                                               "text": "x"}]}, "follows a message that is not"),
        ({**GOOD, "version": 2, "messages": [{"id": 1, "role": "user", "text": "x"},
                                             {"id": 1, "role": "user", "text": "y"}]},
         "id 1 is used twice"),
        ({**GOOD, "version": "1"}, "no valid format version"),
        ({k: v for k, v in GOOD.items() if k != "chat"}, "the file has no 'chat'"),
        ({**GOOD, "chat": {}}, "the chat has no 'title'"),
        ({**GOOD, "messages": [{"role": "user"}]}, "message 1 has no 'text'"),
        ({**GOOD, "messages": [{"role": "bot", "text": "x"}]}, "unknown role 'bot'"),
        ({**GOOD, "messages": [{"role": "user", "text": 5}]}, "'text' has the wrong type"),
        ({**GOOD, "messages": [{"role": "user", "text": "x", "created": True}]}, "wrong type"),
        ({**GOOD, "messages": ["hello"]}, "message 1 is not an object"),
    ],
)
def test_foreign_damaged_or_newer_files_are_refused_and_nothing_is_saved(
    store, data, message
) -> None:
    with pytest.raises(ChatImportError, match=message):
        import_json(store, data)
    assert store.chats() == []


def test_a_minimal_file_imports_with_defaults(store) -> None:
    chat = import_json(store, GOOD)
    assert (chat.title, chat.pinned, chat.message_count) == ("T", False, 1)
    [message] = store.messages(chat.id)
    assert (message.role, message.text, message.complete) == ("user", "Hi", True)


# -- CLI: the run() functions with the Namespaces argparse would build ------------------------
# (app/cli.py does not list chats/export/import-chat yet; the subprocess tests below run once
# it does.)


def test_cli_chats_lists_and_searches(store, reply, capsys) -> None:
    chat_id = _chat(store, reply)
    other = store.create_chat("Shopping list")
    assert cli_chats.run(argparse.Namespace(json=True, search="")) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["id"], r["title"], r["messages"]) for r in rows] == [
        (chat_id, "Greetings ✨", 4),
        (other.id, "Shopping list", 0),
    ]
    assert cli_chats.run(argparse.Namespace(json=False, search="code")) == 0
    out = capsys.readouterr().out
    assert "Greetings ✨" in out and "(pinned)" in out and "Shopping" not in out
    assert cli_chats.run(argparse.Namespace(json=False, search="nothing like this")) == 0
    assert capsys.readouterr().out == "No chats match.\n"


def test_cli_export_then_import_chat(store, reply, capsys, tmp_path) -> None:
    chat_id = _chat(store, reply)
    args = argparse.Namespace(chat_id=chat_id, format="md", out=None, no_hash=False)
    assert cli_export.run(args) == 0
    assert capsys.readouterr().out == export_markdown(store, chat_id)
    out = tmp_path / "chat.json"
    args = argparse.Namespace(chat_id=chat_id, format="json", out=out, no_hash=False)
    assert cli_export.run(args) == 0
    assert not out.with_name("chat.json.part").exists()
    assert cli_import_chat.run(argparse.Namespace(file=out)) == 0
    assert "(4 messages)" in capsys.readouterr().out
    new_id = store.chats()[0].id
    assert _comparable(export_json(store, new_id)) == _comparable(json.loads(out.read_text()))


def test_cli_import_chat_refuses_a_file_that_is_not_json(store, tmp_path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_bytes(b'{"format": "quantdesk-chat", "vers')
    with pytest.raises(ChatImportError, match="not JSON"):
        cli_import_chat.run(argparse.Namespace(file=bad))
    with pytest.raises(ChatImportError, match="no file"):
        cli_import_chat.run(argparse.Namespace(file=tmp_path / "absent.json"))
    assert store.chats() == []


# -- CLI as a user runs it -------------------------------------------------------------------


def _quantdesk(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "quantdesk", *args],
        capture_output=True, text=True, timeout=120, env=dict(os.environ), encoding="utf-8",
    )  # fmt: skip


def test_cli_commands_in_a_child_process(store, reply, tmp_path) -> None:
    chat_id = _chat(store, reply)
    listed = _quantdesk("chats", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [r["id"] for r in json.loads(listed.stdout)] == [chat_id]
    md = _quantdesk("export", str(chat_id), "--format", "md")
    assert md.returncode == 0 and "*(reply cut off)*" in md.stdout
    out = tmp_path / "chat.json"
    exported = _quantdesk("export", str(chat_id), "--format", "json", "--out", str(out))
    assert exported.returncode == 0, exported.stderr
    imported = _quantdesk("import-chat", str(out))
    assert imported.returncode == 0, imported.stderr
    assert "(4 messages)" in imported.stdout
    missing = _quantdesk("export", "999", "--format", "json")
    assert missing.returncode == 2 and "no chat 999" in missing.stderr
    out.write_text(json.dumps({**GOOD, "version": 9}))
    newer = _quantdesk("import-chat", str(out))
    assert newer.returncode == 2
    assert newer.stderr.startswith("quantdesk: error: chat.json: This chat was exported by a newer")
    assert "Traceback" not in newer.stderr


def test_every_version_is_exported_and_imported_back_as_it_was_shown(store) -> None:
    """Edits and regenerated replies travel in the JSON file (with the branch shown) and in
    the Markdown file (an "Other versions" part); importing gives the same tree back."""
    chat = store.create_chat("Sea")
    q = store.add_message(chat.id, "user", "Write a haiku about the sea.")
    a = store.add_message(chat.id, "assistant", "Waves fold into foam")
    store.add_version(a, "Salt wind, grey water")
    store.add_version(q, "Write a haiku about rain.")
    store.add_message(chat.id, "assistant", "Drops on the window")
    store.select_version(q)  # the original question's branch is shown
    data = export_json(store, chat.id, hash_models=False)
    assert [(m["id"], m["parent"], m["shown"]) for m in data["messages"]] == [
        (1, None, True), (2, None, False), (3, 1, False), (4, 1, True), (5, 2, False)]
    again = import_json(store, data)
    assert [m.text for m in store.messages(again.id)] == [
        "Write a haiku about the sea.", "Salt wind, grey water"]
    assert sorted(m.text for m in store.all_messages(again.id)) == sorted(
        m.text for m in store.all_messages(chat.id))
    assert export_json(store, again.id, hash_models=False)["messages"] == data["messages"]
    text = export_markdown(store, chat.id, hash_models=False)
    shown_part, others = text.split("## Other versions")
    assert "Salt wind, grey water" in shown_part and "(version 2 of 2)" in shown_part
    assert "Waves fold into foam" in others and "Write a haiku about rain." in others
    assert "Drops on the window" in others


def test_a_replys_thinking_is_exported_marked_and_imported_back(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path / "chats.sqlite3")
    chat = store.create_chat("Sums")
    store.add_message(chat.id, "user", "2+2?")
    store.add_message(chat.id, "assistant", "It is 4.", thinking="Two and two.\nMake four.")
    markdown = export_markdown(store, chat.id, hash_models=False)
    assert "> **Thinking**\n>\n> Two and two.\n> Make four.\n\nIt is 4." in markdown
    data = export_json(store, chat.id, hash_models=False)
    assert [m["thinking"] for m in data["messages"]] == ["", "Two and two.\nMake four."]
    copy = import_json(store, json.loads(json.dumps(data)))
    assert [m.thinking for m in store.messages(copy.id)] == ["", "Two and two.\nMake four."]
    store.close()
