"""The library tells the truth (issue 19, fault 7): a broken file in a watched folder is named
with the reason instead of skipped silently; a file QuantDesk made by quantizing can be
deleted from the library; a downloaded file's checked sha256 shows in Details."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QMessageBox

from tests.support.dialogs import button, choose_folder, choose_menu_item, click, when_dialog
from tests.support.journey_actions import right_click
from tests.support.tiny_models import write_tiny_model


def test_add_folder_names_a_broken_file_and_why(qtbot, window_app, tmp_path: Path) -> None:
    window, controller = window_app
    folder = tmp_path / "my-models"
    write_tiny_model(folder / "good.gguf", name="good-one")
    (folder / "broken.gguf").write_bytes(b"GGUF\x03\x00\x00\x00" + b"\x00" * 7)
    picked = when_dialog(QFileDialog, choose_folder(folder))
    click(window.library.folder_button)
    picked.check()
    qtbot.waitUntil(lambda: window.library.model.rowCount() == 1, timeout=20_000)
    qtbot.waitUntil(lambda: "broken.gguf" in window.banner.label.text(), timeout=20_000)
    text = window.banner.label.text()
    assert "not a usable model" in text and "broken.gguf:" in text
    assert [e.name for e in window.library.model.entries()] == ["good-one"]


def test_a_quantized_file_can_be_deleted_from_the_library(qtbot, window_app, tmp_path: Path):
    window, controller = window_app
    source = write_tiny_model(tmp_path / "src" / "tiny-F16.gguf", n_embd=256, n_ff=512,
                              quant="F16")  # fmt: skip
    controller.imports.import_files([source], mode="reference")
    qtbot.waitUntil(lambda: window.library.model.rowCount() == 1, timeout=15_000)
    quantizer = controller.quantize
    with qtbot.waitSignal(quantizer.predictionShown, timeout=60_000):
        window.library.quantizeRequested.emit(window.library.model.entries()[0])
    dialog = quantizer.dialog
    dialog.quality_check.setChecked(False)
    with qtbot.waitSignal(quantizer.modelQuantized, timeout=120_000) as made:
        click(dialog.start_button)
    output = made.args[0].path
    click(dialog.close_button)
    view = window.library.view
    row = window.library.proxy.mapFromSource(
        window.library.model.index(window.library.model.row_of(str(output)), 0))
    menu = choose_menu_item("Delete file…")
    sure = when_dialog(QMessageBox, lambda box: click(button(box, "Yes")))
    with qtbot.waitSignal(controller.library.deleted, timeout=15_000):
        right_click(view.viewport(), view.visualRect(row).center())
    menu.check()
    sure.check()
    assert not output.exists() and source.is_file()
    assert [e.path for e in window.library.model.entries()] == [source.resolve()]
