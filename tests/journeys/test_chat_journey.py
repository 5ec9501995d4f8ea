"""A chat as a person has it: load → send → stop → regenerate → edit (cancel, then send) →
switch versions → switch chats with a draft → export → restart. Real clicks and keys on the
real window; the tiny ChatML model through real llama.cpp; the store read back as saved.

Fault 2 of issue 19: Edit deleted the message and everything after it at once, Regenerate threw
the previous reply away, and the draft followed into the next chat.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QFileDialog

from tests.support.dialogs import (
    choose_files,
    choose_menu_item,
    click,
    click_link,
    when_dialog,
)
from tests.support.journey_actions import (
    add_in_place,
    load_by_double_click,
    load_tiny_chat_model,
    right_click,
    row_of,
    shortcut,
    shown,
    type_and_send,
)
from tests.support.tiny_models import write_tiny_chat_model


def test_edit_and_regenerate_keep_every_version_and_drafts_stay_with_their_chat(
    qtbot, window_app, tmp_path: Path
) -> None:
    window, controller = window_app
    load_tiny_chat_model(qtbot, window, controller, tmp_path / "models")
    hint = window.chat_list.empty_hint
    assert hint.isVisible() and "No chats yet" in hint.text()  # an empty list says why

    type_and_send(qtbot, window, controller, "Hello there")
    assert not hint.isVisible()
    first_reply = shown(window)[1][1]
    # Stop: a long reply, stopped with the Stop button
    window.settings_panel.editor("sampling.max_tokens").setValue(1_000_000)
    box = window.chat.input
    QTest.keyClicks(box, "Tell me a long story")
    with qtbot.waitSignal(controller.chat.replyStarted, timeout=10_000):
        QTest.keyClick(box, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: controller.models.worker.tokens_generated >= 3, timeout=20_000)
    with qtbot.waitSignal(controller.chat.replyFinished, timeout=20_000) as stopped:
        click(window.chat.stop)
    assert stopped.args[0].stop_reason == "stopped"
    window.settings_panel.editor("sampling.max_tokens").setValue(12)

    store, chat_id = controller.chat.history.store, controller.chat.history.chat_id
    stopped_reply = shown(window)[3][1]
    # Regenerate keeps the stopped reply as version 1
    with qtbot.waitSignal(controller.chat.replyFinished, timeout=60_000):
        click_link(window.chat.view, row_of(window, "assistant", 1), "action:regenerate")
    assert shown(window)[3][2] == (2, 2)
    assert [m.text for m in store.all_messages(chat_id)].count(stopped_reply) == 1
    regenerated = shown(window)[3][1]
    click_link(window.chat.view, row_of(window, "assistant", 1), "action:older")
    assert shown(window)[3][1:] == (stopped_reply, (1, 2))
    click_link(window.chat.view, row_of(window, "assistant", 1), "action:newer")
    assert shown(window)[3][1:] == (regenerated, (2, 2))

    # Edit, then Cancel: the draft comes back, nothing changed anywhere
    QTest.keyClicks(box, "a thought for later")
    before = [(m.id, m.text) for m in store.all_messages(chat_id)]
    click_link(window.chat.view, row_of(window, "user", 0), "action:edit")
    assert box.toPlainText() == "Hello there" and window.chat.edit_bar.isVisible()
    click(window.chat.cancel_edit)
    assert box.toPlainText() == "a thought for later" and not window.chat.edit_bar.isVisible()
    assert [(m.id, m.text) for m in store.all_messages(chat_id)] == before
    assert len(shown(window)) == 4

    # Edit the first message and send: a new branch; the old one is one click away
    click_link(window.chat.view, row_of(window, "user", 0), "action:edit")
    box.selectAll()
    QTest.keyClicks(box, "Hello again")
    with qtbot.waitSignal(controller.chat.replyFinished, timeout=60_000):
        QTest.keyClick(box, Qt.Key.Key_Return)
    assert [(r, v) for r, _t, v in shown(window)] == [("user", (2, 2)), ("assistant", (1, 1))]
    assert shown(window)[0][1] == "Hello again"
    assert box.toPlainText() == "a thought for later"  # the draft is back after the edit
    click_link(window.chat.view, row_of(window, "user", 0), "action:older")
    assert [t for _r, t, _v in shown(window)] == [
        "Hello there", first_reply, "Tell me a long story", regenerated]
    assert len(store.all_messages(chat_id)) == 7  # 4 + the stopped reply + edit + its reply

    # Another chat: the draft stays with the first one
    shortcut(window, box, Qt.Key.Key_N)
    assert box.toPlainText() == "" and shown(window) == []
    type_and_send(qtbot, window, controller, "Second chat")
    assert len(window.chat_list.model.chats()) == 2
    chat_view = window.chat_list.view
    first = chat_view.model().index(window.chat_list.model.row_of(chat_id), 0)
    click_at = chat_view.visualRect(first).center()
    QTest.mouseClick(chat_view.viewport(), Qt.MouseButton.LeftButton, pos=click_at)
    assert controller.chat.history.chat_id == chat_id
    assert box.toPlainText() == "a thought for later"
    assert shown(window)[0][1:] == ("Hello there", (1, 2))

    # Export as JSON from the chat list's menu: every version is in the file
    target = tmp_path / "exports" / "chat.json"
    target.parent.mkdir()
    menu = choose_menu_item("Export as JSON…")
    save = when_dialog(QFileDialog, choose_files([target]))
    with qtbot.waitSignal(controller.chat.history.exported, timeout=30_000):
        right_click(chat_view.viewport(), click_at)
    menu.check()
    save.check()
    data = json.loads(target.read_text(encoding="utf-8"))
    texts = [m["text"] for m in data["messages"]]
    assert {"Hello there", "Hello again", stopped_reply, regenerated} <= set(texts)
    assert [m["text"] for m in data["messages"] if m["shown"]][0] == "Hello there"


def test_versions_and_drafts_survive_a_restart(qtbot, data_dir: Path, tmp_path: Path) -> None:
    from quantdesk.gui import build_app

    model = write_tiny_chat_model(tmp_path / "m" / "chatty.gguf", name="chatty")
    window, controller, _ = build_app(argparse.Namespace(data_dir=None, files=[]))
    qtbot.addWidget(window)
    window.show()
    controller.start([])
    add_in_place(qtbot, window, model)
    window.settings_panel.editor("sampling.max_tokens").setValue(8)
    load_by_double_click(qtbot, window, controller, "chatty")
    type_and_send(qtbot, window, controller, "Keep me")
    with qtbot.waitSignal(controller.chat.replyFinished, timeout=60_000):
        click_link(window.chat.view, row_of(window, "assistant", 0), "action:regenerate")
    QTest.keyClicks(window.chat.input, "unsent words")
    before = shown(window)
    window.close()  # the user closes the window
    controller.shutdown()

    window2, controller2, _ = build_app(argparse.Namespace(data_dir=None, files=[]))
    qtbot.addWidget(window2)
    window2.show()
    controller2.start([])
    try:
        assert shown(window2) == before and before[1][2] == (2, 2)
        assert window2.chat.input.toPlainText() == "unsent words"
        # once the model is loaded again the status bar keeps this chat's figures, not 0
        qtbot.waitUntil(lambda: controller2.models.loaded is not None, timeout=60_000)
        used = controller2.chat.history.shown_messages()[-1].stats["context_used"]
        assert window2.context_label.text().startswith(f"Context {used:,} / ")
        click_link(window2.chat.view, row_of(window2, "assistant", 0), "action:older")
        assert shown(window2)[1][2] == (1, 2)
    finally:
        controller2.shutdown()
    # the command line sees the same store: both replies are there
    import subprocess
    import sys

    listed = subprocess.run([sys.executable, "-m", "quantdesk", "chats", "--json"],
                            capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
    [chat] = json.loads(listed.stdout)
    assert (chat["messages"], chat["other_versions"]) == (2, 1)
    exported = subprocess.run([sys.executable, "-m", "quantdesk", "export", str(chat["id"]),
                               "--format", "md"], capture_output=True, text=True, timeout=60,
                              check=True)  # fmt: skip
    assert "(version 1 of 2" in exported.stdout and "(version 2 of 2" in exported.stdout
