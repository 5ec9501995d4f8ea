"""The library sidebar with models found everywhere (pytest-qt, real SQLite, real tiny GGUFs).

A fake home holds the layouts of the HF cache, LM Studio, Ollama, Jan and GPT4All
(tests/engine/library/test_discovery.py builds them); nothing is copied into the app's folder.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import gguf
import numpy as np
import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

from quantdesk.engine.estimate.load_plan import Budget
from tests.support.fake_home import FOUND_IN_FAKE_HOME, build_fake_home, sha256
from tests.support.tiny_models import write_llama_gguf, write_tiny_model

GIB = 1 << 30
FOUND = FOUND_IN_FAKE_HOME
SEVEN_B = {"n_vocab": 32000, "n_embd": 4096, "n_layer": 32, "n_head": 32, "n_head_kv": 8,
           "n_ff": 11008, "n_ctx_train": 4096}  # fmt: skip


def write_other_arch(path: Path, arch: str = "qwen2") -> Path:
    """A small valid GGUF of another architecture (listed and filtered, never loaded)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    w = gguf.GGUFWriter(str(path), arch)
    w.add_name(f"tiny-{arch}")
    w.add_file_type(1)
    w.add_context_length(1024)
    w.add_embedding_length(32)
    w.add_block_count(1)
    w.add_head_count(4)
    w.add_head_count_kv(2)
    w.add_tensor("token_embd.weight", np.zeros((64, 32), dtype=np.float16))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


@pytest.fixture
def lib(qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data_dir: Path):
    from quantdesk.gui import build_app

    home = tmp_path / "home"
    files = build_fake_home(home)
    window, controller, paths = build_app(argparse.Namespace(data_dir=None, files=[]))
    controller.settings.set("load.n_ctx", 4096)
    qtbot.addWidget(window)
    window.show()
    ctl = controller.library
    ctl.home, ctl.env = home, {}  # this fake home only, never the machine's own folders
    ctl.budget = Budget(ram_available=8 * GIB, vram_free=None, gpu_offload=False)
    with qtbot.waitSignal(ctl.scanned, timeout=60_000):
        ctl.rescan()
    yield window, controller, ctl, files
    controller.shutdown()


def names_and_sources(window) -> dict[str, str]:
    panel = window.library
    return {panel.model.display_name(r): e.source for r, e in enumerate(panel.model.entries())}


def choose(combo, value: str) -> None:
    index = combo.findData(value)
    assert index >= 0, f"{value} not offered"
    combo.setCurrentIndex(index)


def test_found_models_are_listed_once_with_their_source(qtbot, lib, tmp_path) -> None:
    window, controller, ctl, files = lib
    assert names_and_sources(window) == FOUND
    entries = window.library.model.entries()
    assert len({os.path.realpath(e.path) for e in entries}) == len(entries)
    assert not any(e.owned for e in entries)
    assert list(controller.paths.models_dir.rglob("*.gguf")) == []  # nothing copied
    text = window.library.proxy.index(0, 0).data()
    assert "HF cache" in text or "Ollama" in text or "LM Studio" in text

    watched = tmp_path / "watched"
    watched.mkdir()
    (watched / "link-to-hf.gguf").symlink_to(files["hf_blob"])  # the same file again
    write_tiny_model(watched / "mine.gguf", name="mine", seed=12)
    with qtbot.waitSignal(ctl.scanned, timeout=60_000):
        ctl.add_folder(watched)
    after = names_and_sources(window)
    assert after == {**FOUND, "mine": "folder"}
    assert controller.settings.get("library.watched_folders") == [str(watched)]
    [ollama] = [e for e in window.library.model.entries() if e.path == files["ollama"]]
    assert ollama.architecture == "llama"

    with qtbot.waitSignal(ctl.scanned, timeout=60_000):
        ctl.remove_folder(str(watched))
    assert names_and_sources(window) == FOUND


