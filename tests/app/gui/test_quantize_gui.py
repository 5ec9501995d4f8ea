"""The Quantize dialog end to end (pytest-qt): library entry -> dialog -> new model in library."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from PySide6.QtWidgets import QPushButton

from tests.support.tiny_models import write_tiny_model


@pytest.fixture
def app(qtbot, data_dir: Path):
    from quantdesk.gui import build_app

    window, controller, _ = build_app(argparse.Namespace(data_dir=None, files=[]))
    qtbot.addWidget(window)
    window.show()
    yield window, controller
    controller.shutdown()


def test_quantize_from_library_entry_lands_in_library(qtbot, app, tmp_path: Path) -> None:
    window, controller = app
    source = write_tiny_model(tmp_path / "tiny-F16.gguf", n_embd=256, n_ff=512, quant="F16")
    with qtbot.waitSignal(window.library.model.modelReset, timeout=30_000):
        controller.imports.import_files([source], mode="reference")
    [entry] = window.library.model.entries()
    assert entry.is_unquantized
    assert "Quantize…" in [b.text() for b in window.banner.findChildren(QPushButton)]
    quantizer = controller.quantize
    with qtbot.waitSignal(quantizer.predictionShown, timeout=60_000) as shown:
        window.library.quantizeRequested.emit(entry)
    dialog = quantizer.dialog
    assert "Predicted size" in shown.args[0] and "Tensor types" in shown.args[0]
    assert dialog.target() == "Q4_K_M"
    assert dialog.output_path() == tmp_path / "tiny-Q4_K_M.gguf"
    with qtbot.waitSignal(quantizer.predictionShown, timeout=60_000) as shown:
        dialog.type_combo.setCurrentIndex(dialog.type_combo.findData("Q8_0"))
    assert dialog.output_path() == tmp_path / "tiny-Q8_0.gguf"
    assert dialog.start_button.isEnabled()
    with qtbot.waitSignal(quantizer.modelQuantized, timeout=120_000) as done:
        dialog.start_button.click()
    new = done.args[0]
    assert new.path == (tmp_path / "tiny-Q8_0.gguf").resolve() and new.file_type == "Q8_0"
    qtbot.waitUntil(lambda: dialog.load_button.isVisible(), timeout=10_000)
    text = dialog.result_label.text()
    assert "tiny-Q8_0.gguf" in text and "Perplexity" in text and "Added to the library" in text
    assert any(e.path == new.path for e in window.library.model.entries())


def test_imatrix_type_without_imatrix_cannot_start(qtbot, app, tmp_path: Path) -> None:
    window, controller = app
    source = write_tiny_model(tmp_path / "tiny-F16.gguf", n_embd=256, n_ff=512, quant="F16")
    quantizer = controller.quantize
    with qtbot.waitSignal(quantizer.predictionShown, timeout=60_000):
        quantizer.open(source)
    dialog = quantizer.dialog
    with qtbot.waitSignal(quantizer.predictionShown, timeout=60_000) as shown:
        dialog.type_combo.setCurrentIndex(dialog.type_combo.findData("IQ2_XXS"))
    assert "needs an importance matrix" in shown.args[0]
    assert "importance matrix" in dialog.type_help.text()
    assert not dialog.start_button.isEnabled()
    assert not (tmp_path / "tiny-IQ2_XXS.gguf").exists()


def test_cancel_from_the_dialog_leaves_nothing(qtbot, app, tmp_path: Path) -> None:
    window, controller = app
    models = tmp_path / "models"
    models.mkdir()
    source = write_tiny_model(
        models / "big-F16.gguf", n_embd=512, n_ff=1536, n_layer=6, quant="F16"
    )
    quantizer = controller.quantize
    with qtbot.waitSignal(quantizer.predictionShown, timeout=60_000):
        quantizer.open(source)
    dialog = quantizer.dialog
    dialog.quality_check.setChecked(False)
    dialog.type_combo.setCurrentIndex(dialog.type_combo.findData("IQ4_XS"))
    qtbot.waitUntil(lambda: dialog.start_button.isEnabled(), timeout=60_000)
    with qtbot.waitSignal(quantizer.runFailed, timeout=60_000) as failed:
        dialog.start_button.click()
        qtbot.waitUntil(lambda: dialog.progress.value() > 0, timeout=60_000)
        dialog.cancel_button.click()
    assert "cancelled" in failed.args[0].lower()
    assert "Cancelled" in dialog.result_label.text()
    assert sorted(p.name for p in models.iterdir()) == ["big-F16.gguf"]


def test_dropping_a_non_model_folder_explains(qtbot, app, tmp_path: Path) -> None:
    window, controller = app
    folder = tmp_path / "my-hf-model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"\0" * 16)
    controller.imports.import_files([folder], mode="reference")
    dialog = controller.quantize.dialog
    assert dialog is not None and "Hugging Face model folder" in dialog.source_label.text()
    qtbot.waitUntil(lambda: "F16 conversion" in dialog.prediction_label.text()
                    or "convert" in dialog.prediction_label.text(), timeout=60_000)


def test_compute_imatrix_in_the_dialog_unlocks_iq2(qtbot, app, tmp_path: Path) -> None:
    window, controller = app
    models = tmp_path / "models"
    models.mkdir()
    source = write_tiny_model(models / "tiny-F16.gguf", n_embd=256, n_ff=512, quant="F16")
    quantizer = controller.quantize
    with qtbot.waitSignal(quantizer.predictionShown, timeout=60_000):
        quantizer.open(source)
    dialog = quantizer.dialog
    dialog.quality_check.setChecked(False)
    with qtbot.waitSignal(quantizer.predictionShown, timeout=60_000) as shown:
        dialog.type_combo.setCurrentIndex(dialog.type_combo.findData("IQ2_XXS"))
    assert "needs an importance matrix" in shown.args[0]
    with qtbot.waitSignal(quantizer.imatrixComputed, timeout=60_000) as computed:
        dialog.imatrixRequested.emit(None)  # "From the bundled English sample"
    assert computed.args[0] == str(models / "tiny-F16.imatrix.gguf")
    assert "Importance matrix: 14 weights" in dialog.result_label.text()
    with qtbot.waitSignal(quantizer.predictionShown, timeout=60_000) as shown:
        pass
    assert "needs an importance matrix" not in shown.args[0]
    with qtbot.waitSignal(quantizer.modelQuantized, timeout=120_000) as done:
        dialog.start_button.click()
    assert done.args[0].file_type == "IQ2_XXS"
