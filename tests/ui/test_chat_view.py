"""Chat transcript: Markdown rendering, the list model, and the virtualized view."""

from __future__ import annotations

import re

import pytest
from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtTest import QTest

from quantdesk.ui.chat._delegate import STREAM_RESERVE_LINES
from quantdesk.ui.chat._markdown_render import code_blocks, render_markdown
from quantdesk.ui.chat.transcript_model import ChatListModel
from quantdesk.ui.chat.view import ChatView

ANSWER = """Here you go:

```python
print("hello")
```

and in shell:

```sh
echo hi
```
"""


# -- markdown -------------------------------------------------------------------------------------


def test_code_block_gets_copy_link_and_raw_html_is_escaped() -> None:
    html = render_markdown("Hi <script>alert(1)</script>\n\n```python\nx = 1\n```", dark=False)
    assert 'href="copy-code:0"' in html
    assert "<pre" in html and "x = 1" in re.sub("<[^>]+>", "", html)  # coloured, as it was
    assert "<script>" not in html
    assert "&lt;script&gt;" in html


def test_code_blocks_in_order_and_unclosed_fence_renders_as_code() -> None:
    assert code_blocks(ANSWER) == ['print("hello")', "echo hi"]
    partial = "Start:\n\n```py\ndef f():\n    return 1"
    assert code_blocks(partial) == ["def f():\n    return 1"]
    html = render_markdown(partial, dark=True)
    assert "<pre" in html and 'href="copy-code:0"' in html


def test_inline_code_tables_and_strikethrough() -> None:
    html = render_markdown("`a<b` ~~gone~~\n\n| a | b |\n|---|---|\n| 1 | 2 |", dark=False)
    assert "<code" in html and "a&lt;b" in html
    assert "<s>gone</s>" in html
    assert "<table" in html and "<td>2</td>" in html


# -- model ----------------------------------------------------------------------------------------


def test_streaming_emits_data_changed_for_the_last_row_only(qtbot) -> None:
    model = ChatListModel()
    model.append_message("user", "hi")
    model.append_message("assistant", "earlier")
    row = model.append_message("assistant", streaming=True)
    seen: list[tuple[int, int]] = []
    model.dataChanged.connect(lambda tl, br, _roles=(): seen.append((tl.row(), br.row())))
    for chunk in ("Hel", "lo", " world"):
        model.append_text(row, chunk)
    assert seen == [(row, row)] * 3
    assert model.message(row).text == "Hello world" and model.message(row).streaming
    model.finish(row, "3 tokens · 10.0 tok/s · 0.3 s")
    msg = model.message(row)
    assert not msg.streaming and msg.stats.startswith("3 tokens")
    assert model.data(model.index(row, 0), ChatListModel.RoleRole) == "assistant"
    model.set_error(1, "The model stopped: out of memory.")
    assert model.message(1).error and model.message(1).text.startswith("The model stopped")
    model.remove_from(1)
    assert [m.role for m in model.messages()] == ["user"]
    model.clear()
    assert model.rowCount() == 0
    with pytest.raises(ValueError):
        model.append_message("robot", "x")  # type: ignore[arg-type]


# -- view -----------------------------------------------------------------------------------------


def _show(qtbot, model: ChatListModel, width: int = 700, height: int = 500) -> ChatView:
    view = ChatView(model)
    qtbot.addWidget(view)
    view.resize(width, height)
    view.show()
    qtbot.waitExposed(view)
    _settle(qtbot, view)
    return view


def _settle(qtbot, view: ChatView) -> None:
    """Wait until the view has measured what is on screen (its measuring is event-driven)."""
    qtbot.waitUntil(lambda: not view._measure_timer.isActive())
    view.viewport().grab()  # paints synchronously


def _click(qtbot, view: ChatView, row: int, href: str) -> None:
    rect = view.link_rect(row, href)
    assert rect is not None and view.viewport().rect().contains(rect.center())
    index = view.model().index(row, 0)
    assert view.delegate().href_at(view.visualRect(index), index, rect.center()) == href
    QTest.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def _chat(count: int) -> ChatListModel:
    model = ChatListModel()
    for i in range(count):
        if i % 2 == 0:
            model.append_message("user", f"Question {i}: what is {i} squared?")
        else:
            model.append_message("assistant", f"**Answer {i}**\n\n```python\nprint({i} ** 2)\n```")
            model.finish(i, "12 tokens · 30.0 tok/s · 0.4 s")
    return model


def test_long_chat_lays_out_only_rows_near_the_viewport(qtbot) -> None:
    model = _chat(2000)
    view = _show(qtbot, model)
    delegate = view.delegate()
    last = model.index(1999, 0)
    assert view.viewport().rect().intersects(view.visualRect(last))  # opens at the bottom
    assert delegate.layout_count < 60
    assert delegate.cached_rows() <= delegate.cache_limit < 200

    view.scrollToTop()
    _settle(qtbot, view)
    assert view.viewport().rect().intersects(view.visualRect(model.index(0, 0)))
    assert delegate.layout_count < 120
    assert delegate.cached_rows() <= delegate.cache_limit

    # A new width re-lays out only what is on screen too.
    before = delegate.layout_count
    view.resize(520, 500)
    _settle(qtbot, view)
    assert 0 < delegate.layout_count - before < 60

    # A streamed token re-lays out only the message it belongs to.
    view.scrollToBottom()
    _settle(qtbot, view)
    row = model.append_message("assistant", "Sure", streaming=True)
    _settle(qtbot, view)
    before = delegate.layout_count
    model.append_text(row, ", here is more text.")
    _settle(qtbot, view)
    assert delegate.layout_count == before + 1