def test_rescan_reflects_a_removed_file(qtbot, lib) -> None:
    window, _controller, ctl, files = lib
    files["lms"].unlink()
    files["ollama"].unlink()
    with qtbot.waitSignal(ctl.scanned, timeout=60_000) as scan:
        window.library.rescan_button.click()
    assert scan.args[0].removed == 2
    left = names_and_sources(window)
    assert "lmstudio-community/Tiny-GGUF/Tiny-Q4_K_M" not in left and "llama3.2:3b" not in left
    assert len(left) == len(FOUND) - 2


def test_remove_from_library_stays_removed_after_rescan(qtbot, lib) -> None:
    window, _controller, ctl, files = lib
    [entry] = [e for e in window.library.model.entries() if e.path == files["gpt4all"]]
    assert [t for t, _ in window.library.menu_actions(entry)][-1] == "Remove from library"
    window.library.removeRequested.emit(entry)
    assert "tiny-chat.Q8_0" not in names_and_sources(window)
    with qtbot.waitSignal(ctl.scanned, timeout=60_000):
        ctl.rescan()
    assert "tiny-chat.Q8_0" not in names_and_sources(window)
    assert files["gpt4all"].is_file()  # removing never touches the file


def test_search_and_filters_by_source_arch_and_quant(qtbot, lib, tmp_path) -> None:
    window, _controller, ctl, _files = lib
    panel = window.library
    write_other_arch(tmp_path / "other" / "qwen-tiny.gguf")
    with qtbot.waitSignal(ctl.scanned, timeout=60_000):
        ctl.add_folder(tmp_path / "other")
    visible = lambda: {panel.model.display_name(panel.model.row_of(str(e.path))): e.source  # noqa: E731
                       for e in panel.visible_entries()}  # fmt: skip
    choose(panel.source_combo, "ollama")
    assert visible() == {"llama3.2:3b": "ollama", "hf.co/bartowski/Other-GGUF:Q8_0": "ollama"}
    assert f"2 of {len(FOUND) + 1} models shown" in panel.status.text()
    choose(panel.source_combo, "")
    choose(panel.arch_combo, "qwen2")
    assert list(visible()) == ["qwen-tiny"]
    choose(panel.arch_combo, "llama")
    assert "qwen-tiny" not in visible() and len(visible()) == len(FOUND)
    choose(panel.arch_combo, "")
    choose(panel.quant_combo, "F16")  # the fake home's tiny models are all Q8_0 inside
    assert set(visible()) == {"qwen-tiny"}
    choose(panel.quant_combo, "Q8_0")
    assert len(visible()) == len(FOUND)
    choose(panel.quant_combo, "")
    panel.search.setText("jan")
    assert set(visible()) == {"tiny-jan", "jan-nano"}
    panel.search.clear()
    choose(panel.sort_combo, "size")
    sizes = [e.size for e in panel.visible_entries()]
    assert sizes == sorted(sizes, reverse=True) and len(sizes) == len(FOUND) + 1


def test_fits_filter_hides_a_model_too_big_for_this_budget(qtbot, lib, tmp_path) -> None:
    window, _controller, ctl, _files = lib
    panel = window.library
    (tmp_path / "big").mkdir()
    big = write_llama_gguf(tmp_path / "big" / "seven-b-F16.gguf", SEVEN_B, header_only=True)
    with qtbot.waitSignal(ctl.scanned, timeout=60_000):
        ctl.add_folder(tmp_path / "big")
    qtbot.waitUntil(
        lambda: all(panel.model.fit_of(str(e.path)) for e in panel.model.entries()),
        timeout=60_000,
    )
    assert panel.model.fit_of(str(big.resolve())).verdict == "no_fit"
    row = panel.proxy.mapFromSource(panel.model.index(panel.model.row_of(str(big.resolve()))))
    assert "Too big at 4,096 ctx" in row.data()
    panel.fits_check.setChecked(True)
    names = [e.path for e in panel.visible_entries()]
    assert big.resolve() not in names
    assert len(names) == len(FOUND)  # every tiny model fits in 8 GiB
    panel.fits_check.setChecked(False)
    assert big.resolve() in [e.path for e in panel.visible_entries()]


