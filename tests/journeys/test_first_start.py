"""A fresh install's first minutes: the starter models arrive, the instruct one is loaded, and
the first message gets an answer, not a continuation (issue 19, fault 3: the first model was a
base model, so "Write a haiku about the sea." got a seaweed article)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from quantdesk.engine.library.starter import (
    CHAT_STARTER_FILE_NAME,
    CHAT_STARTER_SHA256,
    STARTER_FILE_NAME,
)


@pytest.mark.starter
def test_a_fresh_install_chats_with_an_instruct_model(qtbot, data_dir: Path, monkeypatch):
    from quantdesk.gui import build_app

    monkeypatch.delenv("QUANTDESK_SKIP_STARTER")  # a real first start
    window, controller, paths = build_app(argparse.Namespace(data_dir=None, files=[]))
    qtbot.addWidget(window)
    window.show()
    try:
        with qtbot.waitSignal(controller.models.modelLoaded, timeout=120_000) as loaded:
            controller.start([])
        model = loaded.args[0]
        assert Path(model.path).name == CHAT_STARTER_FILE_NAME and model.mode == "chat"
        assert not window.chat.mode_notice.isVisible()  # no "this is a base model" notice
        names = sorted(e.path.name for e in window.library.model.entries())
        assert names == sorted([CHAT_STARTER_FILE_NAME, STARTER_FILE_NAME])
        shown = {window.library.model.display_name(r)
                 for r in range(window.library.model.rowCount())}  # fmt: skip
        assert shown == {"SmolLM2 135M Instruct", "Gemma 3 270m"}  # not its training run's tag
        assert window.chat.picker.currentText().startswith("SmolLM2 135M Instruct")
        from quantdesk.engine.file_hash import file_sha256

        assert file_sha256(paths.models_dir / CHAT_STARTER_FILE_NAME) == CHAT_STARTER_SHA256

        box = window.chat.input
        QTest.keyClicks(box, "Write a haiku about the sea.")
        with qtbot.waitSignal(controller.chat.replyFinished, timeout=120_000) as finished:
            QTest.keyClick(box, Qt.Key.Key_Return)
        reply = window.chat.transcript.messages()[-1]
        assert reply.role == "assistant" and reply.text.strip()
        assert finished.args[0].stop_reason == "eos"  # it answered and ended its turn
        assert "<|im_end|>" not in reply.text and "<|im_start|>" not in reply.text
        assert not reply.text.lstrip().lower().startswith(("write", "a haiku about"))
    finally:
        controller.shutdown()
