"""Add model…: the file dialog, then the question how to add it, answered by clicks.

Fault 1 of issue 19: the "Remember my choice" box had no Python owner, so the app died
(SIGSEGV) on every answer to the question.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtWidgets import QApplication, QCheckBox, QFileDialog, QMessageBox

from tests.support.dialogs import button, choose_files, click, when_dialog
from tests.support.tiny_models import write_tiny_model


def _add_model_button(window):
    return button(window.library, "Add model…")


@pytest.mark.parametrize(
    ("answer", "owned", "source_stays"),
    [("Use in place", False, True), ("Copy", True, True), ("Move", True, False)],
)
def test_add_model_in_each_mode(qtbot, window_app, tmp_path: Path, answer, owned, source_stays):
    window, controller = window_app
    source = write_tiny_model(tmp_path / "mine" / "my-tiny.gguf", name="my-tiny")
    seen_box: dict = {}

    def pick_mode(box: QMessageBox) -> None:
        check = box.checkBox()
        seen_box["check"] = (check.text(), check.isVisible(), check.isChecked())
        click(button(box, answer))

    files = when_dialog(QFileDialog, choose_files([source]))
    mode = when_dialog(QMessageBox, pick_mode)
    click(_add_model_button(window))
    files.check()
    mode.check()
    assert mode.title == "Add models" and "copy or move" in mode.text
    assert seen_box["check"] == ("Remember my choice", True, False)
    qtbot.waitUntil(lambda: window.library.model.rowCount() == 1, timeout=15_000)
    [entry] = window.library.model.entries()
    assert entry.name == "my-tiny" and entry.owned is owned
    if owned:
        assert entry.path.parent == controller.paths.models_dir.resolve()
    else:
        assert entry.path == source.resolve()
    assert source.exists() is source_stays and entry.path.is_file()
    assert "Added to the library: my-tiny" in window.banner.label.text()
    assert controller.settings.get("import.mode") == "ask"  # not remembered: asked again
    stored = [e.path for e in controller.library.entries()]
    assert stored == [entry.path]


def test_remember_my_choice_is_kept_and_not_asked_again(qtbot, window_app, tmp_path: Path):
    window, controller = window_app
    first = write_tiny_model(tmp_path / "a" / "first.gguf", name="first")
    second = write_tiny_model(tmp_path / "b" / "second.gguf", name="second", seed=2)

    def remember_copy(box: QMessageBox) -> None:
        click(box.findChild(QCheckBox))
        click(button(box, "Copy"))

    files = when_dialog(QFileDialog, choose_files([first]))
    mode = when_dialog(QMessageBox, remember_copy)
    click(_add_model_button(window))
    files.check()
    mode.check()
    qtbot.waitUntil(lambda: window.library.model.rowCount() == 1, timeout=15_000)
    assert controller.settings.get("import.mode") == "copy"

    files = when_dialog(QFileDialog, choose_files([second]))
    click(_add_model_button(window))
    files.check()
    qtbot.waitUntil(lambda: window.library.model.rowCount() == 2, timeout=15_000)
    assert all(e.owned for e in window.library.model.entries())  # copied without asking
    assert QApplication.activeModalWidget() is None


def test_cancel_adds_nothing(qtbot, window_app, tmp_path: Path):
    window, controller = window_app
    source = write_tiny_model(tmp_path / "c" / "cancelled.gguf")
    files = when_dialog(QFileDialog, choose_files([source]))
    mode = when_dialog(QMessageBox, lambda box: click(button(box, "Cancel")))
    click(_add_model_button(window))
    files.check()
    mode.check()
    qtbot.wait(200)
    assert window.library.model.rowCount() == 0 and controller.library.entries() == []
    assert source.is_file()

