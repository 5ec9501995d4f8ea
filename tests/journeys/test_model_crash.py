"""Issue 21: llama.cpp runs in the model's host process, so nothing a model does takes the window
down. A person chats; the model's process is killed mid-reply (SIGKILL), aborts on a character
its vocabulary lacks, or loses its file under it: each time the window stays, the reply written
so far is kept and marked, one line says what happened, and Reload brings the chat back."""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QKeyEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QPushButton

from quantdesk.gui.chat_controller import STOPPED_MARK
from tests.support.dialogs import click_link
from tests.support.journey_actions import (
    add_in_place,
    load_by_double_click,
    load_tiny_chat_model,
    shortcut,
    shown,
    type_and_send,
)
from tests.support.tiny_models import (
    write_model_that_aborts_llama,
    write_spm_model_without_byte_tokens,
)


def _saved(controller) -> list[tuple[str, str, bool]]:  # noqa: ANN001
    history = controller.chat.history
    return [(m.role, m.text, m.complete) for m in history.store.messages(history.chat_id)]


def _notices(window) -> list[str]:  # noqa: ANN001
    return [m.text for m in window.chat.transcript.messages() if m.role == "notice"]


def _host_pid(controller) -> int:  # noqa: ANN001
    return controller.models.worker._session.pid


def _type(box, text: str) -> None:  # noqa: ANN001
    """Type ``text`` key by key; a character beyond Latin-1 ("€", from a layout or a compose
    key) arrives as a key event that carries only its text, as the window system sends it
    (QTest.keyClicks aborts on such characters)."""
    for char in text:
        if ord(char) < 256:
            QTest.keyClicks(box, char)
            continue
        for kind in (QEvent.Type.KeyPress, QEvent.Type.KeyRelease):
            QApplication.sendEvent(box, QKeyEvent(kind, Qt.Key.Key_unknown,
                                                  Qt.KeyboardModifier.NoModifier, char))


def _send_and_see_it_stop(qtbot, window, controller, text: str) -> None:  # noqa: ANN001
    box = window.chat.input
    box.setFocus()
    _type(box, text)
    assert box.toPlainText() == text
    with qtbot.waitSignal(controller.chat.replyFailed, timeout=60_000):
        QTest.keyClick(box, Qt.Key.Key_Return)


def _click_reload(qtbot, window, controller) -> None:  # noqa: ANN001
    """Press the banner's Reload button, as a person does, and wait for the model."""
    def shown_reload() -> QPushButton | None:
        return next((b for b in window.banner.findChildren(QPushButton)
                     if b.text() == "Reload" and b.isVisible()), None)  # fmt: skip

    qtbot.waitUntil(lambda: shown_reload() is not None, timeout=5_000)  # shown by the layout
    reload = shown_reload()
    with qtbot.waitSignal(controller.models.modelLoaded, timeout=60_000):
        QTest.mouseClick(reload, Qt.MouseButton.LeftButton)


def test_a_host_killed_mid_reply_keeps_the_reply_and_reload_goes_on(
    qtbot, window_app, tmp_path: Path
) -> None:
    window, controller = window_app
    load_tiny_chat_model(qtbot, window, controller, tmp_path / "models")
    type_and_send(qtbot, window, controller, "Hello there")
    window.settings_panel.editor("sampling.max_tokens").setValue(60_000)
    box = window.chat.input
    QTest.keyClicks(box, "Tell me a long story")
    with qtbot.waitSignal(controller.chat.replyStarted, timeout=10_000):
        QTest.keyClick(box, Qt.Key.Key_Return)
    worker = controller.models.worker
    qtbot.waitUntil(lambda: worker.tokens_generated >= 50, timeout=20_000)
    with qtbot.waitSignal(controller.chat.replyFailed, timeout=20_000):
        os.kill(_host_pid(controller), signal.SIGKILL)

    assert window.isVisible()
    reply = window.chat.transcript.messages()[-2]  # the notice comes after it
    assert reply.role == "assistant" and len(reply.text) >= 50
    assert reply.stats == STOPPED_MARK and not reply.streaming
    notice = _notices(window)[-1]
    assert notice.startswith("The model stopped: it was killed") and "SIGKILL" in notice
    assert window.banner.label.text() == notice
    saved = _saved(controller)
    assert saved[-1] == ("assistant", reply.text, False)  # kept, marked incomplete
    assert "stopped" in window.chat.model_status.text()
    assert "4 messages" in window.chat_list.view.currentIndex().data()  # the cut-off one counts

    reply_row = window.chat.transcript.rowCount() - 2
    click_link(window.chat.view, reply_row, "action:continue")  # no model now: it says why
    name = controller.models.stopped_model.name
    assert window.banner.label.text() == f"{name} stopped. Reload it to go on."
    _click_reload(qtbot, window, controller)
    window.settings_panel.editor("sampling.max_tokens").setValue(12)
    with qtbot.waitSignal(controller.chat.replyFinished, timeout=60_000):
        click_link(window.chat.view, reply_row, "action:continue")
    continued = window.chat.transcript.message(reply_row)
    assert continued.text.startswith(reply.text) and len(continued.text) > len(reply.text)
    assert "Cut off" not in continued.stats
    type_and_send(qtbot, window, controller, "Are you back?")
    assert shown(window)[-1][0] == "assistant" and shown(window)[-1][1]
    assert [role for role, _, _ in _saved(controller)] == ["user", "assistant"] * 3
    assert _saved(controller)[3] == ("assistant", continued.text, True)


