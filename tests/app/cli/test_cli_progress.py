"""Issue 20, item 13: progress in a pipe or log file is plain lines, not ``\\r`` frames; at a
terminal (a real pseudo-terminal here) it is one bar redrawn in place."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
from pathlib import Path

from quantdesk.cli._progress import ProgressLine
from tests.support.hub_fixtures import MINI
from tests.support.tiny_models import write_tiny_model


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
    shown = b""
    while True:  # one read may return only part of what the terminal holds
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the other end is closed and all was read
            break
        if not chunk:
            break
        shown += chunk
    os.close(leader)
    shown = shown.decode()
    # (the terminal shows the final newline as \r\n)
    assert shown.count("\r[") == 11 and shown.endswith("\n") and "100.0%  step 10" in shown


def _ladder(source: Path, data: Path, stderr) -> subprocess.Popen:  # noqa: ANN001
    env = dict(os.environ, QUANTDESK_DATA_DIR=str(data))
    argv = [sys.executable, "-m", "quantdesk", "ladder", str(source), "--types", "Q8_0,Q4_0",
            "--chunks", "3", "--threads", "1", "--out", str(data / "lab")]  # fmt: skip
    return subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=stderr)


def test_ladder_shows_its_progress_within_each_step(tmp_path: Path) -> None:
    """Before, `quantdesk ladder` printed one line per stage and nothing while a stage ran."""
    source = write_tiny_model(tmp_path / "m-F16.gguf", n_embd=256, n_ff=768, n_layer=4,
                              quant="F16")  # fmt: skip
    # in a pipe: plain lines, the whole ladder's percentage rising within the stages
    proc = _ladder(source, tmp_path / "data-pipe", subprocess.PIPE)
    _, err = proc.communicate(timeout=300)
    text = err.decode()
    assert proc.returncode == 0, text
    assert "\r" not in text
    steps = [re.match(r"\s*(\d+\.\d)%  \[(\d)/3\] (\w+): (\w+)$", line)
             for line in text.splitlines() if "%  [" in line]  # fmt: skip
    assert steps and all(steps), text
    percents = [float(m.group(1)) for m in steps]
    assert percents == sorted(percents) and percents[-1] == 100.0
    within = [m.group(3, 4) for m in steps]
    assert within.count(("Q8_0", "quality")) >= 2 and within.count(("Q4_0", "quality")) >= 2
    assert ("Q4_0", "quantizing") in within

    # at a terminal: each stage is one line whose bar is redrawn in place as it runs
    leader, follower = pty.openpty()
    proc = _ladder(source, tmp_path / "data-tty", follower)
    os.close(follower)
    shown = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the command ended and closed the terminal
            break
        if not chunk:
            break
        shown += chunk
    os.close(leader)
    assert proc.wait(timeout=300) == 0, shown[-500:]
    lines = shown.decode().replace("\r\n", "\n").split("\n")
    quality = [line for line in lines if "[2/3] Q8_0: quality" in line]
    assert len(quality) == 1 and quality[0].count("\r[") >= 2, lines  # one line, redrawn
    assert "100.0%  [3/3] Q4_0: quality" in shown.decode()
