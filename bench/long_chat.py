"""Open a 2,000-message chat in the app and scroll it: the longest event-loop stall.

Usage: ``.venv/bin/python bench/long_chat.py [--messages 2000]``. A 5 ms timer runs throughout;
the longest gap between its ticks is how long the window could not respond. Offscreen Qt.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path


def main(argv: list[str]) -> int:
    """Build the chat, open it, scroll top to bottom in 101 steps, print the stalls."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=2000)
    args = parser.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ["QUANTDESK_SKIP_STARTER"] = "1"
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from quantdesk.engine.conversations import ConversationStore
    from quantdesk.gui import build_app
    from quantdesk.paths import resolve_paths

    data = Path(tempfile.mkdtemp(prefix="quantdesk-long-chat-"))
    store = ConversationStore(resolve_paths(data).ensure().chats_db)
    chat = store.create_chat("Long chat")
    started = time.perf_counter()
    for i in range(args.messages // 2):
        store.add_message(chat.id, "user", f"Question {i}: how does **Markdown** render `code`?")
        answer = f"Answer {i}.\n\n```python\nprint({i})\n```\n\n- item a\n- item b\n"
        store.add_message(chat.id, "assistant", answer * 2)
    print(f"stored {args.messages} messages in {time.perf_counter() - started:.2f} s")
    store.close()
    app = QApplication([])
    window, controller, _ = build_app(argparse.Namespace(data_dir=str(data), files=[]))
    window.show()
    ticks: list[tuple[float, float]] = []
    last = [time.perf_counter()]

    def tick() -> None:
        now = time.perf_counter()
        ticks.append((now, now - last[0]))
        last[0] = now

    ticker = QTimer()
    ticker.timeout.connect(tick)
    ticker.start(5)
    marks: dict[str, float] = {}
    steps = iter(range(101))

    def open_chat() -> None:
        marks["open"] = time.perf_counter()
        controller.history.open(chat.id)

    def scroll() -> None:
        step = next(steps, None)
        if step is None:
            marks["end"] = time.perf_counter()
            app.quit()
            return
        marks.setdefault("scroll", time.perf_counter())
        bar = window.chat.view.verticalScrollBar()
        bar.setValue(int(bar.maximum() * step / 100))
        QTimer.singleShot(30, scroll)

    QTimer.singleShot(500, open_chat)
    QTimer.singleShot(2500, scroll)
    app.exec()

    def longest(a: str, b: str) -> float:
        return max((gap for t, gap in ticks if marks[a] <= t <= marks[b]), default=0.0) * 1000

    print(f"longest stall after opening the chat: {longest('open', 'scroll'):.0f} ms")
    print(f"longest stall while scrolling top to bottom (101 steps): "
          f"{longest('scroll', 'end'):.0f} ms")  # fmt: skip
    print(f"documents laid out: {window.chat.view.delegate().layout_count}")
    controller.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
