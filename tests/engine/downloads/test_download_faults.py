"""The download fault matrix, widened: repeated drops, long 5xx bursts, 403/404 mid-download,
damaged parts on disk, a full disk through the queue, and the queue's own guarantees.

Real HTTP against the fake hub, real files, real SQLite; ``bytes_served`` shows that every
resume asks only for the missing bytes.
"""

from __future__ import annotations

import errno
import time
from pathlib import Path

import pytest

from quantdesk.engine.downloads import _transfer as transfer
from quantdesk.engine.downloads import queue as dl
from quantdesk.engine.downloads._transfer import download_file, part_path, target_path
from quantdesk.engine.downloads.queue import DownloadManager, DownloadState
from quantdesk.engine.errors import (
    AuthRequired,
    DownloadFailed,
    HashMismatch,
    InsufficientDiskSpace,
    QuantDeskError,
    RepoNotFound,
)
from quantdesk.engine.hub.client import HubClient
from tests.support.fake_hub import drop_after, http_status, slow
from tests.support.hub_fixtures import MINI

FILE = "TinyLlama-Mini-Q2_K.gguf"
LFS = "/lfs-files/*"


@pytest.fixture
def source(hub_root: Path) -> bytes:
    return (hub_root / MINI / FILE).read_bytes()


def _client(tmp_path: Path) -> HubClient:
    return HubClient(cache_dir=tmp_path / "cache", backoff=0.01)


def _manager(tmp_path: Path, **kw) -> DownloadManager:
    return DownloadManager(tmp_path / "q.sqlite3", tmp_path / "hub", _client(tmp_path), **kw)


def _nothing_in_library(root: Path) -> bool:
    return not [p for p in root.rglob("*.gguf") if p.is_file()]


def test_more_drops_than_the_client_retries_still_finish(
    fake_hub, tmp_path: Path, source: bytes
) -> None:
    fake_hub.inject(LFS, drop_after(1_500_000, times=5), methods=("GET",))
    result = download_file(_client(tmp_path), MINI, FILE, tmp_path / "m")
    assert result.path.read_bytes() == source
    gets = fake_hub.requests(LFS, method="GET")
    assert [g.fault for g in gets[:5]] == ["drop"] * 5 and len(gets) == 6
    assert len(source) <= fake_hub.bytes_served(LFS) <= len(source) + 5 * (1 << 20)
    assert [g.range for g in gets[1:]] and all(g.range for g in gets[1:])  # every retry resumed


def test_a_long_503_burst_is_outlasted(fake_hub, tmp_path: Path, source: bytes) -> None:
    fake_hub.inject(LFS, http_status(503, times=5), methods=("GET",))
    result = download_file(_client(tmp_path), MINI, FILE, tmp_path / "m")
    assert result.path.read_bytes() == source


def test_a_server_that_stays_down_is_a_clear_error(fake_hub, tmp_path: Path) -> None:
    fake_hub.inject(LFS, http_status(500, times=None), methods=("GET",))
    with pytest.raises(DownloadFailed, match="kept failing.*HTTP 500.*retry to resume"):
        download_file(_client(tmp_path), MINI, FILE, tmp_path / "m")
    assert _nothing_in_library(tmp_path / "m")


def test_a_file_gone_from_the_cdn_is_a_clear_404(fake_hub, tmp_path: Path) -> None:
    fake_hub.inject(LFS, http_status(404, error_code="EntryNotFound"), methods=("GET",))
    with pytest.raises(RepoNotFound, match=FILE):
        download_file(_client(tmp_path), MINI, FILE, tmp_path / "m")
    assert _nothing_in_library(tmp_path / "m")


def test_403_says_what_to_do(fake_hub, tmp_path: Path) -> None:
    fake_hub.inject(LFS, http_status(403), methods=("GET",))
    with pytest.raises(AuthRequired, match="request access|token"):
        download_file(_client(tmp_path), MINI, FILE, tmp_path / "m")
    assert _nothing_in_library(tmp_path / "m")