def _answer_next_box(qtbot, button: QMessageBox.StandardButton, seen: list[str]) -> None:
    """Click ``button`` on the next message box (opened modally by the code under test)."""

    def click() -> None:
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox):
            QTimer.singleShot(20, click)
            return
        seen.append(box.text())
        box.button(button).click()

    QTimer.singleShot(0, click)


def test_delete_only_for_owned_files_and_really_removes(qtbot, lib, tmp_path) -> None:
    window, controller, ctl, files = lib
    source = write_tiny_model(tmp_path / "copy-me.gguf", name="copied-tiny", seed=21)
    with qtbot.waitSignal(window.library.model.modelReset, timeout=30_000):
        controller.imports.import_files([source], mode="copy")
    [owned] = [e for e in window.library.model.entries() if e.owned]
    assert owned.path.parent == controller.paths.models_dir and owned.path.is_file()
    [found] = [e for e in window.library.model.entries() if e.path == files["lms"]]
    assert "Delete file…" in [t for t, _ in window.library.menu_actions(owned)]
    assert "Delete file…" not in [t for t, _ in window.library.menu_actions(found)]

    ctl.delete(found)  # refused without asking: the file belongs to LM Studio
    assert files["lms"].is_file() and "only deletes files it copied" in window.banner.label.text()

    seen: list[str] = []
    _answer_next_box(qtbot, QMessageBox.StandardButton.Cancel, seen)
    ctl.delete(owned)
    assert owned.path.is_file() and "copied-tiny" in names_and_sources(window)
    assert "copy-me.gguf" in seen[0] and "KB" in seen[0]

    _answer_next_box(qtbot, QMessageBox.StandardButton.Yes, seen)
    with qtbot.waitSignal(ctl.deleted, timeout=10_000):
        ctl.delete(owned)
    assert not owned.path.exists()
    assert "copied-tiny" not in names_and_sources(window)
    assert source.is_file() and files["lms"].is_file()


def test_details_show_report_path_source_sha_and_estimate(qtbot, lib) -> None:
    window, _controller, ctl, files = lib
    [entry] = [e for e in window.library.model.entries() if e.path == files["ollama"]]
    with qtbot.waitSignal(ctl.detailsShown, timeout=30_000) as shown_dialog:
        window.library.detailsRequested.emit(entry)
    dialog = shown_dialog.args[0]
    text = dialog.details.as_text()
    assert "llama3.2:3b" in text and str(files["ollama"]) in text
    assert "Ollama (used in place" in text
    assert sha256(files["ollama"]) in text
    assert "These settings need about" in text
    assert "Architecture:     llama" in dialog.report.toPlainText()
    dialog.close()


def test_split_set_in_the_hf_cache_keeps_its_part_names(tmp_path: Path) -> None:
    """llama.cpp finds parts 2..n beside part 1 by name: the entry must not be a hash blob."""
    from quantdesk.engine.library.discovery import split_info, tool_roots
    from quantdesk.engine.library.store import ModelLibrary
    from quantdesk.engine.library.sync import sync_discovered

    home = tmp_path / "home"
    build_fake_home(home)
    db = tmp_path / "library.sqlite3"
    sync_discovered(
        db, tmp_path / "index.sqlite3", watched=[], hidden=set(),
        roots=tool_roots(home=home, env={}, system=False),
    )  # fmt: skip
    library = ModelLibrary(db)
    try:
        [big] = [e for e in library.entries() if "big-00001-of-00002" in str(e.path)]
        assert "snapshots" in big.path.parts and split_info(big.path) == ("big", 1, 2)
        assert (big.path.parent / "big-00002-of-00002.gguf").exists()
        assert library.find(big.path) == big
    finally:
        library.close()
    sync_discovered(  # a second scan finds the same entry, no duplicate, nothing removed
        db, tmp_path / "index.sqlite3", watched=[], hidden=set(),
        roots=tool_roots(home=home, env={}, system=False),
    )  # fmt: skip
    library = ModelLibrary(db)
    try:
        assert len([e for e in library.entries() if "big-0000" in str(e.path)]) == 1
    finally:
        library.close()
