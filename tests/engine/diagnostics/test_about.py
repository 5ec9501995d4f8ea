"""About QuantDesk: version, the llama.cpp build and the licences of its components."""

from __future__ import annotations

import argparse
import re

from quantdesk import __version__
from quantdesk.engine.diagnostics.about import components, llama_build_lines


def test_components_and_build_come_from_this_installation() -> None:
    found = {c.name: c for c in components()}
    assert found["llama.cpp / llama-cpp-python"].licence == "MIT"
    assert "LGPL" in found["Qt / PySide6"].licence
    assert found["huggingface_hub"].licence.startswith("Apache")
    lines = llama_build_lines()
    # llama.cpp's own build beside llama-cpp-python's version (issue 19, fault 10)
    assert re.fullmatch(r"Built from: ggml [\d.]+, llama\.cpp commit [0-9a-f]{7,}(-dirty)?",
                        lines[0]), lines[0]  # fmt: skip
    assert lines[1].startswith("Backends: ") and "CPU" in lines[1]


def test_f1_opens_the_dialog_with_copyable_facts(qtbot, data_dir) -> None:
    from quantdesk.gui import build_app

    window, controller, _ = build_app(argparse.Namespace(data_dir=None, files=[]))
    qtbot.addWidget(window)
    window.show()
    try:
        window.aboutRequested.emit()  # F1 or the rail's About button
        dialog = controller.window_ctl.about
        qtbot.waitUntil(dialog.isVisible)
        text = dialog.plain_text()
        assert f"QuantDesk {__version__}" in text and "Backends:" in text and "MIT" in text
        assert "Gemma Terms of Use" in dialog.text.toPlainText()
        dialog.reject()
    finally:
        controller.shutdown()
