"""The Quantization lab page on a tiny generated F16 model: run, figures in the table and the
charts (Pareto front), a rerun measuring only the new type, export with PNG charts, keep one."""

from __future__ import annotations

import json
from pathlib import Path

from quantdesk.engine.lab.ladder import LadderSettings
from tests.support.tiny_models import write_tiny_model

FAST = LadderSettings(threads=1, n_ctx=64, max_chunks=1, n_prompt=32, n_gen=8)


def test_run_the_lab_export_and_keep(qtbot, app, tmp_path: Path, monkeypatch) -> None:
    import quantdesk.gui.lab_controller as lab_module

    monkeypatch.setattr(lab_module, "LadderSettings", lambda **_: FAST)  # quick measurements
    window, controller = app
    page, lab = window.lab_page, controller.lab
    source = write_tiny_model(tmp_path / "tiny-F16.gguf", n_embd=256, n_ff=512, quant="F16")
    controller.imports.import_files([source], mode="reference")
    qtbot.waitUntil(lambda: page.source.count() == 1, timeout=30_000)
    for qtype, box in page.type_boxes.items():
        box.setChecked(qtype == "Q8_0")
    page.run.click()
    qtbot.waitUntil(lambda: page.table.rowCount() == 2, timeout=120_000)
    assert [page.table.item(r, 0).text() for r in range(2)] == ["F16 (source)", "Q8_0"]
    assert page.verdict.text() and not page.cancel.isEnabled()
    assert "The lab finished tiny-F16.gguf" in window.banner.label.text()
    fits = [page.table.item(r, 9).text() for r in range(2)]
    assert fits == ["Fits in RAM", "Fits in RAM"]  # the estimator, against this machine
    assert {p.label for p in page.quality_chart.points} == {"F16", "Q8_0"}
    assert any(p.on_front for p in page.quality_chart.points)
    page.type_boxes["Q4_0"].setChecked(True)
    page.run.click()
    qtbot.waitUntil(lambda: page.table.rowCount() == 3, timeout=120_000)
    assert lab.result.measured == ["Q4_0"]  # F16 and Q8_0 from the lab's cache

    own = tmp_path / "mine.txt"
    own.write_text("Mon texte à moi, en français, pour mesurer la qualité. " * 120, "utf-8")
    lab.use_text(own)  # another text: measured again, the bundled sample's results stay
    assert page.text_button.text() == "Text: mine.txt"
    page.run.click()
    qtbot.waitUntil(lambda: lab.result.measured == ["F16", "Q4_0", "Q8_0"], timeout=120_000)
    lab.use_text(None)
    page.run.click()
    qtbot.waitUntil(lambda: lab.result.measured == [] and not page.cancel.isEnabled(),
                    timeout=120_000)  # fmt: skip

    report = lab.export(tmp_path / "report")
    assert "![Quality kept vs size](quality-vs-size.png)" in report.read_text()
    assert (tmp_path / "report" / "quality-vs-size.png").stat().st_size > 1000
    assert [r["qtype"] for r in json.loads((tmp_path / "report" / "ladder.json").read_text())[
        "rungs"]] == ["F16", "Q4_0", "Q8_0"]  # fmt: skip (the order of the type list)

    page.table.selectRow(next(r for r in range(3) if page.table.item(r, 0).text() == "Q8_0"))
    page.keep.click()
    kept = lab.work_dir(source) / "tiny-F16-Q8_0.gguf"
    assert kept.is_file() and not (lab.work_dir(source) / "tiny-F16-Q4_0.gguf").exists()
    assert window.library.model.row_of(str(kept)) >= 0
    page.delete_files.click()  # the lab's files go, the one kept in the library stays
    assert kept.is_file() and sorted(p.name for p in lab.work_dir(source).iterdir()) == [
        kept.name]  # fmt: skip

    # Q4_0's file is gone (deleted above): keeping it quantizes it again first
    page.table.selectRow(next(r for r in range(3) if page.table.item(r, 0).text() == "Q4_0"))
    assert page.keep.isEnabled()
    page.keep.click()
    again = lab.work_dir(source) / "tiny-F16-Q4_0.gguf"
    qtbot.waitUntil(lambda: window.library.model.row_of(str(again)) >= 0, timeout=60_000)
    assert again.is_file() and kept.is_file()  # Q8_0 was kept before: the library's, it stays


