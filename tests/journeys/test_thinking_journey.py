"""A reasoning model's reply as a person meets it: the thinking streams into its own block
above the answer, the block closes when the answer begins and says how long it took, a click
opens it (Copy copies the thinking alone), and it is kept with the chat, closed, when the chat is
opened again. Real clicks on the real window; a scripted DeepSeek-R1-style model (its generation
prompt opens ``<think>``) through real llama.cpp; the store read back as saved."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtGui import QGuiApplication

from quantdesk.ui.chat.transcript_model import ChatListModel
from tests.support.dialogs import click_link
from tests.support.journey_actions import add_in_place, load_by_double_click, row_of, type_and_send
from tests.support.reasoning_templates import write_reasoning_models


def _shown_html(window, row: int) -> str:
    view = window.chat.view
    index = view.model().index(row, 0)
    view.viewport().grab()  # paint: the row's documents are built
    return view.delegate()._entry(index).body.toPlainText()


def test_thinking_is_shown_apart_closed_when_done_and_kept_with_the_chat(
    qtbot, window_app, tmp_path: Path
) -> None:
    window, controller = window_app
    model = write_reasoning_models(tmp_path)["r1"]
    add_in_place(qtbot, window, model)
    load_by_double_click(qtbot, window, controller, "r1-style")
    type_and_send(qtbot, window, controller, "What is 2+2?")

    row = row_of(window, "assistant")
    reply = window.chat.transcript.message(row)
    assert reply.text == "It is 4."  # the answer alone: no <think> markers, no thinking
    assert reply.thinking == "Two and two make four.\n" and not reply.thinking_open
    assert reply.thought_s is not None
    shown = _shown_html(window, row)
    assert shown.startswith("▸ Thought for") and "Two and two" not in shown

    click_link(window.chat.view, row, "action:thinking")  # open it
    assert window.chat.transcript.message(row).thinking_open
    shown = _shown_html(window, row)
    assert shown.startswith("▾ Thought for") and "Two and two make four." in shown
    click_link(window.chat.view, row, "action:copy-thinking")
    assert QGuiApplication.clipboard().text() == "Two and two make four."
    click_link(window.chat.view, row, "action:copy")  # the message's own Copy: the answer
    assert QGuiApplication.clipboard().text() == "It is 4."

    history = controller.chat.history
    [_question, stored] = history.store.messages(history.chat_id)
    assert (stored.text, stored.thinking) == ("It is 4.", "Two and two make four.\n")
    assert stored.stats["thinking_s"] >= 0
    assert controller.chat.messages[-1].reasoning == "Two and two make four.\n"

    chat_id = history.chat_id
    controller.chat.new_chat()
    history.open(chat_id)  # opened again: the thinking is there, closed
    row = row_of(window, "assistant")
    again = window.chat.transcript.message(row)
    assert (again.text, again.thinking, again.thinking_open) == (
        "It is 4.", "Two and two make four.\n", False)
    assert window.chat.view.model().index(row, 0).data(ChatListModel.ThinkingRole)[0]
