"""The chat transcript: a virtualized list view whose delegate paints each message as rich text.

Only rows near the viewport ever get a laid-out QTextDocument; every other row answers
``sizeHint`` from a cheap estimate. When a row near the viewport is measured and its real height
differs, the view re-lays out and keeps the first visible message where it was on screen (or
stays at the bottom while following a streaming reply), so long chats scroll smoothly and a new
token re-lays out only the message it belongs to.
"""

from __future__ import annotations

from PySide6.QtCore import (
    QModelIndex,
    QPersistentModelIndex,
    QPoint,
    QRect,
    Qt,
    QTimer,
    QUrl,
    Signal,
)
from PySide6.QtGui import (
    QContextMenuEvent,
    QDesktopServices,
    QGuiApplication,
    QKeyEvent,
    QKeySequence,
    QMouseEvent,
)
from PySide6.QtWidgets import QAbstractItemView, QListView, QMenu, QWidget

from quantdesk.ui.chat._delegate import ChatDelegate
from quantdesk.ui.chat._markdown_render import code_blocks
from quantdesk.ui.chat.transcript_model import ChatListModel

__all__ = ["ChatDelegate", "ChatView"]

_Index = QModelIndex | QPersistentModelIndex
_FAR_DIRTY_ROWS = 8  # changed rows away from the viewport measured per pass (newest first)
_PREFETCH_ROWS = 6  # rows measured beyond each edge of the viewport, so none changes on screen
_NAV_KEYS = {
    Qt.Key.Key_Up, Qt.Key.Key_Down, Qt.Key.Key_PageUp, Qt.Key.Key_PageDown,
    Qt.Key.Key_Home, Qt.Key.Key_End,
}  # fmt: skip


