"""The main window itself: its layout kept between runs, the memory line in the status bar,
Help → About, the log folder, and coming to the front when a later launch hands files over."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QByteArray, QObject, Qt, QTimer, QUrl
from PySide6.QtGui import QDesktopServices

from quantdesk.config.settings import Settings
from quantdesk.engine.gguf.model_info import human_bytes
from quantdesk.engine.hardware.machine import memory_snapshot
from quantdesk.ui.main_window import MainWindow

NARROW_WINDOW = 1100  # below this width a first start opens without the settings panel


class WindowController(QObject):
    """Restores and saves the window's layout; shows the app's memory every two seconds."""

    def __init__(self, window: MainWindow, settings: Settings, log_dir: Path) -> None:
        super().__init__()
        self.window, self.settings = window, settings
        self.about = None  # the About dialog while open
        window.aboutRequested.connect(self.open_about)
        window.logFolderRequested.connect(
            lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(str(log_dir))))
        self._memory_timer = QTimer(self)
        self._memory_timer.timeout.connect(self._show_memory)
        self._memory_timer.start(2000)
        self._show_memory()
        self._restore()

    def raise_window(self) -> None:
        """Bring the window to the front (out of the task bar when minimized)."""
        w = self.window
        w.setWindowState(w.windowState() & ~Qt.WindowState.WindowMinimized)
        w.raise_()
        w.activateWindow()

    def open_about(self) -> None:
        """Show the About dialog (llama.cpp's build is probed first: a fraction of a second)."""
        from quantdesk import __version__
        from quantdesk.engine.diagnostics.about import (
            components,
            environment_line,
            llama_build_lines,
        )
        from quantdesk.ui.about_dialog import AboutDialog

        parts = [(c.name, c.version, c.licence, c.role) for c in components()]
        dialog = AboutDialog(__version__, environment_line(), llama_build_lines(), parts,
                             self.window)  # fmt: skip
        dialog.finished.connect(dialog.deleteLater)
        dialog.open()
        self.about = dialog

    def shutdown(self) -> None:
        """Save the window's layout (once: a second close has nothing new) and stop the timer."""
        if self._memory_timer.isActive():
            self._save()
        self._memory_timer.stop()

    def _restore(self) -> None:
        w = self.window
        for name, restore in (
            ("window.geometry", w.restoreGeometry),
            ("window.state", w.restoreState),
            ("window.splitter", w.splitter.restoreState),
        ):
            stored = self.settings.get(name)
            if stored:
                restore(QByteArray.fromBase64(stored.encode("ascii")))
        w.fit_to_screen()  # a layout saved on a bigger screen still fits this one
        panel = self.settings.get("window.settings_panel")
        if panel == "hidden" or (not panel and w.width() < NARROW_WINDOW):
            w.settings_panel.hide()  # the chat keeps its room; View → Settings panel shows it
            w.fit_to_screen()

    def _save(self) -> None:
        w = self.window
        for name, state in (
            ("window.geometry", w.saveGeometry()),
            ("window.state", w.saveState()),
            ("window.splitter", w.splitter.saveState()),
        ):
            self.settings.set(name, bytes(state.toBase64().data()).decode("ascii"))
        shown = w.settings_panel.isVisibleTo(w)
        self.settings.set("window.settings_panel", "shown" if shown else "hidden")

    def _show_memory(self) -> None:
        snap = memory_snapshot()
        self.window.ram_label.setText(
            f"RAM: app {human_bytes(snap.process_rss)} · {human_bytes(snap.available)} free"
            f" of {human_bytes(snap.total)}"
        )
