"""Issue 20, item 4 (the chat store): QuantDesk's data on a real small disk (a tmpfs) that
another program fills while a person chats. Sending is refused in words with the message kept
in the box; a reply streaming when the disk fills keeps growing in the window and is saved
once space is freed; nothing saved before is lost, and the app never crashes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from tests.support.journey_actions import load_tiny_chat_model, shown, type_and_send
from tests.support.small_disk import fill_disk, mounted_tmpfs


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """QuantDesk's data folder on a 24 MB disk of its own (root only, else skipped)."""
    with mounted_tmpfs(tmp_path / "small-disk", "24m") as disk:
        folder = disk / "quantdesk-data"
        monkeypatch.setenv("QUANTDESK_DATA_DIR", str(folder))
        monkeypatch.setenv("QUANTDESK_SKIP_STARTER", "1")
        monkeypatch.setenv("QUANTDESK_SKIP_DISCOVERY", "1")
        yield folder


def _saved(controller) -> list[tuple[str, str, bool]]:  # noqa: ANN001
    history = controller.chat.history
    return [(m.role, m.text, m.complete) for m in history.store.messages(history.chat_id)]


def test_a_full_disk_refuses_sending_in_words_and_a_streaming_reply_is_saved_once_freed(
    qtbot, window_app, data_dir: Path, tmp_path: Path
) -> None:
    window, controller = window_app
    load_tiny_chat_model(qtbot, window, controller, tmp_path / "models")
    type_and_send(qtbot, window, controller, "Hello there")
    before = _saved(controller)
    assert [role for role, _, _ in before] == ["user", "assistant"]

    filler = fill_disk(data_dir.parent)  # another program takes every free byte
    box = window.chat.input
    box.setFocus()
    typed = "Are you saved? " + "words " * 2000  # more than any slack the files have left
    QTest.keyClicks(box, typed[:40])
    box.insertPlainText(typed[40:])
    QTest.keyClick(box, Qt.Key.Key_Return)
    banner = window.banner.label.text()
    assert "cannot be saved" in banner and "full" in banner and str(data_dir) in banner, banner
    assert "Free at least" in banner, banner
    assert box.toPlainText() == typed  # nothing typed is lost
    assert len(shown(window)) == 2 and controller.chat._reply_row < 0  # nothing sent
    assert _saved(controller) == before

    # space back; a long reply, and the disk fills again while it streams
    filler.unlink()
    window.settings_panel.editor("sampling.max_tokens").setValue(4000)
    box.clear()
    QTest.keyClicks(box, "Tell me a long story")
    with qtbot.waitSignal(controller.chat.replyStarted, timeout=10_000):
        QTest.keyClick(box, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: controller.models.worker.tokens_generated >= 3, timeout=20_000)
    with qtbot.waitSignal(controller.chat.replyFinished, timeout=120_000) as finished:
        filler = fill_disk(data_dir.parent)
        at_full = controller.models.worker.tokens_generated
    assert finished.args[0].completion_tokens > at_full + 100  # it streamed on, unsaved
    assert "cannot be saved" in window.banner.label.text()
    reply = shown(window)[-1][1]
    on_disk = _saved(controller)
    assert on_disk[:2] == before  # what was saved before the disk filled is all there
    assert on_disk[2][:2] == ("user", "Tell me a long story")
    assert len(on_disk[3][1]) < len(reply) and on_disk[3][2] is False  # behind the window
    assert controller.chat.history.saving.pending == 1

    filler.unlink()  # the next retry saves the reply as the window shows it
    qtbot.waitUntil(lambda: controller.chat.history.saving.pending == 0, timeout=10_000)
    assert "saved again" in window.banner.label.text()
    assert _saved(controller)[3][1:] == (reply, True)
    assert _saved(controller)[:2] == before
