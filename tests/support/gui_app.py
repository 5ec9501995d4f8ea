"""The app as a test drives it: the real window and controller (``app``), and a drop of files on
the window through its own Qt event handlers (``drop``)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent


@pytest.fixture
def app(qtbot, data_dir: Path):
    from quantdesk.gui import build_app

    window, controller, _paths = build_app(argparse.Namespace(data_dir=None, files=[]))
    controller.settings.set("import.mode", "reference")
    controller.settings.set("load.n_ctx", 512)
    controller.settings.set("load.n_threads", 1)
    qtbot.addWidget(window)
    window.show()
    controller.start([])
    yield window, controller
    controller.shutdown()


def drop(window, paths: list[Path]) -> None:
    """Drag files over the window and drop them (the window's own Qt event handlers)."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    args = (
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    enter = QDragEnterEvent(QPoint(50, 50), *args)
    window.dragEnterEvent(enter)
    assert enter.isAccepted()
    window.dropEvent(QDropEvent(QPointF(50, 50), *args))
