"""The persistent download queue against the fake hub (real HTTP, real SQLite, real files)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from quantdesk.engine.downloads import queue as dl
from quantdesk.engine.downloads.queue import DownloadManager
from quantdesk.engine.errors import InsufficientDiskSpace
from quantdesk.engine.hub.client import HubClient
from tests.support.fake_hub import slow
from tests.support.hub_fixtures import MINI

FILE = "TinyLlama-Mini-Q2_K.gguf"
SPLIT = [
    "Q5_K_M/TinyLlama-Mini-Q5_K_M-00001-of-00002.gguf",
    "Q5_K_M/TinyLlama-Mini-Q5_K_M-00002-of-00002.gguf",
]


def _manager(tmp_path: Path, **kw) -> DownloadManager:
    client = HubClient(cache_dir=tmp_path / "cache", backoff=0.01)
    manager = DownloadManager(tmp_path / "downloads.sqlite3", tmp_path / "hub", client, **kw)
    manager.start()
    return manager


def _until(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # worker threads, not Qt: polling is the synchronization here
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_a_file_and_a_split_set_download_in_parallel(fake_hub, hub_root: Path, tmp_path) -> None:
    changes = []
    manager = _manager(tmp_path, parallel=2, on_change=changes.append)
    try:
        one = manager.enqueue(MINI, [FILE])
        split = manager.enqueue(MINI, SPLIT)
        assert manager.enqueue(MINI, [FILE]).id == one.id  # no duplicates
        assert manager.wait(one.id, 60).state == "done"
        assert manager.wait(split.id, 60).state == "done"
        assert one.dest.read_bytes() == (hub_root / MINI / FILE).read_bytes()
        for name in SPLIT:
            got = tmp_path / "hub" / MINI / name
            assert got.read_bytes() == (hub_root / MINI / name).read_bytes()
        assert {c.state for c in changes} >= {"queued", "running", "done"}
        assert manager.get(split.id).fraction == 1.0
    finally:
        manager.shutdown()


def test_pause_resume_cancel(fake_hub, tmp_path: Path) -> None:
    fake_hub.inject("/lfs-files/*", slow(1_500_000), methods=("GET",))
    manager = _manager(tmp_path)
    try:
        item = manager.enqueue(MINI, [FILE])
        _until(lambda: manager.get(item.id).done_bytes > 300_000)
        manager.pause(item.id)
        assert manager.wait(item.id, 30).state == "paused"
        part = item.dest.with_name(item.dest.name + ".part")
        assert part.exists()
        manager.cancel(item.id)
        assert manager.get(item.id).state == "cancelled" and not part.exists()
        manager.retry(item.id)
        fake_hub.clear_faults()
        assert manager.wait(item.id, 60).state == "done"
    finally:
        manager.shutdown()


def test_the_queue_survives_a_restart(fake_hub, hub_root: Path, tmp_path: Path) -> None:
    fake_hub.inject("/lfs-files/*", slow(1_500_000), methods=("GET",))
    first = _manager(tmp_path)
    item = first.enqueue(MINI, [FILE])
    _until(lambda: first.get(item.id).done_bytes > 300_000)
    first.shutdown()  # like closing the app mid-download
    fake_hub.clear_faults()
    fake_hub.reset_log()
    second = _manager(tmp_path)
    try:
        [again] = second.items()
        assert again.id == item.id
        assert second.wait(item.id, 60).state == "done"
        assert item.dest.read_bytes() == (hub_root / MINI / FILE).read_bytes()
        size = item.dest.stat().st_size
        assert fake_hub.bytes_served("*") < size  # only the missing bytes
    finally:
        second.shutdown()


def test_not_enough_disk_is_refused_before_starting(
    fake_hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dl, "_free_bytes", lambda _folder: 1000)
    manager = _manager(tmp_path)
    try:
        with pytest.raises(InsufficientDiskSpace, match="Not enough disk space"):
            manager.enqueue(MINI, [FILE])
        assert manager.items() == []
    finally:
        manager.shutdown()


def test_downloads_cli_lists_the_queue(fake_hub, tmp_path: Path) -> None:
    import json
    import os
    import subprocess
    import sys

    from quantdesk.config.paths import resolve_paths

    paths = resolve_paths(tmp_path / "qd")
    client = HubClient(cache_dir=tmp_path / "cache")
    manager = DownloadManager(
        paths.data_dir / "downloads.sqlite3", paths.models_dir / "hub", client
    )
    manager.start()
    item = manager.enqueue(MINI, [FILE])
    manager.wait(item.id, 60)
    manager.shutdown()
    env = {**os.environ, "QUANTDESK_DATA_DIR": str(tmp_path / "qd")}
    out = subprocess.run(
        [sys.executable, "-m", "quantdesk", "downloads", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    [listed] = json.loads(out.stdout)
    assert listed["state"] == "done" and listed["files"] == [FILE]