def test_a_damaged_part_on_disk_is_caught_by_the_rehash(
    fake_hub, tmp_path: Path, source: bytes
) -> None:
    part = part_path(target_path(tmp_path / "m", MINI, FILE))
    part.parent.mkdir(parents=True)
    part.write_bytes(b"\xff" * 1000 + source[1000:3_000_000])  # e.g. a bad sector, bit rot
    with pytest.raises(HashMismatch, match="deleted"):
        download_file(_client(tmp_path), MINI, FILE, tmp_path / "m")
    assert not part.exists() and _nothing_in_library(tmp_path / "m")
    assert fake_hub.bytes_served(LFS) == len(source) - 3_000_000  # it did resume, then checked
    fake_hub.reset_log()
    result = download_file(_client(tmp_path), MINI, FILE, tmp_path / "m")
    assert result.path.read_bytes() == source and fake_hub.bytes_served(LFS) == len(source)


def test_a_part_longer_than_the_file_is_discarded(fake_hub, tmp_path: Path, source: bytes) -> None:
    part = part_path(target_path(tmp_path / "m", MINI, FILE))
    part.parent.mkdir(parents=True)
    part.write_bytes(source + b"extra")
    result = download_file(_client(tmp_path), MINI, FILE, tmp_path / "m")
    assert result.path.read_bytes() == source


class _DiskFillsAt:
    """Test writer for ``download._open_part``: the disk is full once the part has ``limit``
    bytes; what fits is written, then ``OSError(ENOSPC)``, as the kernel does."""

    def __init__(self, limit: int):
        self.limit = limit

    def __call__(self, path: Path) -> _DiskFillsAt:
        self._file = path.open("ab")
        return self

    def write(self, data: bytes) -> int:
        room = self.limit - self._file.tell()
        if len(data) > room:
            self._file.write(data[: max(room, 0)])
            raise OSError(errno.ENOSPC, "No space left on device")
        return self._file.write(data)

    def flush(self) -> None:
        self._file.flush()

    def __enter__(self) -> _DiskFillsAt:
        return self

    def __exit__(self, *exc: object) -> None:
        self._file.close()


def test_disk_full_fails_the_item_and_retry_fetches_only_the_rest(
    fake_hub, tmp_path: Path, source: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transfer, "_open_part", _DiskFillsAt(3_000_000))
    manager = _manager(tmp_path)
    manager.start()
    try:
        item = manager.enqueue(MINI, [FILE])
        failed = manager.wait(item.id, 30)
        assert failed.state == DownloadState.FAILED and "disk filled up" in failed.error
        assert part_path(item.dest).stat().st_size == 3_000_000 and not item.dest.exists()
        monkeypatch.undo()  # space was freed
        fake_hub.reset_log()
        manager.retry(item.id)
        assert manager.wait(item.id, 30).state == DownloadState.DONE
        assert item.dest.read_bytes() == source
        assert fake_hub.bytes_served(LFS) == len(source) - 3_000_000
    finally:
        manager.shutdown()


def test_refusal_before_starting_names_the_figures(
    fake_hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: bytes
) -> None:
    monkeypatch.setattr(dl, "_free_bytes", lambda _folder: 1_000_000)
    manager = _manager(tmp_path)
    try:
        with pytest.raises(InsufficientDiskSpace, match="1.0 MB free") as info:
            manager.enqueue(MINI, [FILE])
        assert info.value.needed == len(source) and info.value.free == 1_000_000
        assert manager.items() == []
    finally:
        manager.shutdown()


def test_unsafe_names_never_reach_the_queue(fake_hub, tmp_path: Path) -> None:
    manager = _manager(tmp_path)
    try:
        for repo, name in ((MINI, "../../evil.gguf"), ("../x", FILE), (MINI, "a//b.gguf")):
            with pytest.raises(DownloadFailed, match="unsafe"):
                manager.enqueue(repo, [name])
        assert manager.items() == [] and fake_hub.requests() == []
    finally:
        manager.shutdown()


