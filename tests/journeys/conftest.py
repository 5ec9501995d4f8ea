"""Journeys: the real main window, real dialogs answered by clicks (see dialogs.py)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest


@pytest.fixture
def window_app(qtbot, data_dir: Path):
    """The whole app as ``quantdesk`` builds it, shown, started, with nothing preset."""
    from quantdesk.gui import build_app

    window, controller, _paths = build_app(argparse.Namespace(data_dir=None, files=[]))
    qtbot.addWidget(window)
    with qtbot.waitActive(window):  # shortcuts (Ctrl+N…) go to the active window
        window.show()
        window.fit_to_screen()  # as quantdesk's main does after showing the window
        window.activateWindow()
    controller.start([])
    yield window, controller
    controller.shutdown()
