"""Issue 20, item 7: `kill -9` of `quantdesk quantize` left its `.part` file behind for good.
The next `quantdesk quantize` or app start removes it (and says so); a running job's part is
never touched."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from quantdesk.engine.quantize.job_parts import PartJournal
from tests.support.tiny_models import write_tiny_model


def _killed_mid_quantize(tmp_path: Path) -> Path:
    """Start `quantdesk quantize` on a model big enough to take a while, kill -9 it (and its
    child) while the part is being written; returns the part left behind."""
    source = write_tiny_model(tmp_path / "big-F16.gguf", n_embd=1024, n_ff=4096, n_layer=8,
                              quant="F16")  # fmt: skip
    out = tmp_path / "big-IQ4_XS.gguf"
    part = out.with_name(out.name + ".part")
    job = subprocess.Popen(
        [sys.executable, "-m", "quantdesk", "quantize", str(source), "--type", "IQ4_XS",
         "--threads", "1", "--out", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while not (part.exists() and part.stat().st_size > 0):
        assert job.poll() is None, "it ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    os.killpg(job.pid, signal.SIGKILL)  # the CLI and its quantize child, as kill -9 does
    job.wait(timeout=30)
    time.sleep(0.2)
    assert part.exists() and not out.exists()
    return part


def test_the_next_quantize_removes_a_killed_ones_part(tmp_path: Path) -> None:
    part = _killed_mid_quantize(tmp_path)
    tiny = write_tiny_model(tmp_path / "tiny-F16.gguf", n_embd=256, n_ff=512, quant="F16")
    after = subprocess.run(
        [sys.executable, "-m", "quantdesk", "quantize", str(tiny), "--type", "Q8_0", "--dry-run"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert after.returncode == 0, after.stderr
    assert not part.exists()
    assert f"Removed {part}" in after.stderr


def test_the_app_start_removes_it_and_says_so(qtbot, tmp_path: Path) -> None:
    part = _killed_mid_quantize(tmp_path)
    from quantdesk.gui import build_app

    window, controller, _paths = build_app(argparse.Namespace(data_dir=None, files=[]))
    qtbot.addWidget(window)
    window.show()
    try:
        controller.start([])
        qtbot.waitUntil(lambda: not part.exists(), timeout=30_000)
        qtbot.waitUntil(lambda: "unfinished file" in window.banner.label.text(), timeout=10_000)
        assert part.name in window.banner.label.text()
    finally:
        controller.shutdown()


def test_a_running_jobs_part_is_left_alone(tmp_path: Path) -> None:
    journal = PartJournal(tmp_path / "jobs")
    part = tmp_path / "x.gguf.part"
    part.write_bytes(b"being written")
    with journal.track(part):
        assert journal.clean_stale() == [] and part.exists()  # this process is alive
    assert not list((tmp_path / "jobs").iterdir())  # a finished job leaves no marker
