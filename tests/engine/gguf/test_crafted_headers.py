"""Issue 20, item 10: header values no real model has, and files that are no regular files,
end in a message within seconds: the CLI, the estimate and the window never hang."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.tiny_models import write_tiny_model, write_tiny_model_with_metadata


def _quantdesk(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "quantdesk", *args], capture_output=True,
                          text=True, timeout=timeout)  # fmt: skip


@pytest.mark.parametrize("layers", [50_000_000, 2**32 - 1])
@pytest.mark.parametrize("command", ["estimate", "inspect"])
def test_an_absurd_layer_count_is_refused_in_words(tmp_path: Path, layers: int,
                                                   command: str) -> None:  # fmt: skip
    path = write_tiny_model_with_metadata(tmp_path / "crafted.gguf",
                                          {"llama.block_count": ("u32", layers)})  # fmt: skip
    started = time.monotonic()
    done = _quantdesk(command, str(path))
    assert time.monotonic() - started < 30
    said = done.stdout + done.stderr
    assert "Traceback" not in said and "MemoryError" not in said, said
    if command == "estimate":
        assert done.returncode == 2 and "512" in done.stderr and f"{layers:,}" in done.stderr


def test_a_fifo_named_gguf_is_not_read(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.gguf"
    os.mkfifo(fifo)
    for command in ("inspect", "estimate", "run"):
        args = [command, str(fifo)] + (["--prompt", "hi"] if command == "run" else [])
        done = _quantdesk(*args, timeout=30)  # a FIFO blocked the first read for ever
        assert done.returncode == 2, (command, done.stderr)
        assert "not a regular file" in done.stderr and "Traceback" not in done.stderr


def test_a_symlink_loop_is_said_in_words(tmp_path: Path) -> None:
    loop = tmp_path / "loop.gguf"
    loop.symlink_to(tmp_path / "loop2.gguf")
    (tmp_path / "loop2.gguf").symlink_to(loop)
    for command in ("inspect", "estimate", "run"):
        args = [command, str(loop)] + (["--prompt", "hi"] if command == "run" else [])
        done = _quantdesk(*args, timeout=30)
        assert done.returncode == 2 and "Traceback" not in done.stderr, (command, done.stderr)
        assert "symbolic links" in done.stderr or "loop" in done.stderr


def test_a_real_model_still_estimates(tmp_path: Path) -> None:
    done = _quantdesk("estimate", str(write_tiny_model(tmp_path / "ok.gguf")))
    assert done.returncode == 0, done.stderr


def test_the_window_says_so_and_stays_usable(qtbot, tmp_path: Path) -> None:
    import argparse

    from quantdesk.gui import build_app

    layers = {"llama.block_count": ("u32", 50_000_000)}
    crafted = write_tiny_model_with_metadata(tmp_path / "models" / "crafted.gguf", layers)
    os.mkfifo(tmp_path / "models" / "pipe.gguf")
    window, controller, _ = build_app(argparse.Namespace(data_dir=None, files=[]))
    qtbot.addWidget(window)
    window.show()
    try:
        controller.start([])
        with qtbot.waitSignal(controller.models.modelLoadFailed, timeout=30_000) as failed:
            controller.imports.import_files([crafted], mode="reference", load_first=True)
        assert "512" in failed.args[0] and "50,000,000" in failed.args[0]
        assert not controller.models.loading  # not left "Loading…"
        with qtbot.waitSignal(controller.library.scanned, timeout=30_000):
            controller.library.add_folder(tmp_path / "models")  # the scan ends: no FIFO read
        controller.imports.import_files([tmp_path / "models" / "pipe.gguf"], mode="reference")
        qtbot.waitUntil(lambda: "not a regular file" in window.banner.label.text(), timeout=30_000)
        assert "pipe.gguf" in window.banner.label.text()
    finally:
        controller.shutdown()
