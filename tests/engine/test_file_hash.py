"""file_sha256's cache notices every change to a file, even one hidden by putting the
modification time back; a set cancel stops a long read."""

from __future__ import annotations

import hashlib
import os
import threading
import time

import pytest

from quantdesk.engine.errors import QuantizeCancelled
from quantdesk.engine.file_hash import file_sha256


def test_the_hash_cache_notices_a_changed_file(tmp_path) -> None:
    path = tmp_path / "blob.bin"
    path.write_bytes(b"a" * (3 << 20) + b"tail")  # more than one 1 MiB read
    assert file_sha256(path) == hashlib.sha256(path.read_bytes()).hexdigest()
    assert file_sha256(path) == hashlib.sha256(path.read_bytes()).hexdigest()  # cached
    path.write_bytes(b"changed")
    assert file_sha256(path) == hashlib.sha256(b"changed").hexdigest()


def test_an_edit_with_the_same_size_and_modification_time_is_hashed_again(tmp_path) -> None:
    path = tmp_path / "model.gguf"
    path.write_bytes(b"0123456789")
    before = os.stat(path)
    first = file_sha256(path)
    time.sleep(0.05)  # file times may tick coarsely (a few ms): let the edit get a later one
    with path.open("r+b") as f:  # same size
        f.write(b"ab")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # modification time put back
    assert os.stat(path).st_mtime_ns == before.st_mtime_ns
    assert file_sha256(path) != first
    assert file_sha256(path) == hashlib.sha256(b"ab23456789").hexdigest()


def test_a_set_cancel_stops_the_reading(tmp_path) -> None:
    path = tmp_path / "big.bin"
    path.write_bytes(b"x" * (2 << 20))
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(QuantizeCancelled, match="big.bin"):
        file_sha256(path, cancel)
