"""The SQLite model index: incremental refresh, split sets, recovery, and ``quantdesk ls``."""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
from pathlib import Path

import pytest

from quantdesk.cli import ls as cli_ls
from quantdesk.engine.gguf.model_info import summarize
from quantdesk.engine.gguf.reader import read_header_from_file
from quantdesk.engine.library._model_index import ModelIndex
from quantdesk.engine.library.discovery import DiscoveredModel, discover_models
from tests.support.fake_home import FOUND_IN_FAKE_HOME, build_fake_home, tiny


def model(path: Path, name: str = "m", source: str = "folder", **kw) -> DiscoveredModel:
    return DiscoveredModel(path, name, source, kw.pop("parts", (path,)), **kw)


def test_unchanged_rescan_reads_no_header(tmp_path: Path) -> None:
    files = [tiny(tmp_path / f"m{i}.gguf", i) for i in range(5)]
    index = ModelIndex(tmp_path / "i.sqlite3")
    cold = index.refresh([model(p, p.stem) for p in files])
    assert (len(cold.added), cold.headers_read, cold.unchanged) == (5, 5, 0)
    warm = index.refresh([model(p, p.stem) for p in files])
    assert (warm.added, warm.changed, warm.removed) == ((), (), ())
    assert (warm.unchanged, warm.headers_read) == (5, 0)
    entry = index.find(files[0])
    assert entry is not None and entry.architecture == "llama" and entry.file_type == "Q8_0"
    assert entry.context_length == 512 and entry.parameter_label == "115K"
    assert entry.size == files[0].stat().st_size
    assert entry.mtime_ns == files[0].stat().st_mtime_ns
    assert entry.last_seen >= entry.first_seen
    index.close()


def test_gone_then_back_and_relabel(tmp_path: Path) -> None:
    p = tiny(tmp_path / "a.gguf")
    index = ModelIndex(tmp_path / "i.sqlite3")
    index.refresh([model(p)])
    assert index.refresh([]).removed == (p,)
    assert index.entries() == [] and index.entries(include_gone=True)[0].gone
    back = index.refresh([model(p, "renamed", aliases=("alias:1",))])
    assert back.added == (p,) and back.headers_read == 0  # same file: header not read again
    assert index.entries()[0].name == "renamed"
    relabel = index.refresh([model(p, "renamed", aliases=("alias:1", "alias:2"))])
    assert relabel.unchanged == 1 and relabel.changed == ()
    assert index.entries()[0].aliases == ("alias:1", "alias:2")
    index.close()


def test_sha256_kept_while_file_unchanged(tmp_path: Path) -> None:
    p = tiny(tmp_path / "a.gguf")
    index = ModelIndex(tmp_path / "i.sqlite3")
    index.refresh([model(p)])
    index.set_sha256(p, "ab" * 32)
    index.refresh([model(p)])
    assert index.find(p).sha256 == "ab" * 32
    os.utime(p, ns=(p.stat().st_atime_ns, p.stat().st_mtime_ns + 5))
    assert index.refresh([model(p)]).changed == (p,)
    assert index.find(p).sha256 is None  # the file changed: the old digest no longer holds
    index.close()


def test_split_set_summary_and_incomplete_set(tmp_path: Path) -> None:
    parts = tuple(tiny(tmp_path / f"big-0000{i}-of-00002.gguf", i) for i in (1, 2))
    index = ModelIndex(tmp_path / "i.sqlite3")
    index.refresh([model(parts[0], "big", parts=parts)])
    entry = index.find(parts[0])
    assert entry.size == sum(p.stat().st_size for p in parts)
    assert entry.parameter_count == sum(
        summarize(read_header_from_file(p)).parameter_count for p in parts
    )
    index.refresh([model(parts[1], "second alone")])
    assert "part(s) [1] of 2 missing" in index.find(parts[1]).error
    assert entry.parts == parts
    index.refresh([model(parts[0], "big", parts=parts[:1])])
    assert "part(s) [2] of 2 missing" in index.find(parts[0]).error
    index.close()


def test_wal_and_json(tmp_path: Path) -> None:
    p = tiny(tmp_path / "a.gguf")
    index = ModelIndex(tmp_path / "i.sqlite3")
    index.refresh([model(p, sha256="cd" * 32)])
    assert json.loads(json.dumps(index.entries()[0].to_json()))["sha256"] == "cd" * 32
    index.close()
    db = sqlite3.connect(tmp_path / "i.sqlite3")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()


