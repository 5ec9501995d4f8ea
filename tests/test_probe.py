"""Child-process test loads: crashes in llama.cpp become readable errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from quantdesk.engine.errors import ModelLoadError
from quantdesk.engine.params import LoadSettings
from quantdesk.engine.probe import ProbeCache, probe_load, raise_for_probe
from tests.tiny_models import write_model_that_aborts_llama, write_tiny_model

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