def test_a_character_the_vocabulary_lacks_is_one_line_not_a_crash(
    qtbot, window_app, tmp_path: Path
) -> None:
    window, controller = window_app
    model = write_spm_model_without_byte_tokens(tmp_path / "models" / "no-bytes.gguf")
    add_in_place(qtbot, window, model)
    window.settings_panel.editor("sampling.max_tokens").setValue(8)
    load_by_double_click(qtbot, window, controller, "no-byte-tokens")
    type_and_send(qtbot, window, controller, "Hello")
    _send_and_see_it_stop(qtbot, window, controller, "It costs 5 €")
    assert window.isVisible()
    assert _notices(window)[-1] == ("The model stopped: llama.cpp aborted: unordered_map::at — "
                                    "this model's vocabulary cannot encode '€'.")  # fmt: skip
    assert "std::out_of_range" in window.banner.details()
    assert shown(window)[-2][:2] == ("user", "It costs 5 €")  # the message is kept
    _click_reload(qtbot, window, controller)
    shortcut(window, window.chat.input, Qt.Key.Key_N)  # a new chat: the old one holds the '€'
    type_and_send(qtbot, window, controller, "Hello again")
    assert shown(window)[-1][0] == "assistant"


def test_a_model_file_truncated_while_loaded_is_one_line_not_a_crash(
    qtbot, window_app, tmp_path: Path
) -> None:
    window, controller = window_app
    load_tiny_chat_model(qtbot, window, controller, tmp_path / "models")
    model = tmp_path / "models" / "chatty.gguf"
    kept = tmp_path / "kept.gguf"
    shutil.copyfile(model, kept)
    type_and_send(qtbot, window, controller, "Hello")
    os.truncate(model, 4096)  # another program rewrites the file, a network drive drops
    _send_and_see_it_stop(qtbot, window, controller, "Still there?")
    assert window.isVisible()
    assert "'chatty.gguf' became unreadable while in use" in _notices(window)[-1]
    assert "SIGBUS" in _notices(window)[-1]
    shutil.copyfile(kept, model)  # the file is back
    _click_reload(qtbot, window, controller)
    type_and_send(qtbot, window, controller, "Now?")
    assert shown(window)[-1][0] == "assistant"


def test_a_file_swapped_under_the_same_size_and_mtime_is_tested_again_not_trusted(
    qtbot, window_app, tmp_path: Path
) -> None:
    """Another program rewrites the model in place, to the same size, and puts its
    modification time back: the test load's verdict for the old content is not reused."""
    window, controller = window_app
    folder = tmp_path / "models"
    crafted = write_model_that_aborts_llama(tmp_path / "aborts.gguf")
    load_tiny_chat_model(qtbot, window, controller, folder)
    model = folder / "chatty.gguf"
    original = model.read_bytes()
    assert len(crafted.read_bytes()) <= len(original)
    type_and_send(qtbot, window, controller, "Hello")
    before = model.stat()
    with model.open("r+b") as f:  # the same inode, the same size
        f.write(crafted.read_bytes().ljust(len(original), b"\0"))
    os.utime(model, ns=(before.st_atime_ns, before.st_mtime_ns))
    view = window.library.view
    rect = view.visualRect(view.model().index(0, 0))
    # loaded again by hand
    with qtbot.waitSignal(controller.models.modelLoadFailed, timeout=60_000):
        QTest.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
        QTest.mouseDClick(view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert window.isVisible()
    assert "llama.cpp aborted (SIGABRT) while loading 'chatty.gguf'" in window.banner.label.text()
    with model.open("r+b") as f:
        f.write(original)
    os.utime(model, ns=(before.st_atime_ns, before.st_mtime_ns))
    load_by_double_click(qtbot, window, controller, "chatty")
    type_and_send(qtbot, window, controller, "Hello again")
    assert shown(window)[-1][0] == "assistant"
