"""A file's version (its stamp changes whenever the file may have changed), the key of every
read-once-per-version cache, its sha256 (cached per version) and a quick sample of its
content."""

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


#: What :func:`content_sample` reads: the first MiB (a GGUF's header and most vocabularies),
#: then SAMPLE_BLOCKS blocks of SAMPLE_BYTES spread over the rest, the last one at the end.
HEAD_BYTES = 1 << 20
SAMPLE_BLOCKS = 16
SAMPLE_BYTES = 64 << 10


def content_sample(path: str | os.PathLike[str]) -> str:
    """A sha256 over the file's head and blocks sampled across it (about 2 MiB read, whatever
    the size): a stand-in for the whole file's hash where reading gigabytes would take too
    long. Content swapped under an unchanged stamp still changes it."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        digest.update(f"{size}|".encode())
        digest.update(f.read(HEAD_BYTES))
        rest = size - HEAD_BYTES
        if rest > 0:
            step = max(SAMPLE_BYTES, rest // SAMPLE_BLOCKS)
            for offset in range(HEAD_BYTES, size, step):
                f.seek(max(HEAD_BYTES, min(offset, size - SAMPLE_BYTES)))
                digest.update(f.read(SAMPLE_BYTES))
    return digest.hexdigest()


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
