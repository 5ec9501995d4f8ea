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

from tests.journeys.actions import add_in_place, right_click
from tests.journeys.dialogs import choose_menu_item, click


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
