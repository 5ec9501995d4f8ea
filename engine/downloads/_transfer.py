"""Download one Hub file: resumable, verified, never a partial file where a model belongs.

``huggingface_hub.hf_hub_download`` cannot pause on request, report progress to
our own callback per chunk, or resume into a file we name, so the transfer is
ours, built on the Hub client's metadata (size, LFS sha256, commit pinning),
session, token and retry policy. Bytes go to ``<name>.part``; a resumed part is
re-hashed from disk first; only a file whose size and sha256 match the Hub's is
renamed (atomically) to its final name.
"""

from __future__ import annotations

import errno
import hashlib
import os
import queue
import re
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from huggingface_hub import get_session
from huggingface_hub.utils import build_hf_headers, hf_raise_for_status

from quantdesk.engine.errors import (
    DownloadFailed,
    HashMismatch,
    HubError,
    HubUnreachable,
    InsufficientDiskSpace,
)
from quantdesk.engine.gguf.model_info import human_bytes
from quantdesk.engine.hub.client import HubClient, RemoteFile

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
DISK_MARGIN = 64 * 1024 * 1024
MAX_STALLED = 3
"""Failed attempts in a row (each after the client's own retries) with no new byte."""
MAX_BACKOFF_S = 10.0
READ_CHUNK = 1 << 20
"""Bytes handed on per write: small enough that pause and progress react within a moment on a
slow link, large enough to keep per-chunk Python overhead off the loopback benchmark."""
Progress = Callable[[int, int], None]  # (bytes on disk, total bytes)


def _open_part(part: Path) -> BinaryIO:
    """Open the part file for appending.

    Test hook: every byte of a download is written through the object this returns, so a test
    can replace this function (``monkeypatch.setattr(download, "_open_part", ...)``) with one
    returning a writer whose ``write`` raises ``OSError(errno.ENOSPC)`` to simulate a full disk.
    """
    return part.open("ab")


def part_path(final: Path) -> Path:
    """Where the bytes of ``final`` collect until they are verified: ``<name>.part``."""
    return final.with_name(final.name + ".part")


class Paused(Exception):
    """The transfer stopped because pause was requested; the part file is kept."""


@dataclass(frozen=True)
class DownloadedFile:
    """A file in its final place; ``verified``: its sha256 matched the one the hub gave (False
    when the hub gave none to compare with: ``sha256`` is then only what arrived)."""

    path: Path
    size: int
    sha256: str | None
    bytes_transferred: int
    verified: bool = False


def target_path(dest_root: Path, repo_id: str, path: str) -> Path:
    """Where a repo file lands: ``dest_root/owner/name/path``; refuses anything that escapes.

    Only plain relative names are accepted: no ``..``, ``.`` or empty segments, no leading
    ``/``, no backslash or drive colon (which Windows would read as separators).
    """
    parts = path.split("/")
    if (
        not _REPO_ID.match(repo_id)
        or repo_id.split("/")[1] in (".", "..")
        or any(p in ("", ".", "..") for p in parts)
        or any(c in path for c in "\\:\0")
    ):
        raise DownloadFailed(
            f"Refusing the unsafe name {repo_id}/{path}: it could write outside the models "
            "folder. Check the repository and file name."
        )
    owner, name = repo_id.split("/")
    return dest_root.joinpath(owner, name, *parts)


def _hash_existing(part: Path, hasher: hashlib._Hash) -> int:
    size = 0
    with part.open("rb") as f:
        while block := f.read(8 << 20):
            hasher.update(block)
            size += len(block)
    return size


