"""Discovery of models other tools keep, on real fake layouts in a temp home (real files)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from quantdesk.engine.library._model_index import ModelIndex
from quantdesk.engine.library.discovery import (
    DiscoveredModel,
    discover_models,
    group_split_sets,
    ollama_name,
    tool_roots,
)
from tests.support.fake_home import (
    FOUND_IN_FAKE_HOME,
    build_fake_home,
    hf_repo,
    ollama_model,
    sha256,
    tiny,
)


@pytest.fixture()
def fake_home(tmp_path: Path) -> tuple[Path, dict[str, Path]]:
    home = tmp_path / "home"
    return home, build_fake_home(home)


def by_name(models: list[DiscoveredModel]) -> dict[str, DiscoveredModel]:
    names = [m.name for m in models]
    assert len(names) == len(set(names)), names
    return {m.name: m for m in models}


def tree_state(root: Path) -> dict[str, tuple[int, int, int, int]]:
    """Every entry under ``root`` with inode, size, mtime and link count (links not followed)."""
    state = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            st = os.lstat(Path(dirpath, name))
            state[str(Path(dirpath, name))] = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_nlink)
    return state


def test_each_tool_listed_once_with_name_and_source(fake_home, tmp_path) -> None:
    home, f = fake_home
    watched = tmp_path / "watched"
    tiny(watched / "mine" / "my-model.Q8_0.gguf", 11)
    (watched / "link-to-hf.gguf").symlink_to(f["hf_blob"])  # same file by a second route
    models = by_name(discover_models(home=home, env={}, watched=[watched]))

    expected = {**FOUND_IN_FAKE_HOME, "mine/my-model.Q8_0": "folder"}
    assert {n: m.source for n, m in models.items()} == expected

    hf = models["bartowski/Tiny-GGUF/Tiny-Q8_0"]
    assert hf.path.name == "Tiny-Q8_0.gguf" and hf.path.is_symlink()  # opened by its real name
    assert hf.real_path == str(f["hf_blob"].resolve())
    assert hf.sha256 == f["hf_blob"].name == sha256(f["hf_blob"])
    split = models["owner/Split-GGUF/big"]
    assert [p.name for p in split.parts] == ["big-00001-of-00002.gguf", "big-00002-of-00002.gguf"]
    ollama = models["llama3.2:3b"]
    assert ollama.path == f["ollama"] and ollama.aliases == ("llama3.2:latest",)
    assert ollama.sha256 == f["ollama"].name.removeprefix("sha256-") == sha256(f["ollama"])
    assert models["jan-nano"].path == f["jan_new"]
    assert models["unsloth/gemma-mini"].path == f["jan_hub"]


def test_discovery_and_indexing_copy_and_modify_nothing(fake_home, tmp_path) -> None:
    home, _ = fake_home
    before = tree_state(home)
    index = ModelIndex(tmp_path / "data" / "index.sqlite3")
    report = index.refresh(discover_models(home=home, env={}))
    index.refresh(discover_models(home=home, env={}))
    index.close()
    assert len(report.added) == len(FOUND_IN_FAKE_HOME)
    assert tree_state(home) == before  # no new, moved or touched file, link counts unchanged


def test_removed_changed_and_invalid_files(fake_home, tmp_path) -> None:
    home, f = fake_home
    watched = tmp_path / "watched"
    watched.mkdir()
    (watched / "broken.gguf").write_bytes(b"GGUF\x03\x00\x00\x00 then garbage")
    index = ModelIndex(tmp_path / "index.sqlite3")
    first = index.refresh(discover_models(home=home, env={}, watched=[watched]))
    n = len(FOUND_IN_FAKE_HOME) + 1  # and the broken file in the watched folder
    assert len(first.added) == n and first.headers_read == n
    broken = index.find(watched / "broken.gguf")
    assert broken is not None and broken.error and broken.architecture is None
    assert "file ends at offset 21" in broken.error

    f["lms"].unlink()
    f["hf_blob"].unlink()  # leaves a broken snapshot link: the repo's other file stays listed
    stat = f["gpt4all"].stat()
    tiny(f["gpt4all"], 10, quant="F16")
    os.utime(f["gpt4all"], ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    report = index.refresh(discover_models(home=home, env={}, watched=[watched]))

    assert {p.name for p in report.removed} == {"Tiny-Q4_K_M.gguf", "Tiny-Q8_0.gguf"}
    assert [p.name for p in report.changed] == ["tiny-chat.Q8_0.gguf"]
    assert report.headers_read == 1 and report.added == ()
    names = {e.name: e for e in index.entries()}
    assert "lmstudio-community/Tiny-GGUF/Tiny-Q4_K_M" not in names
    assert "bartowski/Tiny-GGUF/Tiny-F16" in names
    assert names["tiny-chat.Q8_0"].file_type == "F16"
    assert len(index.entries(include_gone=True)) == n
    index.close()


def test_env_overrides_move_the_stores(tmp_path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    hf_repo(tmp_path / "hub", "a/B-GGUF", {"b.gguf": 1})
    ollama_model(tmp_path / "ollama", "registry.ollama.ai/someone/qwen", "7b", None, 2)
    env = {"HF_HUB_CACHE": str(tmp_path / "hub"), "OLLAMA_MODELS": str(tmp_path / "ollama")}
    models = by_name(discover_models(home=home, env=env))
    assert {n: m.source for n, m in models.items()} == {
        "a/B-GGUF/b": "hf-cache",
        "someone/qwen:7b": "ollama",
    }
    roots = tool_roots(home, {"HF_HOME": "~/hf", "XDG_DATA_HOME": str(tmp_path / "xdg")})
    assert roots.hf_cache == home / "hf" / "hub"
    assert roots.gpt4all[0] == tmp_path / "xdg" / "nomic.ai" / "GPT4All"
    assert Path("/usr/share/ollama/.ollama/models") not in roots.ollama  # fake home: no system


def test_gpt4all_model_path_setting_and_lmstudio_pointer(tmp_path) -> None:
    home = tmp_path / "home"
    custom = tmp_path / "g4a"
    tiny(custom / "Phi.Q8_0.gguf", 1)
    ini = home / ".config" / "nomic.ai" / "GPT4All.ini"
    ini.parent.mkdir(parents=True)
    ini.write_text(f"[General]\nmodelPath={custom}\n")
    lms_home = tmp_path / "lms"
    tiny(lms_home / "models" / "pub" / "Repo-GGUF" / "x.gguf", 2)
    (home / ".lmstudio-home-pointer").write_text(str(lms_home))
    models = by_name(discover_models(home=home, env={}))
    assert {n: m.source for n, m in models.items()} == {
        "Phi.Q8_0": "gpt4all",
        "pub/Repo-GGUF/x": "lmstudio",
    }


def test_split_grouping_and_names() -> None:
    files = [Path(f"/m/a-0000{i}-of-00003.gguf") for i in (3, 1, 2)] + [Path("/m/b.gguf")]
    files.append(Path("/n/a-00001-of-00003.gguf"))  # same base, other folder: another model
    groups = group_split_sets(files)
    assert (Path("/m/a-00001-of-00003.gguf"), Path("/m/a-00002-of-00003.gguf"),
            Path("/m/a-00003-of-00003.gguf")) in groups  # fmt: skip
    assert len(groups) == 3
    assert ollama_name("registry.ollama.ai", "library", "llama3.2", "3b") == "llama3.2:3b"
    assert ollama_name("registry.ollama.ai", "me", "m", "latest") == "me/m:latest"
    assert ollama_name("hf.co", "bartowski", "R-GGUF", "Q4_K_M") == "hf.co/bartowski/R-GGUF:Q4_K_M"


def test_nothing_installed_finds_nothing(tmp_path) -> None:
    assert discover_models(home=tmp_path, env={}) == []


def test_jan_model_yml_pointing_outside_its_folder(tmp_path) -> None:
    home = tmp_path / "home"
    elsewhere = tiny(tmp_path / "disk" / "Qwen-Q8_0.gguf", 3)
    folder = home / ".config/Jan/data/llamacpp/models/qwen-linked"
    folder.mkdir(parents=True)
    (folder / "model.yml").write_text(f"name: qwen\nmodel_path: '{elsewhere}'\n")
    models = discover_models(home=home, env={})
    assert [(m.name, m.source, m.path) for m in models] == [("qwen-linked", "jan", elsewhere)]
