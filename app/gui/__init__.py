"""GUI entry point: ``quantdesk [FILE.gguf ...] [--data-dir DIR]``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from quantdesk import __version__
from quantdesk.config.paths import resolve_paths
from quantdesk.config.settings import SETTINGS, Settings
from quantdesk.gui.crash_handler import install_hooks, setup_logging


def _parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="quantdesk",
        description="QuantDesk: chat with quantized language models on this computer. "
        "Sub-commands: inspect, run (see 'quantdesk inspect --help').",
    )
    parser.add_argument("files", nargs="*", type=Path, help=".gguf files to open")
    parser.add_argument("--data-dir", help="keep all data, settings and models under this folder")
    parser.add_argument("--version", action="version", version=f"QuantDesk {__version__}")
    parser.add_argument("--self-test", action="store_true",
                        help="check the installation headless on a tiny bundled model, then exit")
    return parser.parse_args(list(argv))


def build_app(args: argparse.Namespace):  # noqa: ANN201 - returns (window, controller, paths)
    """Create the window, its pages and their controllers (the QApplication must exist)."""
    from quantdesk.engine.lab.ladder import DEFAULT_TYPES
    from quantdesk.gui.controller import AppController
    from quantdesk.ui.cluster_page import ClusterPage
    from quantdesk.ui.discover.page import DiscoverPage
    from quantdesk.ui.downloads_page import DownloadsPage
    from quantdesk.ui.focus_ring import FocusRing
    from quantdesk.ui.hardware_panel import HardwarePanel
    from quantdesk.ui.lab.page import LabPage
    from quantdesk.ui.main_window import MainWindow
    from quantdesk.ui.server_page import ServerPage

    paths = resolve_paths(args.data_dir).ensure()
    settings = Settings(paths.settings_file)
    window = MainWindow(SETTINGS.values(), title=f"QuantDesk {__version__}")
    window.focus_ring = FocusRing(window)  # every window and dialog of the app
    window.discover_page = DiscoverPage()
    window.add_page("Discover", window.discover_page)
    window.downloads_page = DownloadsPage()
    downloads_index = window.add_page("Downloads", window.downloads_page)
    window.hardware_panel = HardwarePanel()
    window.add_page("Hardware", window.hardware_panel)
    window.server_page = ServerPage()
    window.add_page("Server", window.server_page)
    window.cluster_page = ClusterPage()
    window.add_page("Cluster", window.cluster_page)
    window.lab_page = LabPage(list(DEFAULT_TYPES))
    window.add_page("Lab", window.lab_page)
    controller = AppController(paths, settings, window, downloads_index)
    return window, controller, paths


def _notifier_class():  # noqa: ANN202 - defined lazily so the CLI never imports Qt
    from PySide6.QtCore import QObject, Signal

    class Notifier(QObject):
        error = Signal(str, str)

    return Notifier


def run_gui(argv: Sequence[str]) -> int:
    """Start the desktop app; returns the exit status."""
    args = _parse(argv)
    if args.self_test:
        from quantdesk.gui.self_test import run_self_test

        return run_self_test()
    from PySide6.QtCore import QTimer
    from PySide6.QtGui import QIcon
    from PySide6.QtWidgets import QApplication

    app = QApplication(sys.argv[:1])
    from quantdesk.gui.single_instance import InstanceServer, hand_over

    data_dir = resolve_paths(args.data_dir).data_dir
    if hand_over(data_dir, args.files):  # QuantDesk already runs here: it opens the files
        return 0
    _Notifier = _notifier_class()  # noqa: N806
    app.setApplicationName("QuantDesk")
    app.setApplicationVersion(__version__)
    from quantdesk.engine.resources import resource

    icon = resource("icon.svg")
    if icon.exists():
        app.setWindowIcon(QIcon(str(icon)))
    window, controller, paths = build_app(args)
    from quantdesk.gui.theme import apply_theme

    apply_theme(app, controller.settings.get("appearance.theme"))
    if warnings := controller.settings.warnings:
        window.show_error(
            " ".join(w.message for w in warnings), "\n\n".join(w.details for w in warnings)
        )
    setup_logging(paths.log_file)
    notifier = _Notifier()
    notifier.error.connect(window.show_error)  # queued: hooks may fire on any thread
    install_hooks(notifier.error.emit, paths.log_file)
    window.show()
    window.fit_to_screen()  # after show: the frame (title bar) is known then
    window.chat.input.setFocus()
    server = InstanceServer(data_dir, controller.open_files)  # later launches hand over here
    window.closing.connect(server.close)
    QTimer.singleShot(0, lambda: controller.start([f.resolve() for f in args.files]))
    return app.exec()
