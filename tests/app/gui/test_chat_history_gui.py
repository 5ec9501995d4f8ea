"""Conversations survive: an app restart, and a kill -9 in the middle of a streaming reply."""

from __future__ import annotations

import argparse
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from quantdesk.engine.chat.conversations import ConversationStore
from tests.support.tiny_models import write_tiny_chat_model, write_tiny_model


def _build(qtbot):
    from quantdesk.gui import build_app

    window, controller, paths = build_app(argparse.Namespace(data_dir=None, files=[]))
    controller.settings.set("import.mode", "reference")
    controller.settings.set("load.n_ctx", 512)
    controller.settings.set("load.n_threads", 1)
    controller.settings.set("sampling.max_tokens", 24)
    qtbot.addWidget(window)
    window.show()
    controller.start([])
    return window, controller, paths


def _load(qtbot, window, controller, model: Path) -> None:
    """Add ``model`` (in place) and load it."""
    controller.imports.import_files([model], mode="reference")
    qtbot.waitUntil(lambda: window.library.model.rowCount() == 1, timeout=10_000)
    with qtbot.waitSignal(controller.models.modelLoaded, timeout=60_000):
        controller.models.load(window.library.model.entries()[0])


def _say(qtbot, controller, text: str) -> None:
    with qtbot.waitSignal(controller.chat.replyFinished, timeout=60_000):
        controller.chat.send(text)


def test_chat_persists_across_a_restart(qtbot, data_dir: Path, tmp_path: Path) -> None:
    model = write_tiny_model(tmp_path / "tiny.gguf")
    window, controller, paths = _build(qtbot)
    _load(qtbot, window, controller, model)
    _say(qtbot, controller, "Hello world")
    _say(qtbot, controller, "And a second question")
    shown = [(m.role, m.text) for m in window.chat.transcript.messages() if m.role != "notice"]
    [chat] = window.chat_list.model.chats()
    assert chat.title == "Hello world" and chat.message_count == 4
    controller.chat.new_chat()
    _say(qtbot, controller, "Another chat")
    controller.shutdown()

    window2, controller2, _ = _build(qtbot)
    try:
        titles = [c.title for c in window2.chat_list.model.chats()]
        assert titles == ["Another chat", "Hello world"]
        controller2.chat.history.open(window2.chat_list.model.chats()[1].id)
        again = [(m.role, m.text) for m in window2.chat.transcript.messages()]
        assert again == shown
        assert [(m.role, m.content) for m in controller2.chat.messages] == shown  # model context
        assert "tok/s" in window2.chat.transcript.messages()[1].stats
    finally:
        controller2.shutdown()


_STREAMER = """
import argparse, json, sys, time
from PySide6.QtWidgets import QApplication
from quantdesk.gui import build_app
app = QApplication([])
window, controller, paths = build_app(argparse.Namespace(data_dir=None, files=[]))
s = controller.settings
s.set("import.mode", "reference"); s.set("load.n_ctx", 2048); s.set("load.n_threads", 2)
s.set("sampling.max_tokens", 64)
controller.start([])
model = sys.argv[1]
def report(_text):
    parts = controller.chat._reply_parts
    print(json.dumps({"len": sum(len(p) for p in parts), "reply": len(controller.chat.messages)}),
          flush=True)
controller.models.worker.tokenReady.connect(report)
def loaded(_m):
    controller.chat.send("First question")
def finished(_stats):
    if len(controller.chat.messages) == 2:
        print(json.dumps({"first_done": True}), flush=True)
        s.set("sampling.max_tokens", 4000)  # streams until the context is full
    controller.chat.send("Second question" if len(controller.chat.messages) == 2 else "Go on")
controller.models.modelLoaded.connect(loaded)
controller.chat.replyFinished.connect(finished)
def go():
    from pathlib import Path
    controller.imports.import_files([Path(model)], mode="reference", load_first=True)
from PySide6.QtCore import QTimer
QTimer.singleShot(100, go)
app.exec()
"""


