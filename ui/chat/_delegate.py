"""Paints one chat message (role label, Markdown body, footer of action links) and hit-tests it.

Laid-out QTextDocuments are kept for a bounded number of rows (those near the viewport);
``sizeHint`` of any other row is a cheap estimate from the text's length, so showing or resizing a
2 000-message chat lays out only the messages that are on screen.
"""

from __future__ import annotations

import html
from collections import OrderedDict
from dataclasses import dataclass

from PySide6.QtCore import (
    QEvent,
    QModelIndex,
    QPersistentModelIndex,
    QPoint,
    QPointF,
    QRect,
    QRectF,
    QSize,
    Qt,
    Signal,
)
from PySide6.QtGui import (
    QAbstractTextDocumentLayout,
    QColor,
    QFont,
    QFontDatabase,
    QFontMetrics,
    QHelpEvent,
    QPainter,
    QPalette,
    QTextCursor,
    QTextDocument,
    QTextOption,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QToolTip,
)

from quantdesk.ui.chat._markdown_render import render_markdown, theme
from quantdesk.ui.chat.transcript_model import ChatListModel

__all__ = ["ChatDelegate"]

_Index = QModelIndex | QPersistentModelIndex
M_X, M_Y = 16, 8  # outer margins of a message
GAP = 4  # between label, body and footer
PAD_X, PAD_Y = 12, 8  # inside a bubble
# A reply being streamed grows its row this many lines at a time: each change of a row's height
# re-lays out the whole list (every row's size), so a growing reply reserves room ahead.
STREAM_RESERVE_LINES = 4
USER_SHARE = 0.8  # a user bubble is at most this share of the width
_LABELS = {"user": "You", "assistant": "Assistant", "system": "System prompt", "notice": ""}
_TIPS = {
    "action:copy": "Copy this message",
    "action:regenerate": "Generate this reply again",
    "action:edit": "Edit this message and send it again (the original stays as a version)",
    "action:older": "Show the previous version of this message",
    "action:newer": "Show the next version of this message",
}
_RED = QColor("#d93025")


@dataclass
class _Entry:
    """Laid-out documents of one row."""

    body_key: tuple[int, bool]
    body: QTextDocument
    width: int = -1
    footer_key: tuple[int, bool, bool] | None = None
    footer: QTextDocument | None = None


@dataclass
class _Geometry:
    """Where the parts of a message go, relative to the item's top-left corner."""

    height: int
    label: QRect | None
    bubble: QRectF | None
    body: QPointF
    footer: QPointF


@dataclass
class _Metrics:
    body: QFont
    label: QFont
    small: QFont
    mono: str
    line_h: int
    label_h: int
    small_h: int
    char_w: int


def _blend(a: QColor, b: QColor, t: float) -> QColor:
    return QColor.fromRgbF(
        *(x + (y - x) * t for x, y in zip(a.getRgbF(), b.getRgbF(), strict=True))
    )


def _scaled(font: QFont, factor: float, bold: bool = False) -> QFont:
    out = QFont(font)
    if font.pointSizeF() > 0:
        out.setPointSizeF(font.pointSizeF() * factor)
    else:
        out.setPixelSize(max(6, round(font.pixelSize() * factor)))
    out.setBold(bold)
    return out


def _anchor_rect(doc: QTextDocument, href: str) -> QRectF | None:
    """The rectangle (document coordinates) of the first fragment linking to ``href``."""
    block = doc.begin()
    while block.isValid():
        for it in block:
            frag = it.fragment()
            if not frag.isValid() or frag.charFormat().anchorHref() != href:
                continue
            layout = block.layout()
            rel = frag.position() - block.position()
            line = layout.lineForTextPosition(rel)
            x1 = line.cursorToX(rel)[0]
            x2 = line.cursorToX(min(rel + frag.length(), line.textStart() + line.textLength()))[0]
            origin = (
                doc.documentLayout().blockBoundingRect(block).topLeft()
                - layout.boundingRect().topLeft()
            )
            return QRectF(origin.x() + x1, origin.y() + line.y(), x2 - x1, line.height())
        block = block.next()
    return None


def thinking_label(seconds: float | None) -> str:
    """The thinking block's title: "Thinking…" while it streams, then how long it took."""
    if seconds is None:
        return "Thinking…"
    return f"Thought for {seconds:.0f} s" if seconds >= 1 else "Thought for less than a second"


