"""Issue 20, item 13: progress in a pipe or log file is plain lines, not ``\\r`` frames; at a
terminal (a real pseudo-terminal here) it is one bar redrawn in place."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
from pathlib import Path

from quantdesk.cli_progress import ProgressLine
from tests.hub_fixtures import MINI
from tests.tiny_models import write_tiny_model


def test_quantize_and_download_write_plain_lines_into_a_pipe(tmp_path: Path, fake_hub) -> None:
    source = write_tiny_model(tmp_path / "m-F16.gguf", n_embd=512, n_ff=1536, n_layer=6,
                              quant="F16")  # fmt: skip
    runs = [
        [sys.executable, "-m", "quantdesk", "quantize", str(source), "--type", "Q4_0"],
        [sys.executable, "-m", "quantdesk", "download", MINI, "TinyLlama-Mini-Q2_K.gguf"],
    ]
    for argv in runs:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, done.stderr
        assert "\r" not in done.stderr, done.stderr[:300]
        lines = [line for line in done.stderr.splitlines() if re.match(r"\s*\d+\.\d%  ", line)]
        assert 1 <= len(lines) <= 12, lines  # a tenth of the work per line, not per frame
        assert lines[-1].lstrip().startswith("100.0%")


def test_at_a_terminal_one_bar_is_redrawn(tmp_path: Path) -> None:
    leader, follower = pty.openpty()
    with os.fdopen(follower, "w") as terminal:
        line = ProgressLine(terminal)
        assert line.tty
        for i in range(11):
            line.show(i / 10, f"step {i}")
            line._drawn_at = 0.0  # as if 0.1 s had passed between steps
        line.finish()
    shown = os.read(leader, 65536).decode()
    os.close(leader)
    # (the terminal shows the final newline as \r\n)
    assert shown.count("\r[") == 11 and shown.endswith("\n") and "100.0%  step 10" in shown
