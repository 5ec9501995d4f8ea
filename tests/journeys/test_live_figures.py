"""The status bar while a reply streams, per chat, and a continued reply's count (issue 19,
fault 5: "Context 0 / 4,096" and no tok/s while streaming; the old chat's figures after
switching; after Continue the footer counted only the continued part)."""

from __future__ import annotations

import re
from pathlib import Path

from tests.support.dialogs import click_link
from tests.support.journey_actions import add_in_place, load_by_double_click, row_of, type_and_send
from tests.support.tiny_models import write_tiny_chat_model


def _context(window) -> tuple[int, int]:
    found = re.fullmatch(r"Context ([\d,]+) / ([\d,]+)", window.context_label.text())
    assert found, window.context_label.text()
    return tuple(int(g.replace(",", "")) for g in found.groups())  # type: ignore[return-value]


def test_figures_are_live_per_chat_and_count_a_whole_continued_reply(
    qtbot, window_app, tmp_path: Path
) -> None:
    window, controller = window_app
    model = write_tiny_chat_model(tmp_path / "m" / "chatty.gguf", name="chatty", n_ctx_train=8192)
    add_in_place(qtbot, window, model)
    window.settings_panel.editor("load.n_ctx").setValue(8192)
    window.settings_panel.editor("sampling.max_tokens").setValue(3000)
    load_by_double_click(qtbot, window, controller, "chatty")
    assert _context(window) == (0, 8192)

    seen: list[tuple[str, tuple[int, int]]] = []
    worker = controller.models.worker
    worker.figuresChanged.connect(
        lambda _f: seen.append((window.speed_label.text(), _context(window))))
    type_and_send(qtbot, window, controller, "Tell me everything")
    streaming = [s for s in seen if s[0].endswith("tok/s")]
    assert len(streaming) >= 2, seen  # at least every 0.5 s while it streamed
    used = [c[0] for _s, c in streaming]
    assert used == sorted(used) and used[0] > 0 and all(c[1] == 8192 for _s, c in streaming)
    reply = controller.chat.history.store.messages(controller.chat.history.chat_id)[-1]
    first_chat = (window.speed_label.text(), _context(window))
    assert first_chat[1][0] == reply.stats["context_used"]

    controller.chat.new_chat()
    assert window.speed_label.text() == "" and _context(window) == (0, 8192)
    window.settings_panel.editor("sampling.max_tokens").setValue(10)
    type_and_send(qtbot, window, controller, "Short")
    second = _context(window)
    assert second[0] < first_chat[1][0]
    controller.chat.history.open(window.chat_list.model.chats()[1].id)  # back to the first chat
    assert (window.speed_label.text(), _context(window)) == first_chat

    # Continue the short reply of the second chat: its footer counts the whole reply
    controller.chat.history.open(window.chat_list.model.chats()[0].id)
    before = controller.chat.history.store.messages(controller.chat.history.chat_id)[-1].stats
    assert before["stop_reason"] == "length", before  # cut at max tokens: Continue is offered
    with qtbot.waitSignal(controller.chat.replyFinished, timeout=60_000) as done:
        click_link(window.chat.view, row_of(window, "assistant", 0), "action:continue")
    total = done.args[0].completion_tokens
    assert total > before["completion_tokens"]
    footer = window.chat.transcript.messages()[row_of(window, "assistant", 0)].stats
    assert footer.startswith(f"{total} tokens")
    saved = controller.chat.history.store.messages(controller.chat.history.chat_id)[-1].stats
    assert saved["completion_tokens"] == total
