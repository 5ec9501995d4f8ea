"""A file's version (its stamp changes whenever the file may have changed), the key of every
read-once-per-version cache, and its sha256, cached per version."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

_CHUNK = 1 << 20  # 1 MiB reads
_cache: dict[tuple[str, str], str] = {}
_lock = threading.Lock()


def file_stamp(path: str | os.PathLike[str]) -> str:
    """What changes when the file's content may have: size, modification time, inode and
    status-change time (an edit whose modification time was put back still moves the
    status-change time, which no program can set)."""
    st = os.stat(path)
    return f"{st.st_size}:{st.st_mtime_ns}:{st.st_ino}:{st.st_ctime_ns}"


def file_version(path: str | os.PathLike[str]) -> tuple[str, str]:
    """(resolved path, stamp): one version of one file, the key of caches that read a file
    once per version. OSError when the file cannot be examined."""
    return str(Path(path).resolve()), file_stamp(path)


def file_sha256(path: Path, cancel: threading.Event | None = None) -> str:
    """The sha256 of a file, read 1 MiB at a time; cached in-process per version.
    A set ``cancel`` stops the reading with :class:`~quantdesk.engine.errors.QuantizeCancelled`."""
    key = file_version(path)
    with _lock:
        cached = _cache.get(key)
    if cached is not None:
        return cached
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_CHUNK):
            if cancel is not None and cancel.is_set():
                from quantdesk.engine.errors import QuantizeCancelled

                raise QuantizeCancelled(f"Cancelled while reading '{Path(path).name}'.")
            digest.update(block)
    with _lock:
        _cache[key] = digest.hexdigest()
    return digest.hexdigest()
