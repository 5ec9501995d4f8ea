"""Preferences round trip, and the Server page, as a person uses them: Ctrl+, opens the real
dialog, choices are made with the keyboard and OK is clicked; the server is started with its
button and asked over real HTTP."""

from __future__ import annotations

import argparse
import json
import socket
import urllib.request
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QComboBox, QDialog, QSpinBox

from tests.support.dialogs import button, click, when_dialog
from tests.support.journey_actions import add_in_place, load_by_double_click, shortcut
from tests.support.tiny_models import write_tiny_chat_model


def _choose(combo: QComboBox, text: str) -> None:
    """Pick ``text`` in a combo box with the keyboard (arrows), as a person does."""
    combo.setFocus()
    target = combo.findText(text)
    assert target >= 0, [combo.itemText(i) for i in range(combo.count())]
    while combo.currentIndex() != target:
        key = Qt.Key.Key_Down if combo.currentIndex() < target else Qt.Key.Key_Up
        QTest.keyClick(combo, key)


def test_preferences_round_trip_in_words(qtbot, window_app, data_dir: Path) -> None:
    window, controller = window_app
    seen: dict = {}

    def change(dialog: QDialog) -> None:
        mode = dialog.editor("import.mode")
        seen["mode"] = mode.currentText()
        seen["choices"] = [mode.itemText(i) for i in range(mode.count())]
        _choose(mode, "Copy them into QuantDesk's folder")
        ctx: QSpinBox = dialog.editor("load.n_ctx")
        ctx.setFocus()
        ctx.selectAll()
        QTest.keyClicks(ctx, "2048")
        click(button(dialog, "OK"))

    answered = when_dialog(QDialog, change)
    shortcut(window, window.chat.input, Qt.Key.Key_Comma)  # Ctrl+,
    answered.wait(qtbot)
    assert answered.title == "Preferences"
    assert seen["mode"] == "Ask each time"  # in words, not "ask" (issue 19, fault 10)
    assert "ask" not in seen["choices"]
    assert controller.settings.get("import.mode") == "copy"
    assert controller.settings.get("load.n_ctx") == 2048
    stored = json.loads(controller.paths.settings_file.read_text(encoding="utf-8"))
    assert stored["import"]["mode"] == "copy" and stored["load"]["n_ctx"] == 2048

    from quantdesk.gui import build_app

    controller.shutdown()
    again, controller2, _ = build_app(argparse.Namespace(data_dir=None, files=[]))
    qtbot.addWidget(again)
    try:
        shown: dict = {}

        def look(dialog: QDialog) -> None:
            shown["mode"] = dialog.editor("import.mode").currentText()
            shown["ctx"] = dialog.editor("load.n_ctx").value()
            click(button(dialog, "Cancel"))

        answered = when_dialog(QDialog, look)
        again.show()
        again.menu_actions["Preferences…"].trigger()  # Edit → Preferences…
        answered.wait(qtbot)
        assert shown == {"mode": "Copy them into QuantDesk's folder", "ctx": 2048}
    finally:
        controller2.shutdown()


def test_the_server_page_serves_the_chat_model_over_http(qtbot, window_app, tmp_path) -> None:
    window, controller = window_app
    add_in_place(qtbot, window, write_tiny_chat_model(tmp_path / "m" / "served.gguf",
                                                      name="Served Tiny"))  # fmt: skip
    load_by_double_click(qtbot, window, controller, "Served Tiny")
    page = window.server_page
    window.menu_actions["Server"].trigger()  # View → Server
    with socket.socket() as probe:  # a free port, as the user would pick one
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    page.port.setFocus()
    page.port.selectAll()
    QTest.keyClicks(page.port, str(port))
    click(page.toggle)
    qtbot.waitUntil(lambda: page.status.text().startswith("Running at"), timeout=15_000)
    url = page.status.text().removeprefix("Running at ").strip()
    assert url == f"http://127.0.0.1:{port}/v1"
    assert "Served Tiny" in page.serving.text()

    def get(path: str, body: dict | None = None) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url + path, data=data,
                                         headers={"Content-Type": "application/json"})  # fmt: skip
        with urllib.request.urlopen(request, timeout=60) as reply:
            return json.loads(reply.read())

    result: dict = {}
    import threading

    def ask() -> None:  # the GUI thread must keep running while the request waits
        result["models"] = get("/models")
        result["chat"] = get("/chat/completions", {
            "model": "served", "max_tokens": 6,
            "messages": [{"role": "user", "content": "Hi"}]})

    asker = threading.Thread(target=ask)
    asker.start()
    qtbot.waitUntil(lambda: not asker.is_alive(), timeout=60_000)
    assert [m["id"] for m in result["models"]["data"]] == ["served"]
    assert result["chat"]["choices"][0]["message"]["role"] == "assistant"
    qtbot.waitUntil(lambda: "POST /v1/chat/completions 200" in page.log.toPlainText(),
                    timeout=5_000)  # fmt: skip
    click(page.toggle)
    assert page.status.text() == "Stopped."
