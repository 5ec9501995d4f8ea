"""Downloads against the fake hub: real HTTP, real files, injected faults."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from quantdesk.engine.downloads._transfer import Paused, download_file, target_path
from quantdesk.engine.errors import DownloadFailed, HashMismatch, RepoNotFound
from quantdesk.engine.hub.client import HubClient
from tests.support.fake_hub import corrupt, drop_after, http_status, slow
from tests.support.hub_fixtures import MINI

FILE = "TinyLlama-Mini-Q2_K.gguf"


@pytest.fixture
def source(hub_root: Path) -> bytes:
    return (hub_root / MINI / FILE).read_bytes()


def _client(tmp_path: Path) -> HubClient:
    return HubClient(cache_dir=tmp_path / "cache", backoff=0.01)


def test_download_is_verified_and_atomic(fake_hub, tmp_path: Path, source: bytes) -> None:
    seen: list[tuple[int, int]] = []
    result = download_file(
        _client(tmp_path), MINI, FILE, tmp_path / "m", progress=lambda d, t: seen.append((d, t))
    )
    assert result.path == tmp_path / "m" / MINI / FILE
    assert result.path.read_bytes() == source
    assert result.sha256 and seen[-1] == (len(source), len(source))
    assert not list((tmp_path / "m").rglob("*.part"))


@pytest.mark.parametrize("cut", [1, 700_000, 5_000_000])
def test_a_dropped_connection_resumes_with_only_missing_bytes(
    fake_hub, tmp_path: Path, source: bytes, cut: int
) -> None:
    fake_hub.inject("/lfs-files/*", drop_after(cut), methods=("GET",))
    result = download_file(_client(tmp_path), MINI, FILE, tmp_path / "m")
    assert result.path.read_bytes() == source
    served = fake_hub.bytes_served("*")
    assert len(source) <= served <= len(source) + (1 << 20)  # at most one chunk re-sent
    gets = fake_hub.requests("/lfs-files/*", method="GET")
    assert len(gets) >= 2 and gets[0].fault == "drop"  # it really was cut, then resumed


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_are_retried(fake_hub, tmp_path: Path, source: bytes, status: int) -> None:
    fake_hub.inject("*", http_status(status, times=2), methods=("GET",))
    result = download_file(_client(tmp_path), MINI, FILE, tmp_path / "m")
    assert result.path.read_bytes() == source


def test_wrong_bytes_are_caught_and_never_reach_the_library(fake_hub, tmp_path: Path) -> None:
    fake_hub.inject("/lfs-files/*", corrupt(1000, 1100), methods=("GET",))
    with pytest.raises(HashMismatch, match="damaged"):
        download_file(_client(tmp_path), MINI, FILE, tmp_path / "m")
    assert not list((tmp_path / "m").rglob("*.gguf*"))  # neither final file nor part


def test_missing_file_is_a_clear_error(fake_hub, tmp_path: Path) -> None:
    with pytest.raises((RepoNotFound, DownloadFailed)):
        download_file(_client(tmp_path), "nobody/nothing", FILE, tmp_path / "m")


def test_pause_keeps_the_part_and_resume_finishes(fake_hub, tmp_path: Path, source: bytes) -> None:
    fake_hub.inject("/lfs-files/*", slow(2_000_000, times=1), methods=("GET",))
    stop = threading.Event()

    def progress(done: int, _total: int) -> None:
        if done > 500_000:
            stop.set()

    with pytest.raises(Paused):
        download_file(_client(tmp_path), MINI, FILE, tmp_path / "m", stop=stop, progress=progress)
    part = target_path(tmp_path / "m", MINI, FILE).with_name(FILE + ".part")
    kept = part.stat().st_size
    assert 0 < kept < len(source)
    fake_hub.reset_log()
    result = download_file(_client(tmp_path), MINI, FILE, tmp_path / "m")
    assert result.path.read_bytes() == source
    assert 0 <= fake_hub.bytes_served("*") - (len(source) - kept) < 4096  # only the rest


def test_unsafe_names_are_refused(tmp_path: Path) -> None:
    for repo, path in (("a/b", "../x.gguf"), ("../a", "x.gguf"), ("a/b", "/etc/passwd")):
        with pytest.raises(DownloadFailed):
            target_path(tmp_path, repo, path)


def test_killed_mid_file_then_rerun_fetches_only_the_rest(
    fake_hub, tmp_path: Path, source: bytes
) -> None:
    fake_hub.inject("/lfs-files/*", slow(1_000_000, times=1), methods=("GET",))
    env = {**os.environ, "HF_ENDPOINT": fake_hub.endpoint, "QUANTDESK_DATA_DIR": str(tmp_path)}
    cmd = [sys.executable, "-m", "quantdesk", "download", MINI, FILE, "--json"]
    child = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    part = tmp_path / "models" / "hub" / MINI / (FILE + ".part")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (not part.exists() or part.stat().st_size < 1_500_000):
        time.sleep(0.05)  # polling a separate process's file, not Qt synchronization
    child.send_signal(signal.SIGKILL)
    child.wait()
    kept = part.stat().st_size
    assert 0 < kept < len(source)
    fake_hub.reset_log()
    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert rerun.returncode == 0, rerun.stderr
    final = tmp_path / "models" / "hub" / MINI / FILE
    assert final.read_bytes() == source and not part.exists()
    assert 0 <= fake_hub.bytes_served("*") - (len(source) - kept) < 4096  # only the rest


def test_401_says_to_log_in(fake_hub, tmp_path: Path) -> None:
    from quantdesk.engine.errors import AuthRequired

    fake_hub.inject("*", http_status(401, times=None), methods=("HEAD", "GET"))
    with pytest.raises(AuthRequired):
        download_file(_client(tmp_path), MINI, FILE, tmp_path / "m")
    assert not list((tmp_path / "m").rglob("*.gguf"))


def test_a_slow_server_still_completes(fake_hub, tmp_path: Path, source: bytes) -> None:
    fake_hub.inject("/lfs-files/*", slow(8_000_000), methods=("GET",))
    result = download_file(_client(tmp_path), MINI, FILE, tmp_path / "m")
    assert result.path.read_bytes() == source


def test_disk_full_mid_write_keeps_the_part_and_resumes(
    fake_hub, tmp_path: Path, source: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    from quantdesk.engine.downloads import _transfer as module
    from quantdesk.engine.errors import InsufficientDiskSpace

    class FullDisk:
        """A part file on a disk that fills after 2 MB (ENOSPC, as the kernel reports it)."""

        def __init__(self, path: Path) -> None:
            self._file = path.open("ab")

        def write(self, data: bytes) -> int:
            room = 2_000_000 - self._file.tell()
            if len(data) > room:  # like the kernel: what fits is written, then ENOSPC
                self._file.write(data[: max(room, 0)])
                raise OSError(errno.ENOSPC, "No space left on device")
            return self._file.write(data)

        def __getattr__(self, name: str):  # flush, fileno, close...
            return getattr(self._file, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc: object) -> None:
            self._file.close()

    original = module._open_part
    monkeypatch.setattr(module, "_open_part", FullDisk)
    with pytest.raises(InsufficientDiskSpace, match="disk filled up"):
        download_file(_client(tmp_path), MINI, FILE, tmp_path / "m")
    part = target_path(tmp_path / "m", MINI, FILE).with_name(FILE + ".part")
    assert part.stat().st_size == 2_000_000
    assert not target_path(tmp_path / "m", MINI, FILE).exists()
    monkeypatch.setattr(module, "_open_part", original)  # space was freed
    result = download_file(_client(tmp_path), MINI, FILE, tmp_path / "m")
    assert result.path.read_bytes() == source


def test_ctrl_c_pauses_and_the_queue_shows_it(fake_hub, tmp_path: Path, source: bytes) -> None:
    import json

    fake_hub.inject("/lfs-files/*", slow(1_000_000), methods=("GET",))
    env = {**os.environ, "HF_ENDPOINT": fake_hub.endpoint, "QUANTDESK_DATA_DIR": str(tmp_path)}
    cmd = [sys.executable, "-m", "quantdesk", "download", MINI, FILE]
    child = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    part = tmp_path / "models" / "hub" / MINI / (FILE + ".part")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (not part.exists() or part.stat().st_size < 1_000_000):
        time.sleep(0.05)  # polling a separate process's file
    child.send_signal(signal.SIGINT)
    _out, err = child.communicate(timeout=30)
    assert child.returncode == 130 and b"Paused" in err
    listed = subprocess.run(
        [sys.executable, "-m", "quantdesk", "downloads", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert json.loads(listed.stdout)[0]["state"] == "paused"
    fake_hub.clear_faults()
    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert rerun.returncode == 0, rerun.stderr
    assert (tmp_path / "models" / "hub" / MINI / FILE).read_bytes() == source