class _HashThread:
    """sha256 on its own thread: hashlib releases the GIL, so hashing a chunk overlaps reading
    the next one (it took a third of the transfer thread's time on loopback)."""

    def __init__(self, hasher: hashlib._Hash) -> None:
        self._hasher = hasher
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=32)
        self._thread = threading.Thread(target=self._run, name="download-sha256", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (chunk := self._queue.get()) is not None:
            self._hasher.update(chunk)

    def update(self, chunk: bytes) -> None:
        """Hash ``chunk`` after the ones before it."""
        self._queue.put(chunk)

    def __enter__(self) -> _HashThread:
        return self

    def __exit__(self, *exc: object) -> None:
        self._queue.put(None)
        self._thread.join()


def download_file(
    client: HubClient,
    repo_id: str,
    path: str,
    dest_root: Path,
    *,
    revision: str | None = None,
    stop: threading.Event | None = None,
    progress: Progress | None = None,
) -> DownloadedFile:
    """Fetch ``repo_id/path`` into ``dest_root``; resumes a part left by an earlier attempt.

    Raises Paused (part kept) when ``stop`` is set, HashMismatch (part deleted) when the
    bytes do not match the Hub's sha256, InsufficientDiskSpace, DownloadFailed, or a HubError.
    """
    remote = client.resolve_file(repo_id, path, revision)
    final = target_path(dest_root, repo_id, path)
    final.parent.mkdir(parents=True, exist_ok=True)
    part = part_path(final)
    expected_sha = remote.etag.strip('"').lower() if remote.etag else None
    expected_sha = expected_sha if expected_sha and _SHA256.match(expected_sha) else None
    total = remote.size or 0
    if final.exists() and remote.size is not None and final.stat().st_size == remote.size:
        # Already here (e.g. part 1 of a split set when a pause came during part 2): check
        # it against the Hub's hash instead of fetching it again.
        digest = hashlib.sha256()
        _hash_existing(final, digest)
        if expected_sha is None or digest.hexdigest() == expected_sha:
            part.unlink(missing_ok=True)
            return DownloadedFile(final, remote.size, digest.hexdigest(), 0,
                                  verified=expected_sha is not None)  # fmt: skip
    hasher = hashlib.sha256()
    have = _hash_existing(part, hasher) if part.exists() else 0
    if remote.size is not None and have > remote.size:
        part.unlink()
        hasher, have = hashlib.sha256(), 0
    free = shutil.disk_usage(final.parent).free
    if total - have + DISK_MARGIN > free:
        raise InsufficientDiskSpace(
            f"Not enough disk space for {path}: {human_bytes(total - have)} more is needed, "
            f"{human_bytes(free)} is free in {final.parent}. Free some space and resume.",
            needed=total - have,
            free=free,
        )
    on_disk = [have]
    hashing = _HashThread(hasher)
    with hashing, _open_part(part) as out:

        def sink(chunk: bytes) -> None:
            if stop is not None and stop.is_set():
                raise Paused()
            try:
                out.write(chunk)
            except OSError as exc:
                if exc.errno == errno.ENOSPC:
                    left = max(total - on_disk[0], 0)
                    raise InsufficientDiskSpace(
                        f"The disk filled up while downloading {path}: {human_bytes(left)} "
                        f"more is needed in {final.parent}. The {human_bytes(on_disk[0])} "
                        "downloaded so far are kept; free some space and resume.",
                        needed=left, free=0,
                    ) from exc
                raise
            hashing.update(chunk)
            on_disk[0] += len(chunk)
            if progress is not None:
                progress(on_disk[0], total)
            if stop is not None and stop.is_set():  # set during this chunk: stop now
                raise Paused()

        try:
            _transfer(client, repo_id, remote, on_disk, sink, stop)
        finally:
            # No fsync: it cost ~35 % of loopback throughput (bench/download_vs_hf.py) and
            # huggingface_hub does not sync either. A part cut short by a crash is re-hashed
            # from disk on resume, and a final file is only renamed after its size and
            # sha256 matched, so a kill never leaves a wrong model behind.
            out.flush()
    size = part.stat().st_size
    if remote.size is not None and size != remote.size:
        raise DownloadFailed(
            f"{path}: the hub sent {size:,} of {remote.size:,} bytes. Resume to fetch the rest."
        )
    digest = hasher.hexdigest()  # the hash thread has finished (``with hashing`` closed)
    if expected_sha is not None and digest != expected_sha:
        part.unlink(missing_ok=True)
        raise HashMismatch(
            f"{path} arrived damaged (its sha256 does not match the Hub's), so it was deleted. "
            "Download it again; if this repeats, the connection or a proxy is altering data."
        )
    os.replace(part, final)
    return DownloadedFile(final, size, digest, on_disk[0] - have,
                          verified=expected_sha is not None)  # fmt: skip


def _transfer(
    client: HubClient,
    repo_id: str,
    remote: RemoteFile,
    on_disk: list[int],
    sink: Callable[[bytes], None],
    stop: threading.Event | None,
) -> None:
    """Stream the rest of ``remote`` into ``sink``, resuming after failures.

    :func:`_stream_rest` already retries a drop, timeout or 5xx a few times (the hub client's
    policy), each retry asking only for the missing bytes. A long download over a flaky link
    may see more drops than that in total, so here the count starts over whenever bytes
    arrived; only
    ``MAX_STALLED`` failures in a row with no new byte give up (the part is kept).
    """
    stalled = 0
    while remote.size is None or on_disk[0] < remote.size:
        before = on_disk[0]
        try:
            _stream_rest(client, repo_id, remote, on_disk[0], sink)
            if remote.size is None or on_disk[0] == before:
                return  # the whole file (size unknown), or the hub has nothing more to send
        except HubUnreachable as exc:
            stalled = 0 if on_disk[0] > before else stalled + 1
            if stalled >= MAX_STALLED:
                raise DownloadFailed(
                    f"The download of {remote.path} kept failing ({exc.message}) The "
                    f"{human_bytes(on_disk[0])} downloaded so far are kept; retry to resume.",
                    exc.details,
                ) from exc
            delay = min(client.backoff * 2**stalled, MAX_BACKOFF_S)
            if stop is not None and stop.wait(delay):
                raise Paused() from None
            if stop is None:
                time.sleep(delay)


def _stream_rest(
    client: HubClient, repo_id: str, remote: RemoteFile, start: int, sink: Callable[[bytes], None]
) -> None:
    """GET ``remote`` from byte ``start`` (HTTP Range) and pass each network read to ``sink``.

    Like ``HubClient.stream_from`` (same session, token headers, retry policy and error
    translation, through the client's ``_call``), but handing over data as it arrives instead
    of in 4 MiB chunks: on a slow link those made pause wait and progress freeze for seconds.
    """
    position = [start]

    def request() -> None:
        headers = {**build_hf_headers(token=client.token, library_name="quantdesk")}
        headers["Accept-Encoding"] = "identity"  # sizes and sha256 are of the raw bytes
        if position[0]:
            headers["Range"] = f"bytes={position[0]}-"
        with get_session().stream(
            "GET", remote.url, headers=headers, timeout=client.timeout
        ) as response:
            hf_raise_for_status(response)
            if position[0] and response.status_code != 206:
                raise HubError(
                    f"The hub ignored the resume request for {remote.path} (no HTTP Range "
                    "support), so the download cannot continue where it stopped."
                )
            for chunk in response.iter_raw(READ_CHUNK):
                sink(chunk)
                position[0] += len(chunk)

    client._call(request, repo_id=repo_id, path=remote.path)  # noqa: SLF001 - shared policy
