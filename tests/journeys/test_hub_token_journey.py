"""A gated model on the (fake, real HTTP) hub: refused without a token, "Add an access token…"
opens Preferences → Hugging Face, a wrong paste is refused in words, the right one is saved
where only the user reads it (never in settings or the log), the model opens, the token is
still there after a restart, and Remove forgets it."""

from __future__ import annotations

import argparse
import logging
import stat

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QDialog

from quantdesk.ui.settings.hub_token_page import HubTokenPage
from tests.support.dialogs import button, click, click_label_link, when_dialog
from tests.support.fake_hub import FAKE_TOKEN
from tests.support.hub_fixtures import GATED


def _open_gated(qtbot, window, controller) -> None:  # noqa: ANN001
    page = window.discover_page
    window.menu_actions["Discover"].trigger()
    page.query.setFocus()
    page.query.clear()
    QTest.keyClicks(page.query, "gated")
    with qtbot.waitSignal(controller.discover.searchShown, timeout=30_000):
        QTest.keyClick(page.query, Qt.Key.Key_Return)
    row = next(r for r in range(page.results.rowCount())
               if GATED in page.results.index(r, 0).data())  # fmt: skip
    at = page.results_view.visualRect(page.results.index(row, 0)).center()
    with qtbot.waitSignal(controller.discover.repoShown, timeout=60_000):
        QTest.mouseClick(page.results_view.viewport(), Qt.MouseButton.LeftButton, pos=at)
        QTest.mouseDClick(page.results_view.viewport(), Qt.MouseButton.LeftButton, pos=at)


def test_a_gated_model_opens_after_the_token_is_pasted_in_preferences(
    qtbot, fake_hub, window_app, caplog
) -> None:
    caplog.set_level(logging.DEBUG)
    window, controller = window_app
    page = window.discover_page
    _open_gated(qtbot, window, controller)
    assert "gated model" in page.repo_status.text()
    assert "Preferences → Hugging Face" in page.repo_status.text()
    assert page.table_model.rowCount() == 0
    seen: dict = {}

    def paste(dialog: QDialog) -> None:
        seen["section"] = dialog.section_list.currentItem().text()
        editor = dialog.findChild(HubTokenPage)
        assert editor.isVisible()  # the link opened Preferences at this page
        seen["before"] = editor.status.text()
        field = editor.field
        assert field.echoMode() == field.EchoMode.Password  # not shown while typed
        field.setFocus()
        QTest.keyClicks(field, "hf_pasted with a space")
        click(button(dialog, "OK"))
        seen["refused"] = editor.refusal.text() if editor.refusal.isVisible() else ""
        seen["still_open"] = dialog.isVisible()
        field.clear()
        QTest.keyClicks(field, FAKE_TOKEN)
        click(editor.reveal)
        seen["revealed"] = field.echoMode() == field.EchoMode.Normal
        with qtbot.waitSignal(controller.discover.repoShown, timeout=60_000):
            click(button(dialog, "OK"))  # saved, and the refused model is read again
        seen["closed"] = not dialog.isVisible()

    answered = when_dialog(QDialog, paste, timeout_s=90)
    click_label_link(page.repo_status)  # "Add an access token…"
    answered.wait(qtbot, timeout_ms=90_000)
    assert answered.title == "Preferences"
    assert seen["section"] == "Hugging Face"
    assert "No token is saved" in seen["before"]
    assert "not an access token" in seen["refused"] and seen["still_open"]
    assert seen["revealed"] and seen["closed"]
    # the model is read with the token now: its quants and their fit are shown
    assert [r.quant for r in page.table_model.rows()] == ["F16"]
    assert any(r.authorized for r in fake_hub.requests("/*"))
    assert "saved in a file only you can read" in window.banner.label.text()
    assert "…oken" in window.banner.label.text() and FAKE_TOKEN not in window.banner.label.text()
    # kept where only this user reads it, and nowhere else QuantDesk writes
    paths = controller.paths
    token_file = paths.config_dir / "hf-token"
    assert token_file.read_text().strip() == FAKE_TOKEN
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    written = {p for folder in (paths.data_dir, paths.config_dir, paths.cache_dir, paths.log_dir)
               for p in folder.rglob("*") if p.is_file() and p != token_file}  # fmt: skip
    assert not [p for p in written if FAKE_TOKEN.encode() in p.read_bytes()]
    assert caplog.records and FAKE_TOKEN not in caplog.text  # every log line, DEBUG included

    # after a restart the gated model opens at once, and Preferences can remove the token
    from quantdesk.gui import build_app

    controller.shutdown()
    again, controller2, _ = build_app(argparse.Namespace(data_dir=None, files=[]))
    qtbot.addWidget(again)
    again.show()
    try:
        _open_gated(qtbot, again, controller2)
        assert [r.quant for r in again.discover_page.table_model.rows()] == ["F16"]

        def remove(dialog: QDialog) -> None:
            sections = dialog.section_list
            item = sections.findItems("Hugging Face", Qt.MatchFlag.MatchExactly)[0]
            QTest.mouseClick(sections.viewport(), Qt.MouseButton.LeftButton,
                             pos=sections.visualItemRect(item).center())  # fmt: skip
            editor = dialog.findChild(HubTokenPage)
            assert editor.isVisible()
            seen["saved"] = editor.status.text()
            click(editor.remove_button)
            click(button(dialog, "OK"))

        answered = when_dialog(QDialog, remove)
        again.menu_actions["Preferences…"].trigger()
        answered.wait(qtbot)
        assert "ending in …oken" in seen["saved"] and FAKE_TOKEN not in seen["saved"]
        assert not token_file.exists()
        assert "removed" in again.banner.label.text()
    finally:
        controller2.shutdown()