@pytest.mark.parametrize("damage", ["garbage", "newer"])
def test_damaged_database_set_aside_newer_left_alone(tmp_path: Path, damage: str) -> None:
    db_path = tmp_path / "i.sqlite3"
    if damage == "garbage":
        db_path.write_bytes(b"this is not a database" * 100)
    else:
        db = sqlite3.connect(db_path)
        db.execute("PRAGMA user_version=99")
        db.close()
    before = db_path.read_bytes()
    index = ModelIndex(db_path)
    if damage == "garbage":
        assert index.set_aside is not None and index.set_aside.read_bytes() == before
    else:  # a newer QuantDesk's index is left as it is; this run indexes in memory
        assert index.set_aside is None and index.in_memory and db_path.read_bytes() == before
    p = tiny(tmp_path / "a.gguf")
    assert index.refresh([model(p)]).added == (p,)
    index.close()


def run_ls(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    cli_ls.register(parser.add_subparsers(dest="command"))
    return cli_ls.run(parser.parse_args(["ls", *argv]))


def test_cli_ls_lists_sources(tmp_path: Path, monkeypatch, capsys) -> None:
    home = tmp_path / "home"
    build_fake_home(home)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("QUANTDESK_SKIP_DISCOVERY")  # this test is about other tools' models
    for var in ("HF_HOME", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "OLLAMA_MODELS",
                "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME"):  # fmt: skip
        monkeypatch.delenv(var, raising=False)
    extra = tmp_path / "extra"
    tiny(extra / "x.gguf", 20)
    assert run_ls("--json", "--folder", str(extra)) == 0
    listed = {e["name"]: e["source"] for e in json.loads(capsys.readouterr().out)["models"]}
    assert listed["llama3.2:3b"] == "ollama" and listed["x"] == "folder"
    assert {"hf-cache", "lmstudio", "jan", "gpt4all"} <= set(listed.values())
    assert run_ls("--folder", str(extra)) == 0
    out = capsys.readouterr().out
    assert "llama3.2:3b" in out and "Q8_0" in out and "found 0 new and 0 gone" in out
    assert len(discover_models(home=home, env={})) == len(FOUND_IN_FAKE_HOME)


def test_cli_ls_lists_what_the_window_lists_and_counts_changes_once(
    tmp_path: Path, capsys
) -> None:
    """Issue 19, fault 7: `quantdesk ls` listed 2 models where the window listed 4 (files used
    in place and quantize outputs were missing) and said "2 added" on every run."""
    from quantdesk.config.paths import resolve_paths
    from quantdesk.engine.library.store import add_model_file
    from quantdesk.engine.library.sync import discovery_roots, sync_discovered

    paths = resolve_paths().ensure()
    in_place = tiny(tmp_path / "mine" / "used-in-place.gguf", 21)
    quantized = tiny(tmp_path / "out" / "made-Q8_0.gguf", 22)
    add_model_file(paths.library_db, in_place, source="imported", owned=False)
    add_model_file(paths.library_db, quantized, source="quantized", owned=True)
    broken = tmp_path / "watched" / "broken.gguf"
    broken.parent.mkdir()
    broken.write_bytes(b"GGUF\x03\x00\x00\x00")
    tiny(broken.parent / "found.gguf", 23)
    from quantdesk.config.settings import Settings

    Settings(paths.settings_file).set("library.watched_folders", [str(broken.parent)])
    assert run_ls("--json") == 0
    data = json.loads(capsys.readouterr().out)
    listed = sorted(Path(m["path"]).name for m in data["models"])
    assert listed == ["found.gguf", "made-Q8_0.gguf", "used-in-place.gguf"]
    assert [Path(i["path"]).name for i in data["invalid"]] == ["broken.gguf"]
    # the window's scan of the same folders in between: the next run finds nothing new
    sync_discovered(paths.library_db, paths.model_index_db, watched=[broken.parent],
                    hidden=set(), roots=discovery_roots(None, {"QUANTDESK_SKIP_DISCOVERY": "1"}))
    for _ in range(2):
        assert run_ls() == 0
        out = capsys.readouterr().out
        assert "3 model(s); this scan found 0 new and 0 gone." in out, out
        assert "broken.gguf" not in out  # said once, when it was new
