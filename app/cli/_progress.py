"""Progress on the command line: a bar redrawn in place at a terminal; in a pipe or a log file,
plain lines (one per tenth of the work, or every 10 s) instead of thousands of ``\\r`` frames."""

from __future__ import annotations

import sys
import time
from typing import TextIO

REDRAW_S = 0.1
PLAIN_EVERY_S = 10.0


class ProgressLine:
    """Shows ``fraction`` done and a ``text`` on ``stream`` (stderr by default)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self._drawn_at = 0.0
        self._tenth = -1
        self._drew = False

    def show(self, fraction: float, text: str) -> None:
        """Show progress (redrawn at most every 0.1 s at a terminal)."""
        now = time.monotonic()
        fraction = min(max(fraction, 0.0), 1.0)
        if self.tty:
            if now - self._drawn_at < REDRAW_S and fraction < 1.0:
                return
            bar = "#" * int(fraction * 30)
            self.stream.write(f"\r[{bar:<30}] {fraction * 100:5.1f}%  {text}")
        else:
            tenth = int(fraction * 10)
            if tenth <= self._tenth and now - self._drawn_at < PLAIN_EVERY_S:
                return
            self._tenth = tenth
            self.stream.write(f"{fraction * 100:5.1f}%  {text}\n")
        self._drawn_at = now
        self._drew = True
        self.stream.flush()

    def finish(self) -> None:
        """End the bar's line (at a terminal)."""
        if self.tty and self._drew:
            self.stream.write("\n")
            self.stream.flush()
        self._drew = False
