"""Reading the GGUF header of a file on the hub with HTTP range requests, and caching it.

:func:`read_remote_header` asks a range fetcher for the first :data:`FIRST_RANGE` bytes and
grows the read only as far as :class:`~quantdesk.engine.errors.NeedMoreBytes` asks (fetching
just the missing bytes), so a multi-gigabyte model costs a few hundred kilobytes.
:class:`HeaderCache` keeps header bytes keyed by (repository, commit, path, ETag), in memory and
optionally on disk, together with what is needed to find them again without asking the hub:
which commit a branch pointed to and which ETag and size each file had at a commit.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from quantdesk.engine.errors import HubError, InvalidGGUF, NeedMoreBytes
from quantdesk.engine.gguf.reader import GGUFHeader, read_header

FIRST_RANGE = 256 * 1024
"""Bytes asked for first; most headers of models up to a few billion parameters fit."""

RangeFetcher = Callable[[int, int], tuple[bytes, int | None, int]]
"""``fetch(start, end)`` (end inclusive) -> (the bytes, total file size if known, bytes sent)."""


@dataclass(frozen=True)
class RemoteHeader:
    """A header read from the hub: ``bytes_read`` bytes came over the network (0 if cached)."""

    header: GGUFHeader
    bytes_read: int
    from_cache: bool


def read_remote_header(
    fetch: RangeFetcher, size: int | None, what: str, first: int = FIRST_RANGE
) -> tuple[GGUFHeader, bytes, int]:
    """Parse the header of a remote file of ``size`` bytes; returns (header, its bytes, sent).

    ``what`` names the file in error messages. Raises InvalidGGUF when the file is not a GGUF
    model, HubError when the server sends nothing or less than the file's stated size.
    """
    data = bytearray()
    sent = 0
    want = first if size is None else min(size, first)
    while True:
        chunk, total, n = fetch(len(data), want - 1)
        sent += n
        if size is None:
            size = total
        if not chunk:
            raise HubError(
                f"{what}: the hub sent no data for bytes {len(data)}-{want - 1}",
                details=f"file size {size}",
            )
        data += chunk
        if size is None or size < len(data):
            raise HubError(f"{what}: the hub did not say how large the file is")
        try:
            header = read_header(data, size)
        except NeedMoreBytes as more:
            want = min(size, max(more.needed, len(data) + 1))
            continue
        except InvalidGGUF as exc:
            raise InvalidGGUF(f"{what} is not a usable GGUF model: {exc.message}") from None
        return header, bytes(data[: header.header_size]), sent


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class HeaderCache:
    """Header bytes and file pins in memory, and on disk under ``root`` when it is given.

    * header bytes: key (repo, commit, path, etag) - content-addressed, never stale;
    * pins: (repo, commit) -> {path: (etag, size)} - a commit never changes, so never stale;
    * refs: (repo, branch or tag) -> commit - may go stale; callers decide how long to trust.

    Disk errors are not fatal: the cache then just misses.
    """

    def __init__(self, root: Path | None) -> None:
        self.root = root
        self._lock = threading.Lock()
        self._headers: dict[str, bytes] = {}
        self._pins: dict[str, dict[str, list]] = {}
        self._refs: dict[str, str] = {}

    def _path(self, kind: str, key: str, suffix: str) -> Path | None:
        return None if self.root is None else self.root / kind / f"{key}{suffix}"

    def _read(self, path: Path | None) -> bytes | None:
        if path is None:
            return None
        try:
            return path.read_bytes()
        except OSError:
            return None

    def _write(self, path: Path | None, data: bytes) -> None:
        if path is not None:
            try:
                _write_atomic(path, data)
            except OSError:
                pass

    def get_header(self, repo: str, commit: str, path: str, etag: str) -> bytes | None:
        """The cached header bytes of a file version, or None."""
        key = _digest(repo, commit, path, etag)
        with self._lock:
            found = self._headers.get(key)
        if found is None:
            found = self._read(self._path("headers", key, ".gguf-header"))
            if found is not None:
                with self._lock:
                    self._headers[key] = found
        return found

    def put_header(self, repo: str, commit: str, path: str, etag: str, data: bytes) -> None:
        """Remember the header bytes of a file version."""
        key = _digest(repo, commit, path, etag)
        with self._lock:
            self._headers[key] = data
        self._write(self._path("headers", key, ".gguf-header"), data)

    def _load_pins(self, key: str) -> dict[str, list]:
        with self._lock:
            pins = self._pins.get(key)
        if pins is None:
            raw = self._read(self._path("pins", key, ".json"))
            try:
                pins = json.loads(raw) if raw else {}
            except ValueError:
                pins = {}
            with self._lock:
                pins = self._pins.setdefault(key, pins)
        return pins

    def get_pin(self, repo: str, commit: str, path: str) -> tuple[str, int | None] | None:
        """(etag, size) of ``path`` at ``commit``, if known."""
        found = self._load_pins(_digest(repo, commit)).get(path)
        return (found[0], found[1]) if found else None

    def put_pins(self, repo: str, commit: str, files: dict[str, tuple[str, int | None]]) -> None:
        """Remember the etag and size of files at a commit."""
        key = _digest(repo, commit)
        pins = self._load_pins(key)
        with self._lock:
            changed = any(pins.get(p) != list(v) for p, v in files.items())
            pins.update({p: list(v) for p, v in files.items()})
            blob = json.dumps(pins, sort_keys=True).encode()
        if changed:
            self._write(self._path("pins", key, ".json"), blob)

    def get_ref(self, repo: str, revision: str) -> str | None:
        """The commit ``revision`` pointed to when last seen (possibly stale)."""
        key = _digest(repo, revision)
        with self._lock:
            found = self._refs.get(key)
        if found is None:
            raw = self._read(self._path("refs", key, ".txt"))
            found = raw.decode("ascii", "replace").strip() if raw else None
        return found or None

    def put_ref(self, repo: str, revision: str, commit: str) -> None:
        """Remember which commit ``revision`` points to."""
        key = _digest(repo, revision)
        with self._lock:
            if self._refs.get(key) == commit:
                return
            self._refs[key] = commit
        self._write(self._path("refs", key, ".txt"), commit.encode("ascii"))
