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
import re
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from quantdesk.engine.errors import DownloadFailed, HashMismatch, InsufficientDiskSpace
from quantdesk.engine.hub import HubClient

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
DISK_MARGIN = 64 * 1024 * 1024
Progress = Callable[[int, int], None]  # (bytes on disk, total bytes)


def _open_part(part: Path) -> BinaryIO:
    """Open the part file for appending (tests replace this to inject write errors)."""
    return part.open("ab")


class Paused(Exception):
    """The transfer stopped because pause was requested; the part file is kept."""


@dataclass(frozen=True)
class DownloadedFile:
    """A verified file in its final place."""

    path: Path
    size: int
    sha256: str | None
    bytes_transferred: int


def target_path(dest_root: Path, repo_id: str, path: str) -> Path:
    """Where a repo file lands: ``dest_root/owner/name/path``; refuses anything that escapes."""
    parts = PurePosixPath(path).parts
    if (
        not _REPO_ID.match(repo_id)
        or not parts
        or any(p in ("..", "") for p in parts)
        or (PurePosixPath(path).is_absolute())
    ):
        raise DownloadFailed(f"Refusing the unsafe name {repo_id}/{path}.")
    owner, name = repo_id.split("/")
    return dest_root.joinpath(owner, name, *parts)


def _hash_existing(part: Path, hasher: hashlib._Hash) -> int:
    size = 0
    with part.open("rb") as f:
        while block := f.read(8 << 20):
            hasher.update(block)
            size += len(block)
    return size


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
    part = final.with_name(final.name + ".part")
    expected_sha = remote.etag.strip('"').lower() if remote.etag else None
    expected_sha = expected_sha if expected_sha and _SHA256.match(expected_sha) else None
    total = remote.size or 0
    hasher = hashlib.sha256()
    have = _hash_existing(part, hasher) if part.exists() else 0
    if remote.size is not None and have > remote.size:
        part.unlink()
        hasher, have = hashlib.sha256(), 0
    free = shutil.disk_usage(final.parent).free
    if total - have + DISK_MARGIN > free:
        raise InsufficientDiskSpace(
            f"Not enough disk space for {path}: {(total - have) / 2**30:.2f} GiB more is needed, "
            f"{free / 2**30:.2f} GiB is free in {final.parent}. Free some space and resume."
        )
    received = [0]
    with _open_part(part) as out:

        def sink(chunk: bytes) -> None:
            if stop is not None and stop.is_set():
                raise Paused()
            try:
                out.write(chunk)
            except OSError as exc:
                if exc.errno == errno.ENOSPC:
                    raise InsufficientDiskSpace(
                        f"The disk filled up while downloading {path}. The part downloaded so "
                        "far is kept; free some space and resume."
                    ) from exc
                raise
            hasher.update(chunk)
            received[0] += len(chunk)
            if progress is not None:
                progress(have + received[0], total)

        if remote.size is None or have < remote.size:
            try:
                client.stream_from(repo_id, remote, have, sink)
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
    digest = hasher.hexdigest()
    if expected_sha is not None and digest != expected_sha:
        part.unlink(missing_ok=True)
        raise HashMismatch(
            f"{path} arrived damaged (its sha256 does not match the Hub's), so it was deleted. "
            "Download it again; if this repeats, the connection or a proxy is altering data."
        )
    os.replace(part, final)
    return DownloadedFile(final, size, digest, received[0])
