"""Quantize… from the library's menu on an already quantized model (issue 19, fault 8: the
dialog said "allow requantizing under Advanced options" with that box already ticked, offered
the model's own type (100 % of the source) and let Quantize run; with Advanced options open its
buttons fell below the screen)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QToolButton

from tests.support.dialogs import choose_menu_item, click
from tests.support.journey_actions import add_in_place, right_click


@pytest.mark.starter
def test_a_quantized_source_gets_a_smaller_type_and_the_dialog_fits_the_screen(
    qtbot, window_app, starter_model: Path
) -> None:
    window, controller = window_app
    add_in_place(qtbot, window, starter_model)  # Gemma 3 270M, Q4_K_M
    view = window.library.view
    at = view.visualRect(view.model().index(0, 0)).center()
    quantizer = controller.quantize
    menu = choose_menu_item("Quantize…")
    with qtbot.waitSignal(quantizer.predictionShown, timeout=60_000) as shown:
        right_click(view.viewport(), at)
    menu.check()
    dialog = quantizer.dialog
    assert dialog.target() == "Q4_K_S" and "Predicted size" in shown.args[0]  # not Q4_K_M again
    assert dialog.requantize.isChecked()
    warning = dialog.warning_label.text()
    assert "already quantized (Q4_K_M)" in warning and "Requantizing is allowed" in warning
    assert "allow requantizing under" not in warning

    # the model's own type again: refused, with the reason
    combo = dialog.type_combo
    combo.setFocus()
    with qtbot.waitSignal(quantizer.predictionShown, timeout=60_000) as shown:
        while combo.currentData() != "Q4_K_M":
            QTest.keyClick(combo, Qt.Key.Key_Up if combo.currentIndex() > combo.findData("Q4_K_M")
                           else Qt.Key.Key_Down)  # fmt: skip
    assert "already Q4_K_M" in dialog.prediction_label.text()
    assert not dialog.start_button.isEnabled()

    # Advanced options open: the buttons stay on the screen, the options scroll
    toggle = next(b for b in dialog.findChildren(QToolButton) if b.text() == "Advanced options")
    click(toggle)
    qtbot.wait(200)
    area = dialog.screen().availableGeometry()
    assert area.contains(dialog.frameGeometry()), (dialog.frameGeometry(), area)
    for button in (dialog.start_button, dialog.close_button):
        corner = button.mapToGlobal(button.rect().bottomRight())
        assert button.isVisible() and area.contains(corner), (corner, area)
    click(dialog.close_button)


@pytest.mark.starter
def test_the_quality_check_shows_time_left_and_can_be_skipped_keeping_the_file(
    qtbot, window_app, starter_model: Path, tmp_path: Path
) -> None:
    """Issue 19, fault 8: minutes of "2 of 7" after a 4-second quantize, no way out but
    losing the file. (The starter: a tiny model's check ends before anyone could click.)"""
    import shutil

    window, controller = window_app
    source = tmp_path / "src" / starter_model.name
    source.parent.mkdir()
    shutil.copyfile(starter_model, source)  # the output goes beside it
    add_in_place(qtbot, window, source)
    quantizer = controller.quantize
    view = window.library.view
    menu = choose_menu_item("Quantize…")
    with qtbot.waitSignal(quantizer.predictionShown, timeout=60_000):
        right_click(view.viewport(), view.visualRect(view.model().index(0, 0)).center())
    menu.check()
    dialog = quantizer.dialog
    assert dialog.quality_check.isChecked()
    click(dialog.start_button)
    qtbot.waitUntil(lambda: dialog.skip_quality_button.isVisible()
                    and "left" in dialog.status_label.text(), timeout=120_000)  # fmt: skip
    assert "Skip keeps it" in dialog.status_label.text()
    with qtbot.waitSignal(quantizer.modelQuantized, timeout=120_000) as made:
        click(dialog.skip_quality_button)
    output = made.args[0].path
    qtbot.waitUntil(lambda: "Added" in dialog.result_label.text(), timeout=30_000)
    assert "Quality check skipped" in dialog.result_label.text(), dialog.result_label.text()
    assert output.is_file() and "Added to the library" in dialog.result_label.text()
    assert output in [e.path for e in window.library.model.entries()]
    assert not dialog.skip_quality_button.isVisible()
    click(dialog.close_button)
