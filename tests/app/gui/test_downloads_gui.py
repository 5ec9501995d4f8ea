"""Discover -> Download -> Downloads page -> library, against the fake hub (pytest-qt)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from tests.support.fake_hub import slow
from tests.support.hub_fixtures import MINI

FILE = "TinyLlama-Mini-Q2_K.gguf"


def _build(qtbot):
    from quantdesk.gui import build_app

    window, controller, _ = build_app(argparse.Namespace(data_dir=None, files=[]))
    qtbot.addWidget(window)
    window.show()
    return window, controller


@pytest.fixture
def opened_repo(qtbot, fake_hub, data_dir: Path):
    window, controller = _build(qtbot)
    with qtbot.waitSignal(controller.discover.repoShown, timeout=60_000):
        controller.discover.open_repo(MINI)
    yield window, controller
    controller.shutdown()


def _row(window, quant: str):
    return next(r for r in window.discover_page.table_model.rows() if r.quant == quant)


def test_download_from_discover_lands_in_the_library(qtbot, opened_repo, hub_root: Path) -> None:
    window, controller = opened_repo
    row = _row(window, "Q2_K")
    assert row.files == (FILE,)
    with qtbot.waitSignal(controller.downloads.modelAdded, timeout=60_000) as added:
        controller.downloads.request(MINI, row, 4096, confirm=False)
    entry = added.args[0]
    assert entry.owned and entry.path.read_bytes() == (hub_root / MINI / FILE).read_bytes()
    assert any(e.path == entry.path for e in window.library.model.entries())
    [item] = window.downloads_page.model.items()
    assert item.state == "done"
    assert window.pages.currentWidget() is window.downloads_page
    assert "Downloaded" in window.banner.label.text()
    # Discover marks the quant that is in the library now
    with qtbot.waitSignal(controller.discover.repoShown, timeout=60_000):
        controller.discover.open_repo(MINI)
    marked = [r.quant for r in window.discover_page.table_model.rows() if r.in_library]
    assert marked == ["Q2_K"]
    q2k = window.discover_page.table_model.index(
        [r.quant for r in window.discover_page.table_model.rows()].index("Q2_K"), 0)
    assert q2k.data().endswith("· in library")
    # the sha256 checked while downloading is kept, and Details shows it (issue 19, fault 7)
    import hashlib

    sha = hashlib.sha256(entry.path.read_bytes()).hexdigest()
    assert entry.sha256 == sha
    with qtbot.waitSignal(controller.library.detailsShown, timeout=30_000) as shown:
        window.library.detailsRequested.emit(entry)
    assert sha in shown.args[0].details.as_text()
    shown.args[0].reject()
    # the file deleted outside the app: the row says so and Open in Chat is not offered
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest

    entry.path.unlink()
    page = window.downloads_page
    page.table.clearSelection()
    cell = page.table.visualRect(page.model.index(0, 0)).center()
    QTest.mouseClick(page.table.viewport(), Qt.MouseButton.LeftButton, pos=cell)
    state_column = page.model.columnCount() - 1
    assert "deleted" in page.model.index(0, state_column).data()
    assert not page.buttons["Open in Chat"].isEnabled()


def test_the_queue_survives_a_gui_restart(qtbot, fake_hub, data_dir: Path, hub_root) -> None:
    fake_hub.inject("/lfs-files/*", slow(1_000_000), methods=("GET",))
    window, controller = _build(qtbot)
    with qtbot.waitSignal(controller.discover.repoShown, timeout=60_000):
        controller.discover.open_repo(MINI)
    controller.downloads.request(MINI, _row(window, "Q2_K"), 4096, confirm=False)
    page = window.downloads_page
    qtbot.waitUntil(lambda: any(i.done_bytes > 200_000 for i in page.model.items()), timeout=30_000)
    controller.shutdown()  # the app is closed mid-download
    fake_hub.clear_faults()
    window2, controller2 = _build(qtbot)
    try:
        [item] = window2.downloads_page.model.items()
        assert item.files == (FILE,)
        with qtbot.waitSignal(controller2.downloads.modelAdded, timeout=60_000):
            pass
        assert item.dest.read_bytes() == (hub_root / MINI / FILE).read_bytes()
    finally:
        controller2.shutdown()


def test_parallel_downloads_set_in_preferences_show_on_the_page(qtbot, app) -> None:
    """The Downloads page follows the setting however it changes (Preferences apply it through
    the controller's settingsApplied; the page no longer is reached into from outside)."""
    window, controller = app
    controller.settings_ctl.apply({"downloads.parallel": 3})
    assert window.downloads_page.parallel.value() == 3
    assert controller.settings.get("downloads.parallel") == 3
