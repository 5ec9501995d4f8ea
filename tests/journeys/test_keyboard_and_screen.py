"""A small screen and the keyboard (issue 19, fault 9): the first window fits the screen,
Tab leaves the message box, the menu bar holds the main actions, Ctrl+Q quits; and words
(fault 10): "1 message", the welcome card once a model is loaded."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from tests.support.journey_actions import (
    add_in_place,
    load_by_double_click,
    shortcut,
    type_and_send,
)
from tests.support.tiny_models import write_tiny_chat_model


def test_the_first_window_fits_the_screen_and_the_keyboard_gets_around(
    qtbot, window_app, tmp_path: Path
) -> None:
    window, controller = window_app
    area = window.screen().availableGeometry()  # offscreen: an 800×600 screen
    assert area.contains(window.frameGeometry()), (window.frameGeometry(), area)
    send = window.chat.send
    assert area.contains(send.mapToGlobal(send.rect().bottomRight()))
    box = window.chat.input
    box.setFocus()
    QTest.keyClick(box, Qt.Key.Key_Tab)
    assert box.toPlainText() == "" and not box.hasFocus()  # Tab moved on, typed nothing
    menus = [a.text().replace("&", "") for a in window.menuBar().actions()]
    assert menus == ["File", "Edit", "View", "Model", "Help"]
    for action in ("Add model…", "Export chat as Markdown…", "Export chat as JSON…", "Quit",
                   "Preferences…", "Select model…", "Eject", "About QuantDesk", "Discover"):
        assert action in window.menu_actions, action  # fmt: skip

    add_in_place(qtbot, window, write_tiny_chat_model(tmp_path / "m" / "c.gguf", name="Chatty"))
    load_by_double_click(qtbot, window, controller, "Chatty")
    welcome = window.chat.transcript.message(0).text
    assert "Chatty is loaded: type a message below" in welcome and "Pick a model" not in welcome
    window.settings_panel.editor("sampling.max_tokens").setValue(4)
    type_and_send(qtbot, window, controller, "Hi")
    assert window.chat_list.model.index(0).data().split("\n")[1].startswith("2 messages")

    with qtbot.waitSignal(window.closing, timeout=5_000):
        shortcut(window, box, Qt.Key.Key_Q)  # Ctrl+Q quits
    assert not window.isVisible() and QApplication.activeModalWidget() is None


def test_one_message_is_one_message(qtbot, window_app) -> None:
    window, controller = window_app
    store = controller.chat.history.store
    chat = store.create_chat("Lonely")
    store.add_message(chat.id, "user", "Just me")
    controller.chat.history.refresh()
    assert window.chat_list.model.index(0).data().split("\n")[1].startswith("1 message ·")
