"""A visible focus ring for the widgets whose own style shows none when they have focus.

Fusion marks a focused line edit, combo box, spin box, check box or ordinary button itself, but
not an item view without a current row, a read-only text view, a chart, a scroll area, a flat
button or the default button (always highlighted). For those, :class:`FocusRing` draws a 2 px
ring in the palette's highlight colour just outside the widget, on top of its window, and
follows it as it moves, resizes, hides or loses focus. Keyboard users always see where Tab went.
"""

from __future__ import annotations

import shiboken6
from PySide6.QtCore import QEvent, QObject, QPoint, QRect, Qt
from PySide6.QtGui import QPainter, QPaintEvent, QPalette, QPen, QRegion
from PySide6.QtWidgets import (
    QAbstractItemView,
    QAbstractScrollArea,
    QApplication,
    QPlainTextEdit,
    QPushButton,
    QTextEdit,
    QWidget,
)

RING_WIDTH = 2


def shows_no_focus_of_its_own(widget: QWidget) -> bool:
    """Whether Fusion draws nothing that tells ``widget`` has keyboard focus."""
    if isinstance(widget, QPushButton):
        return widget.isFlat() or widget.isDefault()
    if isinstance(widget, (QTextEdit, QPlainTextEdit)):
        return widget.isReadOnly()  # an editable one shows its blinking cursor
    return isinstance(widget, (QAbstractItemView, QAbstractScrollArea))


class _Ring(QWidget):
    """The ring itself: a see-through child of the window, on top, ignoring the mouse."""

    def __init__(self, window: QWidget) -> None:
        super().__init__(window)
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.setAttribute(Qt.WidgetAttribute.WA_NoSystemBackground)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.hide()

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt API
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        pen = QPen(self.palette().color(QPalette.ColorRole.Highlight))
        pen.setWidth(RING_WIDTH)
        painter.setPen(pen)
        half = RING_WIDTH / 2
        painter.drawRoundedRect(self.rect().toRectF().adjusted(half, half, -half, -half), 3, 3)


class FocusRing(QObject):
    """Shows the ring around the focused widget when that widget shows none itself."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._target: QWidget | None = None
        self._shown: _Ring | None = None  # the ring drawn now
        self._rings: dict[int, _Ring] = {}  # window's C++ address -> its ring
        app = QApplication.instance()
        assert isinstance(app, QApplication)
        app.focusChanged.connect(self._focus_changed)

    def target(self) -> QWidget | None:
        """The widget the ring is drawn around now, or None."""
        return self._target

    def _ring_for(self, window: QWidget) -> _Ring:
        # by the window's C++ address, never findChild(): that wraps every child of the window,
        # and a child Qt is still building or tearing down aborts the process (std::bad_typeid)
        key = shiboken6.getCppPointer(window)[0]
        ring = self._rings.get(key)
        if ring is None or not shiboken6.isValid(ring):
            ring = _Ring(window)  # owned by its window: gone with it
            self._rings[key] = ring
            ring.destroyed.connect(lambda _obj=None, key=key: self._rings.pop(key, None))
        return ring

    def _focus_changed(self, _old: QWidget | None, new: QWidget | None) -> None:
        target, self._target = self._target, None
        if target is not None and shiboken6.isValid(target):
            target.removeEventFilter(self)
            ring = self._shown
            if ring is not None and shiboken6.isValid(ring):
                ring.hide()
        self._shown = None
        if new is None or not shows_no_focus_of_its_own(new):
            return
        self._target = new
        new.installEventFilter(self)
        self._place()

    def _place(self) -> None:
        target = self._target
        if target is None or not shiboken6.isValid(target):
            return
        window = target.window()
        ring = self._ring_for(window)
        self._shown = ring
        if not target.isVisible():
            ring.hide()
            return
        top_left = target.mapTo(window, QPoint(0, 0))
        grow = RING_WIDTH + 1
        ring.setGeometry(QRect(top_left, target.size()).adjusted(-grow, -grow, grow, grow))
        # see-through in the middle: only the ring's band takes paint
        inner = ring.rect().adjusted(RING_WIDTH, RING_WIDTH, -RING_WIDTH, -RING_WIDTH)
        ring.setMask(QRegion(ring.rect()).subtracted(QRegion(inner)))
        ring.raise_()
        ring.show()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt API
        if watched is self._target and event.type() in (
            QEvent.Type.Move, QEvent.Type.Resize, QEvent.Type.Show, QEvent.Type.Hide
        ):  # fmt: skip
            self._place()
        return False
