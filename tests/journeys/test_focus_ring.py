"""Issue 19, fault 9: wherever Tab goes, a person sees it (a focus ring where the style draws
none: item views, read-only text, charts, flat and default buttons)."""

from __future__ import annotations

from PySide6.QtCore import QRect, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

PAGES = ("Chat", "Discover", "Downloads", "Hardware", "Server", "Lab")


def _around(window, widget) -> QRect:  # noqa: ANN001
    """The widget's rectangle in window coordinates, with the 3 px a ring takes around it."""
    return QRect(widget.mapTo(window, widget.rect().topLeft()), widget.size()).adjusted(
        -3, -3, 3, 3)  # fmt: skip


def test_every_widget_tab_reaches_looks_focused(qtbot, window_app) -> None:
    window, _controller = window_app
    unseen: list[str] = []
    reached = 0
    for page in PAGES:
        window.menu_actions[page].trigger()
        QTest.qWait(30)
        start = QApplication.focusWidget()
        for _ in range(40):
            widget = QApplication.focusWidget()
            assert widget is not None and widget.window() is window
            QTest.qWait(5)
            focused = window.grab(_around(window, widget)).toImage()
            QTest.keyClick(widget, Qt.Key.Key_Tab)
            QTest.qWait(5)
            if QApplication.focusWidget() is widget:
                continue  # Tab stayed (a text box that takes Tab is a fault of its own)
            reached += 1
            after = window.grab(_around(window, widget)).toImage()
            if focused == after:
                unseen.append(f"{page}: {type(widget).__name__} {widget.accessibleName()!r}")
            if QApplication.focusWidget() is start:
                break
    assert reached > 40
    assert not sorted(set(unseen)), sorted(set(unseen))
