"""Discovery of models other tools keep, on real fake layouts in a temp home (real files)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from quantdesk.engine.library.discovery import (
    DiscoveredModel,
    discover_models,
    group_split_sets,
    ollama_name,
    tool_roots,
)
from quantdesk.engine.library.model_index import ModelIndex
from tests.tiny_models import write_tiny_model

REV = "0123456789abcdef0123456789abcdef01234567"


FOUND_IN_FAKE_HOME = {
    "bartowski/Tiny-GGUF/Tiny-Q8_0": "hf-cache",
    "bartowski/Tiny-GGUF/Tiny-F16": "hf-cache",
    "owner/Split-GGUF/big": "hf-cache",
    "lmstudio-community/Tiny-GGUF/Tiny-Q4_K_M": "lmstudio",
    "llama3.2:3b": "ollama",
    "hf.co/bartowski/Other-GGUF:Q8_0": "ollama",
    "tiny-jan": "jan",
    "jan-nano": "jan",
    "unsloth/gemma-mini": "jan",
    "tiny-chat.Q8_0": "gpt4all",
}
"""Name -> source of every model :func:`build_fake_home` puts in the other tools' folders."""


def tiny(path: Path, seed: int = 0, quant: str = "Q8_0") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_tiny_model(path, seed=seed, name=f"tiny-{seed}", quant=quant)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def hf_repo(cache: Path, repo_id: str, files: dict[str, int]) -> dict[str, Path]:
    """A hub-cache repo as huggingface_hub lays it out: blobs by hash, snapshot symlinks, refs."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(REV)
    snapshot = repo / "snapshots" / REV
    snapshot.mkdir(parents=True)
    (repo / "blobs").mkdir()
    blobs = {}
    for name, seed in files.items():
        staging = tiny(repo / "staging.tmp", seed)
        blob = repo / "blobs" / sha256(staging)
        staging.rename(blob)
        (snapshot / name).symlink_to(Path("../../blobs") / blob.name)
        blobs[name] = blob
    config = repo / "blobs" / hashlib.sha1(b"{}").hexdigest()  # a non-LFS file: sha1 name
    config.write_text("{}")
    (snapshot / "config.json").symlink_to(Path("../../blobs") / config.name)
    return blobs


def ollama_model(store: Path, name: str, tag: str, blob: Path | None, seed: int) -> Path:
    """Manifest + blobs as Ollama writes them (``name`` is ``registry/namespace/model``)."""
    (store / "blobs").mkdir(parents=True, exist_ok=True)
    if blob is None:
        staging = tiny(store / "staging.tmp", seed)
        blob = store / "blobs" / f"sha256-{sha256(staging)}"
        staging.rename(blob)
    params = store / "blobs" / f"sha256-{hashlib.sha256(b'{}').hexdigest()}"
    params.write_text("{}")
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                   "digest": "sha256:" + params.name[7:], "size": 2},
        "layers": [
            {"mediaType": "application/vnd.ollama.image.model",
             "digest": "sha256:" + blob.name[7:], "size": blob.stat().st_size},
            {"mediaType": "application/vnd.ollama.image.params",
             "digest": "sha256:" + params.name[7:], "size": 2},
        ],
    }  # fmt: skip
    path = store / "manifests" / name / tag
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(manifest))
    return blob


def build_fake_home(home: Path) -> dict[str, Path]:
    """Every tool's layout with tiny GGUFs; returns notable files by a short key."""
    f: dict[str, Path] = {}
    cache = home / ".cache" / "huggingface" / "hub"
    blobs = hf_repo(cache, "bartowski/Tiny-GGUF", {"Tiny-Q8_0.gguf": 1, "Tiny-F16.gguf": 2})
    f["hf_blob"], f["hf_blob2"] = blobs["Tiny-Q8_0.gguf"], blobs["Tiny-F16.gguf"]
    hf_repo(cache, "owner/Split-GGUF", {"big-00001-of-00002.gguf": 3, "big-00002-of-00002.gguf": 4})

    f["lms"] = tiny(home / ".lmstudio/models/lmstudio-community/Tiny-GGUF/Tiny-Q4_K_M.gguf", 5)

    store = home / ".ollama" / "models"
    f["ollama"] = ollama_model(store, "registry.ollama.ai/library/llama3.2", "3b", None, 6)
    ollama_model(store, "registry.ollama.ai/library/llama3.2", "latest", f["ollama"], 6)
    ollama_model(store, "hf.co/bartowski/Other-GGUF", "Q8_0", None, 7)
    not_gguf = store / "blobs" / ("sha256-" + "0" * 64)
    not_gguf.write_bytes(b"lmgg" + b"\0" * 60)  # an old GGML blob: not a GGUF model
    ollama_model(store, "registry.ollama.ai/library/old", "latest", not_gguf, 0)

    f["jan_old"] = tiny(home / "jan/models/tiny-jan/tiny-jan.Q8_0.gguf", 8)
    (home / "jan/models/tiny-jan/model.json").write_text('{"id": "tiny-jan"}')
    jan_new = home / ".config/Jan/data/llamacpp/models/jan-nano"
    f["jan_new"] = tiny(jan_new / "model.gguf", 9)
    (jan_new / "model.yml").write_text("model_path: llamacpp/models/jan-nano/model.gguf\n")
    # Jan >= 0.6 on Linux: $XDG_DATA_HOME/Jan/data, Hub ids as <org>/<repo> folders
    jan_hub = home / ".local/share/Jan/data/llamacpp/models/unsloth/gemma-mini"
    f["jan_hub"] = tiny(jan_hub / "model.gguf", 12)
    yml = "model_path: llamacpp/models/unsloth/gemma-mini/model.gguf\n"
    (jan_hub / "model.yml").write_text(yml)

    f["gpt4all"] = tiny(home / ".local/share/nomic.ai/GPT4All/tiny-chat.Q8_0.gguf", 10)
    return f


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