@pytest.mark.starter
def test_kill_during_streaming_loses_at_most_the_last_second(
    starter_model: Path, data_dir: Path, tmp_path: Path
) -> None:
    """kill -9 mid-reply: earlier messages intact, the partial reply saved up to <1 s ago."""
    script = tmp_path / "streamer.py"
    script.write_text(_STREAMER)
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "QUANTDESK_SKIP_STARTER": "1"}
    proc = subprocess.Popen(
        [sys.executable, str(script), str(starter_model)], stdout=subprocess.PIPE, text=True,
        env=env,
    )  # fmt: skip
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stdout is not None
    threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout], daemon=True).start()
    seen: list[tuple[float, int, int]] = []  # (time, reply length, reply number)
    first_done = False
    deadline = time.monotonic() + 240
    try:
        while True:
            line = lines.get(timeout=max(deadline - time.monotonic(), 0.1))  # Empty: too slow
            event = json.loads(line)
            if event.get("first_done"):
                first_done, seen = True, []
            elif first_done:
                seen.append((time.monotonic(), event["len"], event["reply"]))
                current = [t for t, _n, r in seen if r == seen[-1][2]]
                if seen[-1][0] - seen[0][0] > 3.0 and current[-1] - current[0] > 1.5:
                    break  # replies after the first have streamed 3 s, this one for 1.5 s
        killed_at = time.monotonic()
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert first_done
    store = ConversationStore(data_dir / "chats.sqlite3")
    try:
        [chat] = store.chats()
        messages = store.messages(chat.id)
    finally:
        store.close()
    assert [m.role for m in messages] == ["user", "assistant"] * (len(messages) // 2)
    assert messages[0].text == "First question" and messages[2].text == "Second question"
    assert messages[1].text and all(m.complete for m in messages[1:-1:2])  # nothing earlier lost
    partial = messages[-1]
    assert not partial.complete
    last_reply = seen[-1][2]
    assert len(messages) == last_reply + 1
    older = [n for t, n, r in seen if r == last_reply and t < killed_at - 1.0]
    assert older and len(partial.text) >= max(older)  # at most the last second is missing


def test_regenerate_and_edit_keep_the_store_in_step(qtbot, data_dir: Path, tmp_path: Path):
    """The first chat sits under the welcome notice: rows and stored messages still match."""
    model = write_tiny_model(tmp_path / "tiny.gguf")
    window, controller, _ = _build(qtbot)
    try:
        _load(qtbot, window, controller, model)
        assert window.chat.transcript.messages()[0].role == "notice"
        _say(qtbot, controller, "one")
        _say(qtbot, controller, "two")
        rows = window.chat.transcript.messages()
        last_reply = len(rows) - 1
        with qtbot.waitSignal(controller.chat.replyFinished, timeout=60_000):
            controller.chat.regenerate(last_reply)
        store = controller.chat.history.store
        chat_id = controller.chat.history.chat_id
        shown = [(m.role, m.text) for m in window.chat.transcript.messages()[1:]]
        assert [(m.role, m.text) for m in store.messages(chat_id)] == shown
        second_user = next(i for i, m in enumerate(window.chat.transcript.messages())
                           if m.text == "two")  # fmt: skip
        before = [(m.id, m.text) for m in store.all_messages(chat_id)]
        controller.chat.edit(second_user)  # nothing leaves the store on Edit (issue 19, fault 2)
        assert [(m.id, m.text) for m in store.all_messages(chat_id)] == before
        assert len(store.messages(chat_id)) == 4 and window.chat.input.toPlainText() == "two"
        controller.chat.cancel_edit()
        assert window.chat.input.toPlainText() == "" and len(store.messages(chat_id)) == 4
    finally:
        controller.shutdown()


def test_continue_grows_the_last_reply_in_place(qtbot, data_dir: Path, tmp_path: Path):
    """Continue (offered on the last reply) appends to that reply, in the view, in what the model
    sees next and in the store; a reply cut off by a restart can be continued too."""
    from quantdesk.ui.chat.transcript_model import ChatListModel

    model = write_tiny_model(tmp_path / "tiny.gguf")
    window, controller, paths = _build(qtbot)
    try:
        controller.settings.set("sampling.temperature", 0.0)  # greedy: the same text each time
        _load(qtbot, window, controller, model)
        _say(qtbot, controller, "Hello")
        transcript, view = window.chat.transcript, window.chat.view
        row = transcript.rowCount() - 1
        first = transcript.message(row).text
        actions = [label for _, label in view.delegate().actions(transcript.index(row, 0))]
        assert "Continue" in actions
        with qtbot.waitSignal(controller.chat.replyFinished, timeout=60_000) as done:
            view.continueRequested.emit(row)
        # the whole reply: 24 tokens before Continue and 24 more (issue 19, fault 5)
        assert done.args[0].completion_tokens == 48
        assert transcript.message(row).stats.startswith("48 tokens")
        grown = transcript.message(row).text
        assert transcript.rowCount() == row + 1 and grown.startswith(first) and grown != first
        assert not transcript.index(row, 0).data(ChatListModel.StreamingRole)
        assert controller.chat.messages[-1].content == grown and len(controller.chat.messages) == 2
        history = controller.chat.history
        [stored_user, stored_reply] = history.store.messages(history.chat_id)
        assert stored_reply.text == grown and stored_reply.complete
        # a reply cut off (saved incomplete) is continued after a restart
        controller.chat.history.store.update_message(stored_reply.id, first, complete=False)
        controller.shutdown()
        window, controller, _ = _build(qtbot)
        _load(qtbot, window, controller, model)
        transcript = window.chat.transcript
        row = transcript.rowCount() - 1
        assert transcript.message(row).text == first
        with qtbot.waitSignal(controller.chat.replyFinished, timeout=60_000):
            window.chat.view.continueRequested.emit(row)
        again = controller.chat.history.store.messages(controller.chat.history.chat_id)[-1]
        assert again.complete and again.text == transcript.message(row).text == grown
    finally:
        controller.shutdown()


def test_export_then_import_round_trip_in_the_app(qtbot, data_dir: Path, tmp_path: Path):
    from quantdesk.engine.chat.export import export_json

    model = write_tiny_model(tmp_path / "tiny.gguf")
    window, controller, _ = _build(qtbot)
    try:
        _load(qtbot, window, controller, model)
        _say(qtbot, controller, "Hello world")
        history = controller.chat.history
        original = history.chat_id
        out = tmp_path / "chat.json"
        with qtbot.waitSignal(history.exported, timeout=60_000):
            history.export_chat(original, "json", out)
        with qtbot.waitSignal(history.exported, timeout=60_000):
            history.export_chat(original, "md", tmp_path / "chat.md")
        assert "Hello world" in (tmp_path / "chat.md").read_text()
        copy = history.import_chat(out)
        assert copy is not None and copy != original and history.chat_id == copy
        first, second = (export_json(history.store, i) for i in (original, copy))
        assert first["messages"] == second["messages"]
        assert {k: v for k, v in first["chat"].items() if k not in ("created", "updated")} == {
            k: v for k, v in second["chat"].items() if k not in ("created", "updated")}
        shown = [(m.role, m.text) for m in window.chat.transcript.messages()]
        assert shown == [(m["role"], m["text"]) for m in first["messages"]]
        (tmp_path / "bad.json").write_text('{"format": "something else"}')
        assert history.import_chat(tmp_path / "bad.json") is None
        assert window.banner.isVisible()
    finally:
        controller.shutdown()


def test_a_2000_message_chat_opens_laying_out_only_what_is_seen(qtbot, data_dir: Path):
    """Opening a long chat lays out the rows near the view, not 2,000 Markdown documents."""
    from quantdesk.config.paths import resolve_paths

    store = ConversationStore(resolve_paths().ensure().chats_db)
    chat = store.create_chat("Long chat")
    for i in range(1000):
        store.add_message(chat.id, "user", f"Question {i}")
        store.add_message(chat.id, "assistant", f"Answer {i}.\n\n```python\nprint({i})\n```\n")
    store.close()
    window, controller, _ = _build(qtbot)
    try:
        view = window.chat.view
        before = view.delegate().layout_count
        controller.chat.history.open(chat.id)
        qtbot.wait(300)
        assert window.chat.transcript.rowCount() == 2000
        assert view.delegate().layout_count - before < 100  # about a screenful, not 2,000
        bar = view.verticalScrollBar()
        bar.setValue(bar.maximum())
        qtbot.wait(300)
        last = window.chat.transcript.index(1999, 0)
        assert view.viewport().rect().intersects(view.visualRect(last))
    finally:
        controller.shutdown()


def test_damaged_library_and_chat_files_are_reported_and_kept(qtbot, data_dir: Path) -> None:
    """Start-up with a damaged library and a damaged chat database: both moved aside, said."""
    from quantdesk.config.paths import resolve_paths

    paths = resolve_paths().ensure()
    for db in (paths.library_db, paths.chats_db):
        db.write_bytes(b"SQLite format 3\0" + b"\xff" * 4000)
    window, controller, _ = _build(qtbot)
    try:
        text = window.banner.label.text()
        assert "model library was damaged" in text and "chat history was damaged" in text
        kept = sorted(p.name for p in paths.data_dir.glob("*.damaged-*"))
        assert len(kept) == 2 and all(p.startswith(("library.", "chats.")) for p in kept)
    finally:
        controller.shutdown()


def test_full_context_marker_keeps_the_store_in_step(qtbot, data_dir: Path, tmp_path: Path):
    # chat mode: the whole conversation goes into the prompt
    model = write_tiny_chat_model(tmp_path / "tiny.gguf")
    window, controller, _ = _build(qtbot)
    try:
        controller.settings.set("load.n_ctx", 128)
        _load(qtbot, window, controller, model)
        for i in range(6):  # ~20 tokens a message, 24-token replies, 128-token context
            _say(qtbot, controller, f"{i} hello there friend")
        notices = [m for m in window.chat.transcript.messages() if m.role == "notice"]
        assert any("Context full" in m.text for m in notices)
        stored = controller.chat.history.store.messages(controller.chat.history.chat_id)
        shown = [(m.role, m.text) for m in window.chat.transcript.messages() if m.role != "notice"]
        assert [(m.role, m.text) for m in stored] == shown  # markers are not messages
        last_reply = len(window.chat.transcript.messages()) - 2  # the marker follows it
        assert window.chat.transcript.messages()[last_reply].role == "assistant"
        with qtbot.waitSignal(controller.chat.replyFinished, timeout=60_000):
            controller.chat.regenerate(last_reply)
        stored = controller.chat.history.store.messages(controller.chat.history.chat_id)
        shown = [(m.role, m.text) for m in window.chat.transcript.messages() if m.role != "notice"]
        assert [(m.role, m.text) for m in stored] == shown
    finally:
        controller.shutdown()
