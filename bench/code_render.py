"""What highlighting costs a streaming reply: the time to build the message's document (Markdown
to HTML, the QTextDocument, its layout) as a reply with a code block grows, highlighted and
plain, at each flush.

Usage: ``.venv/bin/python bench/code_render.py [--chars 6000] [--step 40] [--json]``. The reply
is a Python program written ``--step`` characters at a time (a flush of a few tokens), the
fence left open as while it streams, then closed; each size is built from a cold highlight
cache, as the growing block is (its text is new every flush). Offscreen Qt. The figures are the
median and the longest build per flush, highlighted and plain, and the longest difference.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

PROGRAM = '''import csv
from collections import defaultdict


def totals_per_month(path: str) -> dict[str, float]:
    """Sum the sales of each month in a CSV file with "date" and "amount" columns."""
    sums: dict[str, float] = defaultdict(float)
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            month = row["date"][:7]  # "2024-05-17" -> "2024-05"
            sums[month] += float(row["amount"])
    return dict(sums)


if __name__ == "__main__":
    for month, total in sorted(totals_per_month("sales.csv").items()):
        print(f"{month}: {total:10.2f}")
'''


def main(argv: list[str]) -> int:
    """Build the growing reply's document at each flush, highlighted and plain."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--chars", type=int, default=6000, help="the code's final length")
    parser.add_argument("--step", type=int, default=40, help="characters per flush")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtGui import QTextDocument
    from PySide6.QtWidgets import QApplication

    from quantdesk.ui.chat import _code_highlight, _markdown_render

    app = QApplication([])  # noqa: F841 - documents need one
    code = (PROGRAM * (args.chars // len(PROGRAM) + 1))[: args.chars]
    head = "Here is a program that does it:\n\n```python\n"
    plain_code = _markdown_render.highlight_code

    def build(text: str, highlighted: bool) -> float:
        _code_highlight.highlight_code.cache_clear()
        _markdown_render.highlight_code = plain_code if highlighted else (lambda *a, **k: None)
        started = time.perf_counter()
        doc = QTextDocument()
        doc.setHtml(_markdown_render.render_markdown(text, dark=False))
        doc.setTextWidth(700)
        doc.size()  # the layout
        return (time.perf_counter() - started) * 1000

    sizes = list(range(args.step, len(code) + 1, args.step))
    texts = [head + code[:n] for n in sizes] + [head + code + "\n```\n"]
    build(texts[0], True)  # warm: the lexer's first use imports it
    shown = {True: [build(t, True) for t in texts], False: [build(t, False) for t in texts]}
    _markdown_render.highlight_code = plain_code
    result = {
        "flushes": len(texts), "final_chars": len(code),
        "highlighted_median_ms": statistics.median(shown[True]),
        "highlighted_longest_ms": max(shown[True]),
        "plain_median_ms": statistics.median(shown[False]),
        "plain_longest_ms": max(shown[False]),
        "closed_highlighted_ms": shown[True][-1], "closed_plain_ms": shown[False][-1],
        "longest_extra_ms": max(a - b for a, b in zip(shown[True], shown[False], strict=True)),
        "extra_at_2000_chars_ms": next((a - b for t, a, b in zip(texts, shown[True], shown[False],
                                                                  strict=True)
                                       if len(t) - len(head) >= 2000), 0.0),  # fmt: skip
    }
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key}: {value:.1f}" if isinstance(value, float) else f"{key}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
