"""Discover → Download… → pause → resume → Open in Chat, on the fake Hub (a real HTTP server),
by clicks and keys: the search box and Enter, a result, a quant row, the confirmation, the
Downloads page's buttons, the model loaded in Chat."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QMessageBox

from tests.support.dialogs import button, click, when_dialog
from tests.support.fake_hub import slow
from tests.support.hub_fixtures import MINI


def test_discover_download_pause_resume_and_chat(qtbot, fake_hub, window_app) -> None:
    window, controller = window_app
    fake_hub.inject("/lfs-files/*", slow(400_000), methods=("GET",))  # long enough to pause
    window.menu_actions["Discover"].trigger()
    page = window.discover_page
    page.query.setFocus()
    QTest.keyClicks(page.query, "TinyLlama")
    with qtbot.waitSignal(controller.discover.searchShown, timeout=30_000):
        QTest.keyClick(page.query, Qt.Key.Key_Return)
    results = page.results_view
    row = next(r for r in range(page.results.rowCount())
               if MINI in page.results.index(r, 0).data())  # fmt: skip
    at = results.visualRect(page.results.index(row, 0)).center()
    with qtbot.waitSignal(controller.discover.repoShown, timeout=60_000):
        QTest.mouseClick(results.viewport(), Qt.MouseButton.LeftButton, pos=at)
        QTest.mouseDClick(results.viewport(), Qt.MouseButton.LeftButton, pos=at)
    table = page.table
    q2k = [r.quant for r in page.table_model.rows()].index("Q2_K")
    QTest.mouseClick(table.viewport(), Qt.MouseButton.LeftButton,
                     pos=table.visualRect(page.table_model.index(q2k, 0)).center())  # fmt: skip
    confirm = when_dialog(QMessageBox, lambda box: click(button(box, "Yes")))
    click(page.download_button)
    confirm.check()
    assert "Q2_K" in confirm.text or "TinyLlama" in confirm.text

    downloads = window.downloads_page
    qtbot.waitUntil(lambda: any(i.state == "running" and i.done_bytes > 0
                                for i in downloads.model.items()), timeout=30_000)  # fmt: skip
    assert window.pages.currentWidget() is downloads
    cell = downloads.table.visualRect(downloads.model.index(0, 0)).center()
    QTest.mouseClick(downloads.table.viewport(), Qt.MouseButton.LeftButton, pos=cell)
    click(downloads.buttons["Pause"])
    qtbot.waitUntil(lambda: downloads.model.items()[0].state == "paused", timeout=15_000)
    kept = downloads.model.items()[0].done_bytes
    assert kept > 0 and downloads.buttons["Resume"].isEnabled()
    fake_hub.clear_faults()  # full speed from here
    with qtbot.waitSignal(controller.downloads.modelAdded, timeout=60_000) as added:
        click(downloads.buttons["Resume"])
    entry = added.args[0]
    assert downloads.model.items()[0].state == "done" and entry.path.is_file()
    # resumed from the part kept (a Range request from where it stopped), not from the start
    resumed = [r.range for r in fake_hub.requests("/lfs-files/*", method="GET") if r.range]
    assert any(r.startswith("bytes=") and int(r[6:].split("-")[0]) >= kept for r in resumed), (
        resumed, kept)
    with qtbot.waitSignal(controller.models.modelLoaded, timeout=60_000) as loaded:
        click(downloads.buttons["Open in Chat"])
    assert loaded.args[0].path == str(entry.path)
    assert window.pages.currentIndex() == 0