def test_progress_reports_speed_eta_and_is_throttled(
    fake_hub, tmp_path: Path, source: bytes
) -> None:
    fake_hub.inject(LFS, slow(8_000_000), methods=("GET",))
    seen: list[tuple[float, dl.DownloadItem]] = []
    manager = _manager(tmp_path, on_change=lambda i: seen.append((time.monotonic(), i)))
    manager.start()
    try:
        item = manager.enqueue(MINI, [FILE])
        assert manager.wait(item.id, 30).state == DownloadState.DONE
    finally:
        manager.shutdown()
    running = [(t, i) for t, i in seen if i.state == DownloadState.RUNNING and i.done_bytes]
    assert len(running) >= 3
    assert all(i.speed_bps > 0 and i.eta_s is not None for _, i in running)
    span = running[-1][0] - running[0][0]
    assert len(running) <= 10 * span + 2  # at most ~10 a second
    assert 1e6 < running[-1][1].speed_bps < 3 * 8e6  # about the server's rate
    states = [i.state for _, i in seen]
    assert states[0] == "queued" and states[-1] == "done"


def test_states_survive_a_restart_and_cli_only_runs_its_item(
    fake_hub, tmp_path: Path, source: bytes
) -> None:
    split = [
        "Q5_K_M/TinyLlama-Mini-Q5_K_M-00001-of-00002.gguf",
        "Q5_K_M/TinyLlama-Mini-Q5_K_M-00002-of-00002.gguf",
    ]
    first = _manager(tmp_path)  # not started: items stay as set
    paused = first.enqueue(MINI, [FILE])
    first.pause(paused.id)
    other = first.enqueue(MINI, split)
    first.shutdown()
    second = _manager(tmp_path)
    try:
        assert [(i.id, i.state) for i in second.items()] == [
            (paused.id, "paused"),
            (other.id, "queued"),
        ]
        assert second.items()[1].created_at <= second.items()[1].updated_at
        second.resume(paused.id)
        second.start(only=[paused.id])
        assert second.wait(paused.id, 30).state == "done"
        assert second.get(other.id).state == "queued"  # not this run's business
        assert fake_hub.requests(LFS, method="GET") and all(
            "Q5_K_M" not in r.path for r in fake_hub.requests(method="GET")
        )
    finally:
        second.shutdown()


def test_a_finished_file_deleted_by_the_user_is_fetched_again(
    fake_hub, tmp_path: Path, source: bytes
) -> None:
    manager = _manager(tmp_path)
    manager.start()
    try:
        item = manager.enqueue(MINI, [FILE])
        assert manager.wait(item.id, 30).state == "done"
        assert manager.enqueue(MINI, [FILE]).state == "done"  # present: nothing to do
        item.dest.unlink()
        again = manager.enqueue(MINI, [FILE])
        assert again.id == item.id and manager.wait(item.id, 30).state == "done"
        assert item.dest.read_bytes() == source
        manager.remove(item.id)
        assert manager.items() == [] and item.dest.exists()  # forgetting keeps the model
    finally:
        manager.shutdown()


