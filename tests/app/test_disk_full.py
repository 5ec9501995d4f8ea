"""Issue 20, item 4: a real full disk (a small tmpfs holding QuantDesk's data and models) during
`quantdesk download`: one message saying how much is needed and where, no traceback, no hang,
the item failed (not "running"), the part kept; after space is freed the same command resumes
from the part and finishes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.hub_fixtures import MINI
from tests.support.small_disk import fill_disk, mounted_tmpfs

FILE = "TinyLlama-Mini-Q2_K.gguf"  # 10.8 MB: fits the 96 MB disk until another file fills it
LFS = "/lfs-files/*"


@pytest.fixture
def small_disk(tmp_path: Path):
    """A 96 MB tmpfs (downloads keep a 64 MiB margin); root only (mount), else skipped."""
    with mounted_tmpfs(tmp_path / "small-disk", "96m") as disk:
        yield disk


def _quantdesk(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, QUANTDESK_DATA_DIR=str(data))
    return subprocess.run([sys.executable, "-m", "quantdesk", *args], env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def test_a_full_disk_mid_download_fails_in_words_and_resumes_once_space_is_freed(
    fake_hub, small_disk: Path, hub_root: Path
) -> None:
    from tests.support.fake_hub import slow

    data = small_disk / "quantdesk"
    source = (hub_root / MINI / FILE).read_bytes()
    fake_hub.inject(LFS, slow(2_000_000), methods=("GET",))
    env = dict(os.environ, QUANTDESK_DATA_DIR=str(data))
    running = subprocess.Popen([sys.executable, "-m", "quantdesk", "download", MINI, FILE],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)  # fmt: skip
    deadline = time.monotonic() + 60
    while not [p for p in data.rglob("*.part") if p.stat().st_size > 1_000_000]:
        assert running.poll() is None and time.monotonic() < deadline, running.communicate()
        time.sleep(0.05)
    filler = fill_disk(small_disk)  # the disk is full from here, mid-download
    out, err = running.communicate(timeout=90)  # never hangs
    said = out + err
    assert "Traceback" not in said, said
    assert running.returncode == 2, said
    errors = [line for line in err.splitlines() if line.startswith("quantdesk:")]
    assert len(errors) == 1, err
    assert "disk" in errors[0] and "full" in errors[0] or "filled up" in errors[0], errors[0]
    assert "more is needed in" in errors[0]
    [part] = list(data.rglob("*.part"))
    kept = part.stat().st_size
    assert kept > 1_000_000
    filler.unlink()  # space is freed
    listed = _quantdesk(data, "downloads", "--json")
    assert listed.returncode == 0, listed.stderr
    [item] = json.loads(listed.stdout)
    # the full disk could not take the "failed" state: the file still says where the item
    # stopped, and the next run queues it again (as after a kill -9)
    assert item["state"] in ("failed", "running"), item
    fake_hub.clear_faults()
    fake_hub.reset_log()
    again = _quantdesk(data, "download", MINI, FILE)  # the same command resumes from the part
    assert again.returncode == 0, again.stdout + again.stderr
    [done] = list((data / "models").rglob(FILE))
    assert done.read_bytes() == source
    assert fake_hub.bytes_served(LFS) == len(source) - kept
