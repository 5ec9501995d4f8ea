"""Library (real SQLite), imports, settings and paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from quantdesk.config.paths import resolve_paths
from quantdesk.config.settings import SETTINGS, Settings
from quantdesk.engine.gguf.model_info import summarize
from quantdesk.engine.gguf.reader import read_header_from_file
from quantdesk.engine.library.importer import MODE_COPY, MODE_REFERENCE, import_paths
from quantdesk.engine.library.store import ModelLibrary
from tests.support.tiny_models import write_tiny_model


def test_reference_import_keeps_the_file_where_it_is(tmp_path: Path) -> None:
    model = write_tiny_model(tmp_path / "a.gguf", name="alpha")
    library = ModelLibrary(tmp_path / "lib.sqlite3")
    [outcome] = import_paths([model], library, tmp_path / "models", MODE_REFERENCE)
    assert outcome.entry is not None and outcome.entry.path == model.resolve()
    assert not outcome.entry.owned
    assert not (tmp_path / "models").exists()
    # a second import of the same file refreshes, never duplicates
    import_paths([model], library, tmp_path / "models", MODE_REFERENCE)
    assert [e.name for e in ModelLibrary(tmp_path / "lib.sqlite3").entries()] == ["alpha"]


def test_copy_import_is_atomic_and_never_overwrites(tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    (models / "a.gguf").write_bytes(b"someone else's file")
    model = write_tiny_model(tmp_path / "a.gguf")
    library = ModelLibrary(tmp_path / "lib.sqlite3")
    [outcome] = import_paths([model], library, models, MODE_COPY)
    assert outcome.entry is not None and outcome.entry.owned
    assert outcome.entry.path.name == "a-1.gguf"
    assert (models / "a.gguf").read_bytes() == b"someone else's file"
    assert outcome.entry.path.read_bytes() == model.read_bytes()
    assert not list(models.glob("*.part"))


def test_bad_files_are_refused_with_reasons(tmp_path: Path) -> None:
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"PK\x03\x04 not a model")
    partial = write_tiny_model(tmp_path / "x.gguf.part")
    library = ModelLibrary(tmp_path / "lib.sqlite3")
    outcomes = import_paths(
        [junk, partial, tmp_path / "missing.gguf"], library, tmp_path, MODE_REFERENCE
    )
    assert [bool(o.error) for o in outcomes] == [True, True, True]
    assert "zip" in outcomes[0].error.lower()
    assert "unfinished download" in outcomes[1].error
    assert library.entries() == []


def test_a_folder_without_models_says_so(tmp_path: Path) -> None:
    library = ModelLibrary(tmp_path / "lib.sqlite3")
    [outcome] = import_paths([tmp_path], library, tmp_path / "m", MODE_REFERENCE)
    assert "No .gguf files" in outcome.error


def test_library_notices_a_deleted_file(tmp_path: Path) -> None:
    model = write_tiny_model(tmp_path / "gone.gguf")
    library = ModelLibrary(tmp_path / "lib.sqlite3")
    library.add(model, summarize(read_header_from_file(model)), source="imported", owned=False)
    model.unlink()
    assert library.entries()[0].exists is False


def test_settings_validate_and_survive_a_broken_file(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    settings = Settings(path)
    assert settings.get("load.n_ctx") == SETTINGS["load.n_ctx"].default
    settings.set("load.n_ctx", 8192)
    settings.set("sampling.temperature", 1)  # an int is accepted for a float setting
    with pytest.raises(ValueError):
        settings.set("sampling.top_p", 7.0)
    assert Settings(path).get("load.n_ctx") == 8192
    path.write_text('{"values": {"load.n_ctx": "huge", "sampling.top_k": 5}}')
    reloaded = Settings(path)
    assert reloaded.get("load.n_ctx") == SETTINGS["load.n_ctx"].default
    assert reloaded.get("sampling.top_k") == 5
    path.write_text("not json")
    assert Settings(path).get("sampling.top_k") == SETTINGS["sampling.top_k"].default


def test_data_dir_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QUANTDESK_DATA_DIR", raising=False)
    explicit = resolve_paths(tmp_path / "d").ensure()
    assert explicit.models_dir == (tmp_path / "d" / "models").resolve()
    assert explicit.models_dir.is_dir()
    monkeypatch.setenv("QUANTDESK_DATA_DIR", str(tmp_path / "env"))
    assert resolve_paths().data_dir == (tmp_path / "env").resolve()


def test_a_quantized_kv_cache_turns_flash_attention_on(tmp_path: Path) -> None:
    settings = Settings(tmp_path / "settings.json")
    assert settings.load_settings().kv_type == "f16" and settings.load_settings().flash_attn
    settings.set("load.flash_attn", False)
    assert not settings.load_settings().flash_attn
    settings.set("load.kv_type", "q8_0")
    assert settings.load_settings().flash_attn is True
    with pytest.raises(ValueError):
        settings.set("load.kv_type", "q3_k")
