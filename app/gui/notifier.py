"""What every page's controller may tell the person: a banner, the status bar, a page brought
forward, and the window that parents its dialogs. Nothing else of the window is reachable."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PySide6.QtWidgets import QWidget

from quantdesk.engine.errors import QuantDeskError
from quantdesk.ui.main_window import MainWindow

#: A button in the banner: its text and what a click does.
Action = tuple[str, Callable[[], object]]

#: The index of the Chat page in the window's rail.
CHAT_PAGE = 0


class Notifier:
    """The window's messages, narrowed to what controllers need (GUI thread only)."""

    def __init__(self, window: MainWindow) -> None:
        self._window = window

    @property
    def dialog_parent(self) -> QWidget:
        """The widget a controller's dialogs open over."""
        return self._window

    def error(self, message: str, details: str = "", actions: Sequence[Action] = ()) -> None:
        """An error in the banner (the window stays usable)."""
        self._window.show_error(message, details, actions)

    def info(self, message: str, actions: Sequence[Action] = ()) -> None:
        """A neutral message in the banner."""
        self._window.show_info(message, actions)

    def job_failed(self, exc: BaseException) -> None:
        """A background job failed: its message in the banner (details for the unexpected)."""
        self.clear_status()
        if isinstance(exc, QuantDeskError):
            self.error(exc.message, exc.details)
        else:
            self.error("Something unexpected went wrong.", f"{type(exc).__name__}: {exc}")

    def status(self, text: str, timeout_ms: int = 0) -> None:
        """A passing line in the status bar (gone after ``timeout_ms``, 0: until cleared)."""
        self._window.statusBar().showMessage(text, timeout_ms)

    def clear_status(self) -> None:
        """Clear the status bar's passing line."""
        self._window.statusBar().clearMessage()

    def show_page(self, index: int) -> None:
        """Bring the page at ``index`` of the rail forward (:data:`CHAT_PAGE`: the chat)."""
        self._window.show_page(index)
