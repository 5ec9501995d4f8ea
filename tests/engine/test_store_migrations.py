"""Issue 20, item 3: every store's schema versions have ordered migrations, and a file from each
older version opens with its data kept and a copy of it beside (``<stem>.before-v<N>-…``)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from quantdesk.engine.chat import conversations
from quantdesk.engine.downloads import store as download_store
from quantdesk.engine.lab import ladder
from quantdesk.engine.library import _model_index as model_index
from quantdesk.engine.library import presets
from quantdesk.engine.library import store as library

STORE_MODULES = (conversations, library, ladder, presets, model_index, download_store)


@pytest.mark.parametrize("module", STORE_MODULES, ids=lambda m: m.__name__.rsplit(".", 1)[1])
def test_every_schema_version_after_the_first_has_its_migration(module) -> None:  # noqa: ANN001
    steps = sorted(getattr(module, "MIGRATIONS", {}))
    assert steps == list(range(2, module.SCHEMA_VERSION + 1)), (module.__name__, steps)


_LIBRARY_V1 = """
CREATE TABLE models (
    id INTEGER PRIMARY KEY, path TEXT NOT NULL UNIQUE, name TEXT NOT NULL, source TEXT NOT NULL,
    owned INTEGER NOT NULL, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
    architecture TEXT NOT NULL, file_type TEXT NOT NULL, parameters TEXT NOT NULL,
    context_length INTEGER NOT NULL, has_chat_template INTEGER NOT NULL, added_at REAL NOT NULL);
INSERT INTO models VALUES (1, '/m/a.gguf', 'a', 'imported', 0, 10, 1, 'llama', 'Q4_K_M', '1B',
    4096, 1, 1.0);
INSERT INTO models VALUES (2, '/m/a-Q2_K.gguf', 'a Q2_K', 'quantized', 0, 5, 1, 'llama', 'Q2_K',
    '1B', 4096, 1, 2.0);
PRAGMA user_version = 1;
"""


def _write(path: Path, script: str) -> None:
    db = sqlite3.connect(path)
    db.executescript(script)
    db.close()


def test_a_version_1_library_gets_its_sha256_column_and_owns_its_quantize_outputs(
    tmp_path: Path,
) -> None:
    from quantdesk.engine.library.store import ModelLibrary

    path = tmp_path / "library.sqlite3"
    _write(path, _LIBRARY_V1)
    library = ModelLibrary(path)
    try:
        by_name = {e.name: e for e in library.entries()}
    finally:
        library.close()
    assert set(by_name) == {"a", "a Q2_K"}
    assert not by_name["a"].owned and by_name["a Q2_K"].owned  # QuantDesk made it: its own
    assert by_name["a"].sha256 == ""
    [backup] = tmp_path.glob("library.before-v2-*.sqlite3")
    kept = sqlite3.connect(backup)
    assert kept.execute("PRAGMA user_version").fetchone()[0] == 1
    assert kept.execute("SELECT count(*) FROM models").fetchone()[0] == 2
    kept.close()


_LADDER_V1 = """
CREATE TABLE rungs (source_sha256 TEXT NOT NULL, qtype TEXT NOT NULL, llama_version TEXT NOT NULL,
    settings TEXT NOT NULL, rung TEXT NOT NULL,
    PRIMARY KEY (source_sha256, qtype, llama_version, settings));
CREATE TABLE hashes (path TEXT NOT NULL, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
    sha256 TEXT NOT NULL, PRIMARY KEY (path, size, mtime_ns));
INSERT INTO hashes VALUES ('/m/a.gguf', 10, 1, 'ab');
PRAGMA user_version = 1;
"""


def test_a_version_1_lab_cache_keeps_its_rungs_and_hashes_sources_again(tmp_path: Path) -> None:
    from quantdesk.engine.lab.ladder import LadderCache, Rung

    rung = Rung("Q4_K_M", 10, 4.5, 100, 50.0, 20.0, 9.5, 0.01, 0.1, 0.97)
    script = _LADDER_V1.replace("PRAGMA", "INSERT INTO rungs VALUES ('ab', 'Q4_K_M', 'v', 's', "
                                f"'{json.dumps(rung.__dict__)}');\nPRAGMA")  # fmt: skip
    path = tmp_path / "ladder.sqlite3"
    _write(path, script)
    cache = LadderCache(path)
    assert cache.get("ab", "Q4_K_M", "v", "s") == rung  # finished work is not lost
    [backup] = tmp_path.glob("ladder.before-v2-*.sqlite3")
    assert backup.is_file()
    db = sqlite3.connect(path)
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    db.close()
    assert "hashes" not in tables and {"rungs", "source_hashes", "files"} <= tables
