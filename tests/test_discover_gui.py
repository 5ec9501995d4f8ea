"""Discover page against the fake hub: search -> repo -> per-quant table, badges and chart."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from tests.hub_fixtures import MINI


@pytest.fixture
def discover(qtbot, fake_hub, data_dir: Path):
    from quantdesk.gui import build_app

    window, controller, _ = build_app(argparse.Namespace(data_dir=None, files=[]))
    qtbot.addWidget(window)
    window.show()
    window.show_page(1)
    yield window, controller.discover
    controller.shutdown()


def test_search_open_repo_and_see_fit_badges(qtbot, discover) -> None:
    window, ctl = discover
    page = window.discover_page
    page.query.setText("llama")
    with qtbot.waitSignal(ctl.searchShown, timeout=30_000) as shown:
        qtbot.keyClick(page.query, Qt.Key.Key_Return)
    assert shown.args[0] >= 2
    repos = [h.repo_id for h in page.results.hits()]
    assert repos[0] == MINI  # sorted by downloads
    with qtbot.waitSignal(ctl.repoShown, timeout=60_000) as opened:
        page.results_view.activated.emit(page.results.index(0))
    estimate = opened.args[0]
    rows = page.table_model.rows()
    assert [r.quant for r in rows] == [e.quant for e in estimate.estimates]
    assert {"Q2_K", "Q4_K_M", "F16"} <= {r.quant for r in rows}
    assert all(r.verdict == "cpu" and r.badge == "CPU only" for r in rows)  # CPU-only build
    assert sum(r.recommended for r in rows) == 1
    assert page.table.currentIndex().row() == estimate.recommended
    assert "highest quality that fits" in page.repo_status.text()
    assert len(page.chart.bars()) == len(rows)
    ram_at_4k = {r.quant: r.ram for r in rows}
    with qtbot.waitSignal(ctl.repoShown, timeout=60_000):
        page.context_slider.setValue(page.context_slider.maximum())
    bigger = {r.quant: r.ram for r in page.table_model.rows()}
    assert all(bigger[q] > ram_at_4k[q] for q in ram_at_4k)  # re-estimated live, no network


def test_a_missing_repo_says_so(qtbot, discover) -> None:
    window, ctl = discover
    with qtbot.waitSignal(ctl.repoShown, timeout=30_000):
        ctl.open_repo("nobody/nothing-here")
    assert "nobody/nothing-here" in window.discover_page.repo_status.text()
    assert window.discover_page.table_model.rowCount() == 0
