"""Child-process test loads: crashes in llama.cpp become readable errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from quantdesk.engine.errors import ModelLoadError
from quantdesk.engine.params import LoadSettings
from quantdesk.engine.run.probe import ProbeCache, probe_load, raise_for_probe
from tests.support.tiny_models import write_model_that_aborts_llama, write_tiny_model

SETTINGS = LoadSettings(n_ctx=128, n_threads=1)


def test_a_good_model_passes_and_is_cached(tmp_path: Path) -> None:
    model = write_tiny_model(tmp_path / "ok.gguf")
    cache = ProbeCache(tmp_path / "probe.json")
    first = probe_load(model, SETTINGS, cache=cache)
    assert first.ok, first.message + first.details
    again = probe_load(model, SETTINGS, cache=cache)
    assert again.ok and "cached" in again.message


def test_an_abort_in_llama_cpp_is_reported_not_fatal(tmp_path: Path) -> None:
    model = write_model_that_aborts_llama(tmp_path / "aborts.gguf")
    result = probe_load(model, SETTINGS, cache=ProbeCache(tmp_path / "probe.json"))
    assert not result.ok
    assert "SIGABRT" in result.message and "aborts.gguf" in result.message
    with pytest.raises(ModelLoadError):
        raise_for_probe(result)
    # a failure is never cached
    assert not ProbeCache(tmp_path / "probe.json").passed("anything")


def test_a_changed_file_is_probed_again(tmp_path: Path) -> None:
    model = write_tiny_model(tmp_path / "m.gguf")
    cache = ProbeCache(tmp_path / "probe.json")
    assert probe_load(model, SETTINGS, cache=cache).ok
    write_model_that_aborts_llama(model)  # same path, new content
    assert not probe_load(model, SETTINGS, cache=cache).ok


def test_content_swapped_keeping_size_and_mtime_is_probed_again(tmp_path: Path) -> None:
    """Issue 21: another program rewrites the file in place (same inode), to the same size,
    and puts its modification time back: the verdict for the old content no longer holds."""
    model = write_tiny_model(tmp_path / "m.gguf")
    crafted = write_model_that_aborts_llama(tmp_path / "aborts.gguf")
    size = max(model.stat().st_size, crafted.stat().st_size)
    for path in (model, crafted):  # the same size (llama.cpp ignores bytes after the data)
        os.truncate(path, size)
    cache = ProbeCache(tmp_path / "probe.json")
    assert probe_load(model, SETTINGS, cache=cache).ok
    before = model.stat()
    with model.open("r+b") as f:  # in place: the inode stays
        f.write(crafted.read_bytes())
    os.utime(model, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = model.stat()
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (
        before.st_size, before.st_mtime_ns, before.st_ino)
    result = probe_load(model, SETTINGS, cache=cache)
    assert not result.ok and "SIGABRT" in result.message


def test_the_ram_watchdog_stops_a_test_load_before_the_machine_swaps(tmp_path: Path, monkeypatch):
    """With the floor set above what is free (as when memory really runs out), the child is
    stopped and the result says it was for memory; nothing is cached as passed."""
    from quantdesk.engine.run import probe
    monkeypatch.setattr(probe, "MEMORY_FLOOR_SHARE", 1.0)  # every byte of RAM counts as needed
    model = write_tiny_model(tmp_path / "tiny.gguf")
    cache = ProbeCache(tmp_path / "probe.json")
    result = probe_load(model, LoadSettings(n_ctx=256, n_threads=1), cache=cache)
    assert not result.ok and result.out_of_memory
    assert "was stopped: free memory fell" in result.message and "swapping" in result.message
    monkeypatch.setattr(probe, "MEMORY_FLOOR_SHARE", 0.02)
    assert probe_load(model, LoadSettings(n_ctx=256, n_threads=1), cache=cache).ok