def test_clicking_copy_puts_the_message_on_the_clipboard(qtbot) -> None:
    model = ChatListModel()
    model.append_message("user", "What is 2 + 2?")
    row = model.append_message("assistant", ANSWER)
    model.finish(row, "20 tokens · 10 tok/s · 2 s")
    view = _show(qtbot, model)
    link = view.link_rect(row, "action:copy")
    assert link is not None
    QTest.mouseMove(view.viewport(), link.center())
    qtbot.waitUntil(lambda: view.viewport().cursor().shape() == Qt.CursorShape.PointingHandCursor)
    QGuiApplication.clipboard().clear()
    with qtbot.waitSignal(view.copyRequested) as blocker:
        _click(qtbot, view, row, "action:copy")
    assert blocker.args == [row]
    assert QGuiApplication.clipboard().text() == ANSWER

    with qtbot.waitSignal(view.copyCodeRequested) as blocker:
        _click(qtbot, view, row, "copy-code:1")
    assert blocker.args == [row, 1]
    assert QGuiApplication.clipboard().text() == "echo hi"


def test_regenerate_and_edit_links(qtbot) -> None:
    model = ChatListModel()
    model.append_message("user", "Hello")
    model.append_message("assistant", "Hi!")
    model.append_message("user", "Tell me a joke")
    row = model.append_message("assistant", "No.")
    view = _show(qtbot, model)
    assert view.link_rect(1, "action:regenerate") is None  # only the last reply
    with qtbot.waitSignal(view.regenerateRequested) as blocker:
        _click(qtbot, view, row, "action:regenerate")
    assert blocker.args == [row]
    with qtbot.waitSignal(view.editRequested) as blocker:
        _click(qtbot, view, 2, "action:edit")
    assert blocker.args == [2]


def test_ctrl_c_copies_the_selected_message(qtbot) -> None:
    model = ChatListModel()
    model.append_message("user", "first")
    model.append_message("assistant", "second")
    view = _show(qtbot, model)
    view.setCurrentIndex(model.index(0, 0))
    with qtbot.waitSignal(view.copyRequested):
        QTest.keyClick(view, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    assert QGuiApplication.clipboard().text() == "first"
    assert view.accessibleName()
    assert "You" in model.data(model.index(0, 0), Qt.ItemDataRole.AccessibleTextRole)


def test_auto_scroll_follows_streaming_unless_scrolled_up(qtbot) -> None:
    model = _chat(30)
    view = _show(qtbot, model, 500, 300)
    bar = view.verticalScrollBar()
    row = model.append_message("assistant", streaming=True)
    for i in range(5):
        old_max = bar.maximum()
        # a streaming row grows STREAM_RESERVE_LINES lines at a time: add more than that
        model.append_text(row, f"line {i}\n\n" * (STREAM_RESERVE_LINES + 1))
        qtbot.waitUntil(lambda m=old_max: bar.maximum() > m)
        _settle(qtbot, view)
        assert bar.value() == bar.maximum()
        assert view.is_following()

    bar.setValue(0)  # the user scrolls up to read
    assert not view.is_following()
    _settle(qtbot, view)  # rows coming into view get measured (the range may shrink or grow)
    assert bar.value() == 0
    old_max = bar.maximum()
    model.append_text(row, "a new paragraph\n\n" * (STREAM_RESERVE_LINES + 1))
    qtbot.waitUntil(lambda: bar.maximum() > old_max)
    _settle(qtbot, view)
    assert bar.value() == 0

    bar.setValue(bar.maximum())  # back at the bottom: following again
    assert view.is_following()
    old_max = bar.maximum()
    model.append_text(row, "the end\n\n" * (STREAM_RESERVE_LINES + 1))
    qtbot.waitUntil(lambda: bar.maximum() > old_max)
    _settle(qtbot, view)
    assert bar.value() == bar.maximum()


def test_removing_rows_and_reset_keep_the_view_consistent(qtbot) -> None:
    model = _chat(20)
    view = _show(qtbot, model)
    model.remove_from(10)
    _settle(qtbot, view)
    assert view.delegate().cached_rows() <= 10
    model.clear()
    _settle(qtbot, view)
    assert view.delegate().cached_rows() == 0
    assert view.indexAt(view.viewport().rect().center()) == QModelIndex()


def test_streaming_into_a_long_chat_does_not_lay_out_every_row_per_chunk(qtbot) -> None:
    """QListView re-lays out the whole list on every dataChanged (all sizes asked again); the
    view handles heights itself, so streamed chunks cost only the rows they touch."""
    model = _chat(1000)
    view = _show(qtbot, model, 500, 300)
    row = model.append_message("assistant", streaming=True)
    _settle(qtbot, view)
    asked = []
    delegate = view.delegate()
    real = delegate.sizeHint
    delegate.sizeHint = lambda option, index: (asked.append(index.row()), real(option, index))[1]
    for i in range(40):
        model.append_text(row, f"word{i} ")
        qtbot.wait(1)
        _settle(qtbot, view)
    assert len(asked) < 2 * model.rowCount()  # before: ~40 x 1,001 sizes
    assert view.is_following() and model.message(row).text.startswith("word0 word1")