def test_a_split_set_paused_in_part_two_resumes_without_refetching_part_one(
    fake_hub, hub_root: Path, tmp_path: Path
) -> None:
    split = [
        "Q5_K_M/TinyLlama-Mini-Q5_K_M-00001-of-00002.gguf",
        "Q5_K_M/TinyLlama-Mini-Q5_K_M-00002-of-00002.gguf",
    ]
    sizes = [(hub_root / MINI / name).stat().st_size for name in split]
    fake_hub.inject(LFS, slow(20_000_000), methods=("GET",))
    manager = _manager(tmp_path)
    manager.start()
    try:
        item = manager.enqueue(MINI, split)
        assert item.total_bytes == sum(sizes) and item.dest.name == Path(split[0]).name
        deadline = time.monotonic() + 30
        while manager.get(item.id).done_bytes < sizes[0] + 1_000_000:  # worker thread, no Qt
            assert time.monotonic() < deadline
            time.sleep(0.01)
        manager.pause(item.id)
        assert manager.wait(item.id, 30).state == "paused"
        second = part_path(tmp_path / "hub" / MINI / split[1])
        kept = second.stat().st_size
        assert item.dest.exists() and 0 < kept < sizes[1]  # part 1 final, part 2 partial
        fake_hub.clear_faults()
        fake_hub.reset_log()
        manager.resume(item.id)
        done = manager.wait(item.id, 30)
        assert done.state == "done" and done.fraction == 1.0
        for name in split:
            got = (tmp_path / "hub" / MINI / name).read_bytes()
            assert got == (hub_root / MINI / name).read_bytes()
        assert fake_hub.bytes_served(LFS) == sizes[1] - kept  # part 1 was not fetched again
    finally:
        manager.shutdown()


@pytest.mark.parametrize("where", ["/*/resolve/*", LFS])
def test_a_redirect_loop_fails_the_item_with_its_reason_and_the_queue_goes_on(
    fake_hub, tmp_path: Path, source: bytes, where: str
) -> None:
    """Issue 20, item 5: an exception the worker did not expect (httpx's TooManyRedirects on
    the hub or the CDN) ended the worker: the item stayed "running" and nothing else ran."""
    from tests.support.fake_hub import redirect_loop

    fake_hub.inject(where, redirect_loop(), methods=("GET",))  # the download, not its HEAD
    manager = _manager(tmp_path)
    manager.start()
    try:
        item = manager.enqueue(MINI, [FILE])
        failed = manager.wait(item.id, 60)
        assert failed.state == DownloadState.FAILED, failed
        assert "redirect" in failed.error.lower()
        fake_hub.clear_faults()
        manager.retry(item.id)  # the worker is alive: the retry runs
        assert manager.wait(item.id, 60).state == DownloadState.DONE
        assert item.dest.read_bytes() == source
    finally:
        manager.shutdown()


def test_a_redirect_loop_on_the_hub_api_is_said_in_words(fake_hub, tmp_path: Path) -> None:
    from tests.support.fake_hub import redirect_loop

    fake_hub.inject("/api/*", redirect_loop())
    with pytest.raises(QuantDeskError, match="redirect loop"):
        _client(tmp_path).search("llama")
    with pytest.raises(QuantDeskError, match="redirect loop"):
        _client(tmp_path).list_gguf(MINI)


def test_without_x_linked_etag_the_listing_sha256_still_catches_damage(
    fake_hub, tmp_path: Path, source: bytes
) -> None:
    """Issue 20, item 6: with no X-Linked-Etag nothing was hashed, damaged bytes were kept and
    called verified. The sha256 now comes from the hub's file listing."""
    import hashlib

    from tests.support.fake_hub import corrupt, no_linked_etag

    fake_hub.inject("/*/resolve/*", no_linked_etag())
    fake_hub.inject(LFS, corrupt(1_000_000, 1_000_100), methods=("GET",))
    manager = _manager(tmp_path)
    manager.start()
    try:
        item = manager.enqueue(MINI, [FILE])
        failed = manager.wait(item.id, 60)
        assert failed.state == DownloadState.FAILED and "arrived damaged" in failed.error
        assert not item.dest.exists()
        fake_hub.clear_faults()
        fake_hub.inject("/*/resolve/*", no_linked_etag())  # still no header: still checked
        manager.retry(item.id)
        assert manager.wait(item.id, 60).state == DownloadState.DONE
        assert item.dest.read_bytes() == source
        assert manager.verified_sha256(item.id) == hashlib.sha256(source).hexdigest()
    finally:
        manager.shutdown()