class ChatView(QListView):
    """Shows a :class:`ChatListModel`; emits what the user asks of a message.

    Copying is done here (the copy signals are informational); regenerating and editing are up to
    whoever owns the conversation.
    """

    copyRequested = Signal(int)  # row
    copyCodeRequested = Signal(int, int)  # row, code block index
    regenerateRequested = Signal(int)  # row
    editRequested = Signal(int)  # row
    continueRequested = Signal(int)  # row: the reply there should carry on
    versionRequested = Signal(int, int)  # row, -1 for the previous version or +1 for the next
    linkActivated = Signal(str)  # an http(s)/mailto link in a message, opened by default

    def __init__(self, model: ChatListModel | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAccessibleName("Chat messages")
        self.setAccessibleDescription(
            "The conversation. Ctrl+C copies the selected message; the menu key shows its actions."
        )
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setUniformItemSizes(False)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setFrameShape(QListView.Shape.NoFrame)
        # Qt's auto-scroll jumps to a clicked message's top; following the reply is ours to do.
        self.setAutoScroll(False)
        self.setMouseTracking(True)
        self.verticalScrollBar().setSingleStep(24)

        self._delegate = ChatDelegate(self)
        self.setItemDelegate(self._delegate)
        self._delegate.linkActivated.connect(self._activate_link)
        self._follow = True
        self._streaming: set[int] = set()
        self._dirty: set[int] = set()  # changed rows to re-measure even when off screen
        self._measure_timer = QTimer(self, singleShot=True, interval=0)
        self._measure_timer.timeout.connect(self._measure)
        self._blink = QTimer(self, interval=400)
        self._blink.timeout.connect(self._tick)
        bar = self.verticalScrollBar()
        bar.valueChanged.connect(self._on_scrolled)
        bar.rangeChanged.connect(self._on_range_changed)
        self.setModel(model if model is not None else ChatListModel(self))

    # -- public -----------------------------------------------------------------------------------

    def delegate(self) -> ChatDelegate:
        """The delegate painting the messages (exposes hit testing and cache statistics)."""
        return self._delegate

    def is_following(self) -> bool:
        """True while the view sticks to the bottom as new text arrives."""
        return self._follow

    def link_rect(self, row: int, href: str) -> QRect | None:
        """Where the link ``href`` of message ``row`` is, in viewport coordinates, or None."""
        index = self.model().index(row, 0)
        rect = self._delegate.link_rect(self.visualRect(index), index, href)
        return rect.toAlignedRect() if rect is not None else None

    def copy_message(self, row: int) -> None:
        """Put the text of message ``row`` on the clipboard."""
        QGuiApplication.clipboard().setText(self.model().index(row, 0).data(ChatListModel.TextRole))
        self.copyRequested.emit(row)

    def copy_thinking(self, row: int) -> None:
        """Put the thinking of message ``row`` on the clipboard."""
        thinking, _open, _seconds = self.model().index(row, 0).data(ChatListModel.ThinkingRole)
        QGuiApplication.clipboard().setText(thinking.strip())

    def copy_code(self, row: int, block: int) -> None:
        """Put code block ``block`` of message ``row`` on the clipboard."""
        blocks = code_blocks(self.model().index(row, 0).data(ChatListModel.TextRole))
        if 0 <= block < len(blocks):
            QGuiApplication.clipboard().setText(blocks[block])
            self.copyCodeRequested.emit(row, block)

    # -- model notifications ---------------------------------------------------------------------

    def setModel(self, model: ChatListModel | None) -> None:  # noqa: N802 (Qt override)
        """Show ``model``; caches start over."""
        super().setModel(model)
        self._delegate.invalidate()
        self._follow = True
        self._track_streaming(0, (model.rowCount() if model else 0) - 1, reset=True)
        self._schedule_measure()

    def reset(self) -> None:
        """The model was reset: forget everything cached."""
        super().reset()
        self._delegate.invalidate()
        self._dirty.clear()
        self._follow = True
        model = self.model()
        self._track_streaming(0, (model.rowCount() if model else 0) - 1, reset=True)
        self._schedule_measure()

    def rowsInserted(self, parent: _Index, start: int, end: int) -> None:  # noqa: N802
        """Messages were added; rows at and after ``start`` moved unless they were appended."""
        super().rowsInserted(parent, start, end)
        self._delegate.invalidate(from_row=start)
        self._track_streaming(start, end)
        self._schedule_measure()

    def rowsAboutToBeRemoved(self, parent: _Index, start: int, end: int) -> None:  # noqa: N802
        """Messages are going; everything from ``start`` on is stale."""
        self._delegate.invalidate(from_row=start)
        self._dirty = {r for r in self._dirty if r < start}
        self._streaming = {r if r < start else r - (end - start + 1)
                           for r in self._streaming if not start <= r <= end}  # fmt: skip
        self._update_blink()
        super().rowsAboutToBeRemoved(parent, start, end)
        self._schedule_measure()

    def dataChanged(  # noqa: N802 (Qt override)
        self, top_left: _Index, bottom_right: _Index, roles: list[int] | None = None
    ) -> None:
        """A message changed (streamed text, stats): re-measure it if it is near the viewport.

        QListView's own handler is skipped on purpose: it lays out every row again on each
        change (asking the delegate for all 2,000 sizes of a long chat, for every streamed
        chunk: it cost a third of the generation speed). Heights are handled here instead:
        a row whose measured height changed triggers one re-layout (:meth:`_measure`).
        """
        QAbstractItemView.dataChanged(self, top_left, bottom_right, roles or [])
        self._track_streaming(top_left.row(), bottom_right.row())
        if bottom_right.row() - top_left.row() < 50:
            self._dirty.update(range(top_left.row(), bottom_right.row() + 1))
        self._schedule_measure()

    # -- measuring and following -----------------------------------------------------------------

    def _schedule_measure(self) -> None:
        self._measure_timer.start()

    def _visible_rows(self) -> tuple[int, int]:
        count = self.model().rowCount() if self.model() else 0
        vp = self.viewport().rect()
        top = self.indexAt(QPoint(vp.center().x(), 0))
        bottom = self.indexAt(QPoint(vp.center().x(), vp.height() - 1))
        first = top.row() if top.isValid() else 0
        last = bottom.row() if bottom.isValid() else count - 1
        return first, min(last, first + 200)  # never measure a whole chat at once

    def _measure(self) -> None:
        """Measure rows near the viewport; if a real height differs from the estimate, re-lay out
        while keeping the first visible message in place (or the bottom in view when following)."""
        model = self.model()
        if model is None or model.rowCount() == 0 or not self.isVisible():
            return
        self.executeDelayedItemsLayout()
        first, last = self._visible_rows()
        lo = max(0, first - _PREFETCH_ROWS)
        hi = min(model.rowCount() - 1, last + _PREFETCH_ROWS)
        self._delegate.reserve(hi - lo + 1)
        # changed rows are measured when near the view; of the others only the last few (a reply
        # streaming below the reader): opening a chat of thousands of messages must not lay out
        # every one of them at once - the rest keep their estimate until they scroll near
        dirty = sorted(r for r in self._dirty if r < model.rowCount())
        far = [r for r in dirty if not lo <= r <= hi][-_FAR_DIRTY_ROWS:]
        rows = set(range(lo, hi + 1)) | set(far)
        self._dirty.clear()
        changed = [r for r in sorted(rows) if self._delegate.measure(model.index(r, 0))]
        if not changed:
            return
        anchor = model.index(first, 0)
        old_top = self.visualRect(anchor).top()
        self.scheduleDelayedItemsLayout()
        self.executeDelayedItemsLayout()
        bar = self.verticalScrollBar()
        if self._follow:
            bar.setValue(bar.maximum())
        else:
            bar.setValue(bar.value() + self.visualRect(anchor).top() - old_top)
        self.viewport().update()

    def _on_scrolled(self, value: int) -> None:
        self._follow = value >= self.verticalScrollBar().maximum() - 2
        self._schedule_measure()

    def _on_range_changed(self, _minimum: int, maximum: int) -> None:
        if self._follow:
            self.verticalScrollBar().setValue(maximum)

    def resizeEvent(self, event) -> None:  # noqa: N802, ANN001 (Qt override)
        """Widths changed: cached layouts are stale; follow the bottom if we were."""
        follow = self._follow
        super().resizeEvent(event)
        self._follow = follow
        self._schedule_measure()

    def showEvent(self, event) -> None:  # noqa: N802, ANN001 (Qt override)
        """Measure what became visible."""
        super().showEvent(event)
        self._schedule_measure()

    def changeEvent(self, event) -> None:  # noqa: N802, ANN001 (Qt override)
        """Palette or font changed: re-render every message."""
        super().changeEvent(event)
        if event.type() in (event.Type.PaletteChange, event.Type.FontChange):
            self._delegate.invalidate(sizes=event.type() == event.Type.FontChange)
            self.scheduleDelayedItemsLayout()
            self._schedule_measure()

    # -- streaming indicator ---------------------------------------------------------------------

    def _track_streaming(self, start: int, end: int, reset: bool = False) -> None:
        if reset:
            self._streaming.clear()
        model = self.model()
        for row in range(max(start, 0), end + 1):
            if model.index(row, 0).data(ChatListModel.StreamingRole):
                self._streaming.add(row)
            else:
                self._streaming.discard(row)
        self._update_blink()

    def _update_blink(self) -> None:
        if self._streaming and not self._blink.isActive():
            self._blink.start()
        elif not self._streaming:
            self._blink.stop()

    def _tick(self) -> None:
        self._delegate.streaming_phase += 1
        for row in self._streaming:
            self.viewport().update(self.visualRect(self.model().index(row, 0)))

    # -- input ------------------------------------------------------------------------------------

    def _activate_link(self, row: int, href: str) -> None:
        if href == "action:copy":
            self.copy_message(row)
        elif href == "action:regenerate":
            self.regenerateRequested.emit(row)
        elif href == "action:edit":
            self.editRequested.emit(row)
        elif href == "action:continue":
            self.continueRequested.emit(row)
        elif href in ("action:older", "action:newer"):
            self.versionRequested.emit(row, -1 if href == "action:older" else 1)
        elif href == "action:thinking":
            self.model().toggle_thinking(row)
        elif href == "action:copy-thinking":
            self.copy_thinking(row)
        elif href.startswith("copy-code:") and href[10:].isdigit():
            self.copy_code(row, int(href[10:]))
        elif QUrl(href).scheme() in ("http", "https", "mailto"):
            self.linkActivated.emit(href)
            QDesktopServices.openUrl(QUrl(href))

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt override)
        """Show a pointing hand over links."""
        super().mouseMoveEvent(event)
        pos = event.position().toPoint()
        index = self.indexAt(pos)
        on_link = index.isValid() and bool(
            self._delegate.href_at(self.visualRect(index), index, pos)
        )
        if on_link:
            self.viewport().setCursor(Qt.CursorShape.PointingHandCursor)
        else:
            self.viewport().unsetCursor()

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 (Qt override)
        """Ctrl+C copies the selected message; arrow keys bring the selected one into view."""
        current = self.currentIndex()
        if event.matches(QKeySequence.StandardKey.Copy) and current.isValid():
            self.copy_message(current.row())
            event.accept()
            return
        super().keyPressEvent(event)
        if event.key() in _NAV_KEYS and self.currentIndex().isValid():
            self.scrollTo(self.currentIndex())

    def contextMenuEvent(self, event: QContextMenuEvent) -> None:  # noqa: N802 (Qt override)
        """The message's actions as a menu, so that they are reachable from the keyboard."""
        index = self.indexAt(event.pos())
        if event.reason() == QContextMenuEvent.Reason.Keyboard or not index.isValid():
            index = self.currentIndex()
        if not index.isValid():
            return
        menu = QMenu(self)
        menu.setAccessibleName("Message actions")
        row = index.row()
        words = {"action:older": "Previous version", "action:newer": "Next version"}
        for href, label in self._delegate.actions(index):
            if href:  # "2/3" and a greyed arrow are no actions
                menu.addAction(words.get(href, label), lambda h=href: self._activate_link(row, h))
        for block in range(len(code_blocks(index.data(ChatListModel.TextRole)))):
            menu.addAction(f"Copy code block {block + 1}", lambda b=block: self.copy_code(row, b))
        pos = event.globalPos()
        if event.reason() == QContextMenuEvent.Reason.Keyboard:
            pos = self.viewport().mapToGlobal(self.visualRect(index).topLeft())
        menu.exec(pos)
