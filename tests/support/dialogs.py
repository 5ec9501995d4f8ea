"""Answering the app's real modal dialogs the way a person does: find the dialog that is open
(``QApplication.activeModalWidget()``, polled from a single-shot timer while the code under test
sits in ``exec()``) and click its buttons with ``QTest``. Nothing is patched."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from PySide6.QtCore import QPoint, Qt, QTimer
from PySide6.QtTest import QTest
from PySide6.QtWidgets import (
    QAbstractButton,
    QApplication,
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QLabel,
    QLineEdit,
    QMenu,
    QMessageBox,
    QWidget,
)

D = TypeVar("D", bound=QDialog)


class Answered:
    """What happened to a dialog the test expected: its title and text, and any failure."""

    def __init__(self) -> None:
        self.done = False
        self.title = ""
        self.text = ""
        self.error: BaseException | None = None

    def wait(self, qtbot, timeout_ms: int = 20_000) -> None:  # noqa: ANN001
        """For a dialog opened without blocking (``open()``): wait until it was answered."""
        qtbot.waitUntil(lambda: self.done, timeout=timeout_ms)
        self.check()

    def check(self) -> None:
        """Fail the test if the dialog never came or answering it raised."""
        if self.error is not None:
            raise self.error
        assert self.done, "the expected dialog never opened"


def _when_open(find: Callable[[], QWidget | None], answer: Callable[[QWidget], None],
               close: Callable[[QWidget], None], timeout_s: float) -> Answered:  # fmt: skip
    """Poll from the event loop until ``find()`` gives a widget, then ``answer`` it once (an
    exception is kept for :meth:`Answered.check` and the widget is closed with ``close``)."""
    seen = Answered()
    deadline = time.monotonic() + timeout_s

    def poll() -> None:
        found = find()
        if found is None:
            if time.monotonic() < deadline:
                QTimer.singleShot(20, poll)
            return
        try:
            answer(found)
        except BaseException as exc:  # noqa: BLE001 - reported by check() in the test
            seen.error = exc
            close(found)
        seen.done = True

    QTimer.singleShot(0, poll)
    return seen


def when_dialog(kind: type[D], answer: Callable[[D], None], timeout_s: float = 20.0) -> Answered:
    """Run ``answer(dialog)`` on the next modal ``kind`` dialog as soon as it is open."""

    def find() -> QWidget | None:
        dialog = QApplication.activeModalWidget()
        return dialog if isinstance(dialog, kind) and dialog.isVisible() else None

    def take(dialog: D) -> None:
        QTest.qWait(50)  # let the dialog finish opening (a file dialog reads its folder)
        seen.title = dialog.windowTitle()
        seen.text = dialog.text() if isinstance(dialog, QMessageBox) else ""
        answer(dialog)

    seen = _when_open(find, take, lambda d: d.reject(), timeout_s)
    return seen


def click(widget: QWidget) -> None:
    """A left click where a person aims: the middle of a button, the box of a check box (a
    check box's middle can lie beyond its label, where a click does nothing)."""
    assert widget.isVisible() and widget.isEnabled(), f"{widget!r} cannot be clicked"
    if isinstance(widget, QCheckBox):
        QTest.mouseClick(widget, Qt.MouseButton.LeftButton, pos=QPoint(8, widget.height() // 2))
    else:
        QTest.mouseClick(widget, Qt.MouseButton.LeftButton)


def button(dialog: QWidget, text: str) -> QAbstractButton:
    """The visible button of ``dialog`` whose label is ``text`` (mnemonic '&' ignored)."""
    found = [b for b in dialog.findChildren(QAbstractButton)
             if b.text().replace("&", "") == text and b.isVisible()]  # fmt: skip
    labels = [b.text() for b in dialog.findChildren(QAbstractButton)]
    assert found, f"no button '{text}' in {labels}"
    return found[0]


def choose_files(paths: list[Path]) -> Callable[[QFileDialog], None]:
    """An answer for a file dialog: type the folder and Enter, then the file names and Enter
    (all ``paths`` are in one folder)."""
    folder = paths[0].parent
    assert all(p.parent == folder for p in paths), "one folder at a time"

    def answer(dialog: QFileDialog) -> None:
        edit = dialog.findChild(QLineEdit, "fileNameEdit")
        assert edit is not None, "not Qt's own file dialog"
        names = " ".join(f'"{p.name}"' for p in paths) if len(paths) > 1 else paths[0].name
        for text in (str(folder), names):
            for _ in range(100):  # the completer's list may take the first Enter: again
                if dialog.directory().absolutePath() == str(folder) and text != names:
                    break
                if edit.text() != text:
                    edit.clear()
                    QTest.keyClicks(edit, text)
                popup = QApplication.activePopupWidget()  # the completer's list: close it
                if popup is not None:
                    QTest.keyClick(popup, Qt.Key.Key_Escape)
                QTest.keyClick(edit, Qt.Key.Key_Return)
                QTest.qWait(20)
                if not dialog.isVisible():
                    return
                if text != names and dialog.directory().absolutePath() == str(folder):
                    break
        raise AssertionError(f"the file dialog did not take {names} in {folder}")

    return answer


def click_link(view, row: int, href: str) -> None:  # noqa: ANN001 - ChatView
    """Click the action link ``href`` ("action:edit"…) under message ``row`` of a chat view."""
    index = view.model().index(row, 0)
    view.scrollTo(index)
    QTest.qWait(30)  # the view measures rows from its event loop
    view.viewport().grab()  # paint, so the row's links are laid out
    rect = view.link_rect(row, href)
    assert rect is not None, f"message {row} offers no {href}: {view.delegate().actions(index)}"
    if not view.viewport().rect().contains(rect.center()):  # a long message: its links are
        view.scrollTo(index, view.ScrollHint.PositionAtBottom)  # at its end
        QTest.qWait(30)
        view.viewport().grab()
        rect = view.link_rect(row, href)
    assert view.viewport().rect().contains(rect.center()), f"{href} of row {row} is off screen"
    QTest.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def click_label_link(label: QLabel) -> None:
    """Click the first link of a rich-text label where the pointer turns into a hand."""
    assert label.isVisible(), f"{label.text()!r} is not shown"
    QTest.qWait(30)  # the layout gives a changed label its new height from the event loop
    for y in range(1, label.height(), 3):
        for x in range(1, label.width(), 4):
            QTest.mouseMove(label, pos=QPoint(x, y))
            if label.cursor().shape() == Qt.CursorShape.PointingHandCursor:
                QTest.mouseClick(label, Qt.MouseButton.LeftButton, pos=QPoint(x + 4, y))
                return
    raise AssertionError(f"no link to click in {label.text()!r}")


def choose_menu_item(text: str, timeout_s: float = 10.0) -> Answered:
    """Pick the item ``text`` of the next popup menu (a context menu), by keyboard."""

    def find() -> QWidget | None:
        menu = QApplication.activePopupWidget()
        return menu if isinstance(menu, QMenu) else None

    def pick(menu: QMenu) -> None:
        seen.text = ", ".join(a.text() for a in menu.actions())
        action = next((a for a in menu.actions() if a.text() == text), None)
        assert action is not None, f"no '{text}' in the menu: {seen.text}"
        menu.setActiveAction(action)
        QTest.keyClick(menu, Qt.Key.Key_Return)

    seen = _when_open(find, pick, lambda m: m.close(), timeout_s)
    return seen


def choose_folder(folder: Path) -> Callable[[QFileDialog], None]:
    """An answer for a folder dialog: type the folder's path and click its accept button."""

    def answer(dialog: QFileDialog) -> None:
        edit = dialog.findChild(QLineEdit, "fileNameEdit")
        assert edit is not None, "not Qt's own file dialog"
        accept = dialog.findChild(QDialogButtonBox, "buttonBox").buttons()[0]
        for _ in range(100):  # as choose_files: the completer's list may take a click
            if edit.text() != str(folder):
                edit.clear()
                QTest.keyClicks(edit, str(folder))
            popup = QApplication.activePopupWidget()
            if popup is not None:
                QTest.keyClick(popup, Qt.Key.Key_Escape)
            click(accept)
            QTest.qWait(20)
            if not dialog.isVisible():
                return
        raise AssertionError(f"the folder dialog did not take {folder}")

    return answer
