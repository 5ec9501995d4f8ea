"""A lab run on a tiny model as a person does it: the Lab page from the View menu, the source
picked, one type ticked by clicks, Run, the figures in the table and the verdict. Real
llama.cpp, real quantizing and measuring, nothing patched (the default settings)."""

from __future__ import annotations

from pathlib import Path

from tests.support.dialogs import click
from tests.support.journey_actions import add_in_place
from tests.support.tiny_models import write_tiny_model


def test_a_lab_run_on_a_tiny_model(qtbot, window_app, tmp_path: Path) -> None:
    window, controller = window_app
    source = write_tiny_model(tmp_path / "m" / "tiny-F16.gguf", n_embd=256, n_ff=512,
                              quant="F16")  # fmt: skip
    add_in_place(qtbot, window, source)
    window.menu_actions["Lab"].trigger()  # View → Lab
    page = window.lab_page
    qtbot.waitUntil(lambda: page.source.count() == 1, timeout=30_000)
    assert page.source.currentData() == str(source.resolve())
    for qtype, box in page.type_boxes.items():
        if box.isChecked() != (qtype == "Q8_0"):
            click(box)
    assert [q for q, b in page.type_boxes.items() if b.isChecked()] == ["Q8_0"]
    click(page.run)
    assert page.cancel.isEnabled() and not page.run.isEnabled()  # only Cancel while it works
    qtbot.waitUntil(lambda: page.table.rowCount() == 2 and not page.cancel.isEnabled(),
                    timeout=280_000)  # fmt: skip
    assert [page.table.item(r, 0).text() for r in range(2)] == ["F16 (source)", "Q8_0"]
    assert page.verdict.text() and "tiny-F16.gguf" in window.banner.label.text()
    assert (tmp_path / "m").exists() and source.is_file()  # the source is never touched
