"""What a person does in the main window, as the window system delivers it: drops, clicks,
double-clicks, right clicks, typing and shortcuts. Read back with :func:`shown`."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QContextMenuEvent, QDragEnterEvent, QDropEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from tests.support.tiny_models import write_tiny_chat_model


def drop_files(window, paths: list[Path]) -> None:
    """Drag files over the window and let go (the window's own drag-and-drop handlers)."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    args = (Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
            Qt.KeyboardModifier.NoModifier)  # fmt: skip
    enter = QDragEnterEvent(QPoint(60, 60), *args)
    window.dragEnterEvent(enter)
    assert enter.isAccepted()
    window.dropEvent(QDropEvent(QPointF(60, 60), *args))


def add_in_place(qtbot, window, path: Path) -> None:
    """Drop ``path`` on the window and answer "Use in place"; wait for it in the library."""
    from PySide6.QtWidgets import QMessageBox

    from tests.support.dialogs import button, click, when_dialog

    rows = window.library.model.rowCount()
    mode = when_dialog(QMessageBox, lambda box: click(button(box, "Use in place")))
    drop_files(window, [path])
    mode.check()
    qtbot.waitUntil(lambda: window.library.model.rowCount() == rows + 1, timeout=15_000)


def shortcut(window, widget, key: Qt.Key) -> None:
    """Ctrl+``key`` typed in ``widget``; the window is made active first, as it is for a
    person typing in it (offscreen, a closed dialog does not give activation back)."""
    if not window.isActiveWindow():
        window.activateWindow()
        assert QTest.qWaitForWindowActive(window)
    QTest.keyClick(widget, key, Qt.KeyboardModifier.ControlModifier)


def right_click(widget, pos: QPoint) -> None:
    """A right click, as the window system delivers it: the press, then the menu event."""
    QTest.mousePress(widget, Qt.MouseButton.RightButton, pos=pos)
    event = QContextMenuEvent(QContextMenuEvent.Reason.Mouse, pos, widget.mapToGlobal(pos))
    QApplication.sendEvent(widget, event)
    QTest.mouseRelease(widget, Qt.MouseButton.RightButton, pos=pos)


def load_by_double_click(qtbot, window, controller, name: str) -> None:
    view = window.library.view
    row = next(r for r in range(view.model().rowCount())
               if name in view.model().index(r, 0).data())  # fmt: skip
    rect = view.visualRect(view.model().index(row, 0))
    with qtbot.waitSignals([controller.models.modelLoaded], timeout=60_000,
                           raising=False) as loaded:  # fmt: skip
        # the first click of a double-click selects (QTest's double-click alone has no press
        # the view saw, so it would not count)
        QTest.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
        QTest.mouseDClick(view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert loaded.signal_triggered, window.banner.label.text()


def type_and_send(qtbot, window, controller, text: str) -> None:
    box = window.chat.input
    box.setFocus()
    QTest.keyClicks(box, text)
    with qtbot.waitSignal(controller.chat.replyFinished, timeout=60_000):
        QTest.keyClick(box, Qt.Key.Key_Return)


def shown(window) -> list[tuple[str, str, tuple[int, int]]]:
    """What the transcript shows: (role, text, (version, versions)) without notices."""
    t = window.chat.transcript
    return [(m.role, m.text, (m.version, m.versions)) for m in t.messages() if m.role != "notice"]


def row_of(window, role: str, nth: int = 0) -> int:
    rows = [i for i, m in enumerate(window.chat.transcript.messages()) if m.role == role]
    return rows[nth]


def load_tiny_chat_model(qtbot, window, controller, folder: Path) -> None:
    """Add the tiny ChatML model (a 65,536-token context) in place, as a person would, set
    replies to 12 tokens and load it by double-click."""
    model = write_tiny_chat_model(folder / "chatty.gguf", name="chatty", n_ctx_train=65536)
    add_in_place(qtbot, window, model)
    window.settings_panel.editor("sampling.max_tokens").setValue(12)
    window.settings_panel.editor("load.n_ctx").setValue(65536)
    load_by_double_click(qtbot, window, controller, "chatty")