def test_the_lab_page_while_it_works(qtbot, app, tmp_path: Path, monkeypatch) -> None:
    import quantdesk.gui.lab_controller as lab_module

    monkeypatch.setattr(lab_module, "LadderSettings", lambda **_: FAST)
    window, controller = app
    page, lab = window.lab_page, controller.lab
    first = write_tiny_model(tmp_path / "a" / "tiny-F16.gguf", n_embd=256, n_ff=512, quant="F16")
    other = write_tiny_model(tmp_path / "b" / "tiny-F16.gguf", n_embd=128, n_ff=256, quant="F16")
    controller.imports.import_files([first, other], mode="reference")
    qtbot.waitUntil(lambda: page.source.count() == 2, timeout=30_000)
    page.source.setCurrentIndex(page.source.findData(str(first)))
    for qtype, box in page.type_boxes.items():
        box.setChecked(qtype in ("Q8_0", "Q4_0"))
    page.run.click()
    # while it works only Cancel is live, even when the library changes meanwhile
    lab._sources_changed()
    assert page.cancel.isEnabled() and not page.run.isEnabled() and not page.source.isEnabled()
    assert not page.keep.isEnabled() and not page.delete_files.isEnabled()
    qtbot.waitUntil(lambda: page.run.isEnabled(), timeout=120_000)
    assert page.verdict.text().startswith("tiny-F16.gguf: ")
    page.type_boxes["Q4_0"].setChecked(False)
    page.run.click()  # results for F16 and Q8_0 only; Q4_0's file is still the lab's
    qtbot.waitUntil(lambda: page.run.isEnabled() and page.table.rowCount() == 2, timeout=60_000)
    assert sorted(p.name for p in lab.work_dir(first).iterdir()) == [
        "tiny-F16-Q4_0.gguf", "tiny-F16-Q8_0.gguf"]  # fmt: skip
    page.delete_files.click()  # every file the lab made from this source goes
    assert list(lab.work_dir(first).iterdir()) == [] and not page.delete_files.isEnabled()

    # another model with the same file name has a folder of its own
    page.source.setCurrentIndex(page.source.findData(str(other)))
    page.run.click()
    qtbot.waitUntil(lambda: page.run.isEnabled(), timeout=120_000)
    assert lab.result.source == other and lab.result.measured == ["F16", "Q8_0"]
    assert lab.work_dir(other) != lab.work_dir(first)

    # Cancel while Keep quantizes again: nothing reaches the library, no file is left
    page.delete_files.click()
    page.table.selectRow(1)
    page.keep.click()
    assert page.cancel.isEnabled()
    page.cancel.click()
    qtbot.waitUntil(lambda: page.run.isEnabled(), timeout=60_000)
    assert "nothing was added to the library" in page.status.text()
    assert list(lab.work_dir(other).iterdir()) == []
    assert window.library.model.row_of(str(lab.work_dir(other) / "tiny-F16-Q8_0.gguf")) < 0

    # cancelled mid-run: the types finished before are shown
    page.type_boxes["Q4_0"].setChecked(True)
    page.run.click()
    qtbot.waitUntil(lambda: page.status.text().startswith("Q4_0"), timeout=60_000)
    page.cancel.click()
    qtbot.waitUntil(lambda: page.run.isEnabled(), timeout=60_000)
    assert [page.table.item(r, 0).text() for r in range(page.table.rowCount())] == [
        "F16 (source)", "Q8_0"]  # fmt: skip
    assert page.status.text() == "Cancelled: the types measured so far are kept."

    # a report folder that cannot be written: a message, the app goes on
    monkeypatch.setattr(lab_module.QFileDialog, "getExistingDirectory", lambda *_: "/proc/1")
    lab.export_dialog()
    assert "cannot be written to /proc/1/tiny-F16-ladder" in window.banner.label.text()

    # cancelling the text dialog keeps the text chosen before
    own = tmp_path / "mine.txt"
    own.write_text("Some text of my own. " * 400, "utf-8")
    lab.use_text(own)
    monkeypatch.setattr(lab_module.QFileDialog, "getOpenFileName", lambda *_: ("", ""))
    lab.text_dialog()
    assert page.text_button.text() == "Text: mine.txt"

    # choosing another source clears the figures of the one shown
    page.source.setCurrentIndex(page.source.findData(str(first)))
    assert page.table.rowCount() == 0 and page.verdict.text() == "" and lab.result is None
    assert not page.export.isEnabled() and not page.delete_files.isEnabled()
    assert page.source.currentText().startswith("tiny-F16.gguf · ")