def thinking_html(thinking: tuple[str, bool, float | None] | None, dark: bool) -> str:
    """A reply's thinking block above its answer: a title that opens and closes it (and, open,
    a Copy link and the thinking itself, dimmed); nothing for a reply without thinking."""
    if not thinking or not thinking[0]:
        return ""
    text, shown, seconds = thinking
    th = theme(dark)
    link = f"color:{th.muted}; text-decoration:none;"
    arrow = "▾" if shown else "▸"
    title = f'<a href="action:thinking" style="{link}">{arrow} {thinking_label(seconds)}</a>'
    if not shown:
        return f"<p>{title}</p>"
    copy = (f'&nbsp;&nbsp;<a href="action:copy-thinking" style="color:{th.link}; '
            'text-decoration:none;">Copy</a>')
    body = html.escape(text.strip()).replace("\n", "<br>")
    return f"<p>{title}{copy}</p><p style='color:{th.muted};'>{body}</p>"


class ChatDelegate(QStyledItemDelegate):
    """Renders :class:`~quantdesk.ui.chat.transcript_model.ChatListModel` rows; reports links."""

    linkActivated = Signal(int, str)  # row, href ("action:copy", "copy-code:0", "https://…")

    def __init__(self, view: QAbstractItemView) -> None:
        super().__init__(view)
        self._view = view
        self._docs: OrderedDict[int, _Entry] = OrderedDict()
        self._sizes: dict[int, tuple[int, int]] = {}  # row -> (width, height) the view was told
        self._metrics_cache: _Metrics | None = None
        self._last_assistant: int | None = None
        self.cache_limit = 48
        self.layout_count = 0  # documents laid out so far (tests and profiling)
        self.streaming_phase = 0

    # -- caches -----------------------------------------------------------------------------------

    def invalidate(self, from_row: int = 0, *, sizes: bool = True) -> None:
        """Forget documents (and, if ``sizes``, heights) of rows ``from_row`` and later."""
        for row in [r for r in self._docs if r >= from_row]:
            del self._docs[row]
        if sizes:
            self._sizes = {r: s for r, s in self._sizes.items() if r < from_row}
            if from_row == 0:
                self._metrics_cache = None
        self._last_assistant = None

    def reserve(self, rows: int) -> None:
        """Keep at least twice ``rows`` documents, so that the rows on screen never thrash."""
        self.cache_limit = max(self.cache_limit, 2 * rows)

    def cached_rows(self) -> int:
        """How many rows currently hold laid-out documents."""
        return len(self._docs)

    def measure(self, index: _Index) -> bool:
        """Lay out ``index`` for real; True when its height differs from what the view was told."""
        width = self._width()
        new = (width, self._geometry(index, self._entry(index)).height)
        if self._sizes.get(index.row()) == new:
            return False
        self._sizes[index.row()] = new
        return True

    # -- QStyledItemDelegate --------------------------------------------------------------------

    def sizeHint(self, option: QStyleOptionViewItem, index: _Index) -> QSize:  # noqa: N802
        """The height the view lays the row out with: measured if known, else estimated."""
        width, row = self._width(), index.row()
        size = self._sizes.get(row)
        if size is None or size[0] != width:
            entry = self._docs.get(row)
            rev = index.data(ChatListModel.RevisionRole)
            if entry is not None and entry.body_key[0] == rev and entry.width == width:
                size = (width, self._geometry(index, self._entry(index)).height)
            else:
                size = (width, self._estimate(index, width))
            self._sizes[row] = size
        return QSize(width, size[1])

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: _Index) -> None:
        """Bubble, label, body, footer (or the streaming indicator)."""
        entry = self._entry(index)
        geo = self._geometry(index, entry)
        pal, dark = self._view.palette(), self._dark()
        base, text = pal.color(QPalette.ColorRole.Base), pal.color(QPalette.ColorRole.Text)
        muted = _blend(text, base, 0.45)
        role = index.data(ChatListModel.RoleRole)
        error = bool(index.data(ChatListModel.ErrorRole))
        painter.save()
        painter.setClipRect(option.rect)
        painter.translate(option.rect.topLeft())
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        if option.state & QStyle.StateFlag.State_Selected:
            hl = pal.color(QPalette.ColorRole.Highlight)
            painter.fillRect(QRect(0, 0, option.rect.width(), geo.height), _blend(base, hl, 0.08))
        if geo.bubble is not None:
            fill, border = self._bubble_colors(role, error, pal, dark)
            painter.setPen(border if border is not None else Qt.PenStyle.NoPen)
            painter.setBrush(fill)
            painter.drawRoundedRect(geo.bubble.adjusted(0.5, 0.5, -0.5, -0.5), 8, 8)
        m = self._metrics()
        if geo.label is not None:
            painter.setFont(m.label)
            painter.setPen(_blend(_RED, text, 0.2) if error else muted)
            label = _LABELS[role] + (" · Error" if error else "")
            align = Qt.AlignmentFlag.AlignRight if role == "user" else Qt.AlignmentFlag.AlignLeft
            painter.drawText(geo.label, align | Qt.AlignmentFlag.AlignVCenter, label)
        visible = QRectF(self._view.viewport().rect()).intersected(QRectF(option.rect))
        visible.translate(-QPointF(option.rect.topLeft()))
        self._draw(painter, entry.body, geo.body, muted if role == "notice" else text, visible)
        if index.data(ChatListModel.StreamingRole):
            painter.setFont(m.small)
            painter.setPen(muted)
            dots = "." * (self.streaming_phase % 3 + 1)
            painter.drawText(
                geo.footer + QPointF(0, QFontMetrics(m.small).ascent()), f"Generating{dots}"
            )
        elif entry.footer is not None:
            self._draw(painter, entry.footer, geo.footer, muted, visible)
        painter.restore()

    def editorEvent(self, event: QEvent, model, option, index: _Index) -> bool:  # noqa: N802, ANN001
        """A left click on a link activates it (and is not a selection click)."""
        if (
            event.type() == QEvent.Type.MouseButtonRelease
            and event.button() == Qt.MouseButton.LeftButton
        ):
            href = self.href_at(option.rect, index, event.position().toPoint())
            if href:
                self.linkActivated.emit(index.row(), href)
                return True
        return super().editorEvent(event, model, option, index)

    def helpEvent(self, event: QHelpEvent, view, option, index: _Index) -> bool:  # noqa: N802, ANN001
        """Tooltips: what an action link does, or where a link in the text goes."""
        if event.type() == QEvent.Type.ToolTip and index.isValid():
            href = self.href_at(option.rect, index, event.pos())
            if href:
                tip = _TIPS.get(href) or (
                    "Copy this code" if href.startswith("copy-code:") else href
                )
                QToolTip.showText(event.globalPos(), tip, view)
                return True
        return super().helpEvent(event, view, option, index)

    # -- hit testing ----------------------------------------------------------------------------

    def href_at(self, rect: QRect, index: _Index, pos: QPoint) -> str:
        """The link under ``pos`` (viewport coordinates) in the row drawn at ``rect``, or ""."""
        local = QPointF(pos - rect.topLeft())
        for doc, origin in self._documents(index):
            p = local - origin
            if 0 <= p.y() < doc.size().height():
                href = doc.documentLayout().anchorAt(p)
                if href:
                    return href
        return ""

    def link_rect(self, rect: QRect, index: _Index, href: str) -> QRectF | None:
        """Where link ``href`` is drawn (viewport coordinates) in the row drawn at ``rect``."""
        for doc, origin in self._documents(index):
            found = _anchor_rect(doc, href)
            if found is not None:
                return found.translated(origin + QPointF(rect.topLeft()))
        return None

    def actions(self, index: _Index) -> list[tuple[str, str]]:
        """The (href, label) action links offered for a message."""
        role = index.data(ChatListModel.RoleRole)
        if role == "notice":
            return []
        out = []
        version, versions = index.data(ChatListModel.VersionRole) or (1, 1)
        if versions > 1 and not index.data(ChatListModel.StreamingRole):
            out.append(("action:older", "‹") if version > 1 else ("", "‹"))
            out.append(("", f"{version}/{versions}"))
            out.append(("action:newer", "›") if version < versions else ("", "›"))
        out.append(("action:copy", "Copy"))
        if role == "user":
            out.append(("action:edit", "Edit"))
        streaming = index.data(ChatListModel.StreamingRole)
        if role == "assistant" and not streaming and self._is_last_assistant(index.row()):
            out.append(("action:regenerate", "Regenerate"))
            if not index.data(ChatListModel.ErrorRole):
                out.append(("action:continue", "Continue"))
        return out

    # -- internals ------------------------------------------------------------------------------

    def _width(self) -> int:
        return max(120, self._view.viewport().width())

    def _dark(self) -> bool:
        return self._view.palette().color(QPalette.ColorRole.Base).lightness() < 128

    def _metrics(self) -> _Metrics:
        if self._metrics_cache is None:
            font = self._view.font()
            label, small = _scaled(font, 0.9, bold=True), _scaled(font, 0.9)
            mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont).family()
            fm = QFontMetrics(font)
            self._metrics_cache = _Metrics(
                font, label, small, f"'{mono}', monospace", fm.lineSpacing(),
                QFontMetrics(label).height(), QFontMetrics(small).height(),
                max(1, fm.averageCharWidth()),
            )  # fmt: skip
        return self._metrics_cache

    def _is_last_assistant(self, row: int) -> bool:
        if self._last_assistant is None:
            model = self._view.model()
            self._last_assistant = -1
            for r in range(model.rowCount() - 1, -1, -1):
                if model.index(r, 0).data(ChatListModel.RoleRole) == "assistant":
                    self._last_assistant = r
                    break
        return row == self._last_assistant

    def _text_width(self, index: _Index, width: int) -> int:
        content = width - 2 * M_X
        role = index.data(ChatListModel.RoleRole)
        if role == "user":
            return max(40, int(content * USER_SHARE) - 2 * PAD_X)
        if role == "assistant" and not index.data(ChatListModel.ErrorRole):
            return max(40, content)
        return max(40, content - 2 * PAD_X)

    def _entry(self, index: _Index) -> _Entry:
        """The row's documents, (re)built and laid out at the current width as needed."""
        row, dark = index.row(), self._dark()
        rev = index.data(ChatListModel.RevisionRole)
        entry = self._docs.get(row)
        if entry is None or entry.body_key != (rev, dark):
            entry = _Entry((rev, dark), self._body_document(index, dark))
            self._docs[row] = entry
        width = self._width()
        if entry.width != width:
            entry.body.setTextWidth(self._text_width(index, width))
            entry.body.size()  # lay out now, once, rather than inside paint
            entry.width = width
            self.layout_count += 1
        footer_key = (rev, dark, self._is_last_assistant(row))
        if entry.footer_key != footer_key:
            entry.footer_key = footer_key
            entry.footer = self._footer_document(index, dark)
        self._docs.move_to_end(row)
        while len(self._docs) > self.cache_limit:
            self._docs.popitem(last=False)
        return entry

    def _body_document(self, index: _Index, dark: bool) -> QTextDocument:
        m = self._metrics()
        doc = QTextDocument()
        doc.setDocumentMargin(0)
        option = QTextOption()
        option.setWrapMode(QTextOption.WrapMode.WrapAtWordBoundaryOrAnywhere)
        font = QFont(m.body)
        if index.data(ChatListModel.RoleRole) == "notice":
            option.setAlignment(Qt.AlignmentFlag.AlignHCenter)
            font.setItalic(True)
        doc.setDefaultTextOption(option)
        doc.setDefaultFont(font)
        text = index.data(ChatListModel.TextRole) or ""
        thinking = thinking_html(index.data(ChatListModel.ThinkingRole), dark)
        doc.setHtml(thinking + render_markdown(text, dark=dark, mono_family=m.mono))
        # Drop the outer margins: the bubble already has padding.
        for block, top in ((doc.firstBlock(), True), (doc.lastBlock(), False)):
            fmt = block.blockFormat()
            if top:
                fmt.setTopMargin(0)
            else:
                fmt.setBottomMargin(0)
            QTextCursor(block).setBlockFormat(fmt)
        frames = doc.rootFrame().childFrames()  # a closing code block or table
        if frames and frames[-1].lastPosition() + 1 >= doc.lastBlock().position():
            frame_format = frames[-1].frameFormat()
            frame_format.setBottomMargin(0)
            frames[-1].setFrameFormat(frame_format)
        return doc

    def _footer_document(self, index: _Index, dark: bool) -> QTextDocument | None:
        links = self.actions(index)
        if not links:
            return None
        th = theme(dark)
        style = f"color:{th.link}; text-decoration:none;"
        muted = f"color:{th.muted};"
        parts = [f'<a href="{href}" style="{style}">{label}</a>' if href
                 else f'<span style="{muted}">{label}</span>' for href, label in links]  # fmt: skip
        footer = "&nbsp;&nbsp;&nbsp;".join(parts)
        stats = index.data(ChatListModel.StatsRole)
        if stats:
            stats_html = f'<span style="color:{th.muted};">{html.escape(stats)}</span>'
            footer += "&nbsp;" * 4 + stats_html
        doc = QTextDocument()
        doc.setDocumentMargin(0)
        doc.setDefaultFont(self._metrics().small)
        doc.setHtml(f"<p style='white-space:pre'>{footer}</p>")
        return doc

    def _documents(self, index: _Index) -> list[tuple[QTextDocument, QPointF]]:
        entry = self._entry(index)
        geo = self._geometry(index, entry)
        docs = [(entry.body, geo.body)]
        if entry.footer is not None and not index.data(ChatListModel.StreamingRole):
            docs.append((entry.footer, geo.footer))
        return docs

    def _geometry(self, index: _Index, entry: _Entry) -> _Geometry:
        footer_w = entry.footer.idealWidth() if entry.footer is not None else 0.0
        geo = self._place(index, entry.body.size().height(), entry.body.idealWidth(), footer_w)
        if index.data(ChatListModel.StreamingRole):
            step = STREAM_RESERVE_LINES * self._metrics().line_h
            geo.height = -(-geo.height // step) * step
        return geo

    def _estimate(self, index: _Index, width: int) -> int:
        """A height close to the real one, from character counts alone (no layout)."""
        m = self._metrics()
        per_line = max(8, self._text_width(index, width) // m.char_w)
        lines, extra, in_code = 0, 0, False
        for raw in (index.data(ChatListModel.TextRole) or "").split("\n"):
            stripped = raw.lstrip()
            if stripped.startswith(("```", "~~~")):
                extra += 0 if in_code else m.small_h + 4 * 6 + 10  # header row, padding, margin
                in_code = not in_code
            elif stripped or in_code:
                lines += 1 + len(raw) // per_line
            else:
                extra += 8  # paragraph spacing
        return self._place(index, max(1, lines) * m.line_h + extra, 0.0, 0.0).height

    def _place(self, index: _Index, body_h: float, ideal_w: float, footer_w: float) -> _Geometry:
        width = self._width()
        role = index.data(ChatListModel.RoleRole)
        content = width - 2 * M_X
        m = self._metrics()
        if role == "notice":
            bw = min(ideal_w, content - 2 * PAD_X) + 2 * PAD_X
            bubble = QRectF((width - bw) / 2, M_Y, bw, body_h + 2 * GAP)
            body = QPointF(M_X + PAD_X, M_Y + GAP)
            return _Geometry(int(bubble.bottom()) + M_Y, None, bubble, body, QPointF())
        bubbled = role != "assistant" or bool(index.data(ChatListModel.ErrorRole))
        pad_x, pad_y = (PAD_X, PAD_Y) if bubbled else (0, 0)
        label = QRect(M_X, M_Y, content, m.label_h)
        y = M_Y + m.label_h + GAP
        if role == "user":
            bw = min(ideal_w + 2 * pad_x, content * USER_SHARE)
            bubble = QRectF(width - M_X - bw, y, bw, body_h + 2 * pad_y)
            footer_x = bubble.right() - footer_w
        else:
            bubble = QRectF(M_X, y, content, body_h + 2 * pad_y)
            footer_x = bubble.left()
        body = QPointF(bubble.left() + pad_x, y + pad_y)
        footer_y = bubble.bottom() + GAP
        height = int(footer_y + m.small_h + M_Y + 0.999)
        return _Geometry(
            height, label, bubble if bubbled else None, body, QPointF(footer_x, footer_y)
        )

    def _bubble_colors(
        self, role: str, error: bool, pal: QPalette, dark: bool
    ) -> tuple[QColor, QColor | None]:
        base, text = pal.color(QPalette.ColorRole.Base), pal.color(QPalette.ColorRole.Text)
        if error:
            return _blend(base, _RED, 0.22 if dark else 0.10), _blend(base, _RED, 0.6)
        if role == "user":
            hl = pal.color(QPalette.ColorRole.Highlight)
            return _blend(base, hl, 0.30 if dark else 0.14), None
        return _blend(base, text, 0.07 if dark else 0.05), None

    @staticmethod
    def _draw(
        painter: QPainter, doc: QTextDocument, at: QPointF, color: QColor, clip: QRectF
    ) -> None:
        ctx = QAbstractTextDocumentLayout.PaintContext()
        ctx.palette.setColor(QPalette.ColorRole.Text, color)
        ctx.clip = clip.translated(-at)
        painter.save()
        painter.translate(at)
        doc.documentLayout().draw(painter, ctx)
        painter.restore()
