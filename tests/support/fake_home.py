"""A home folder laid out as other tools keep their models (Hugging Face cache, LM Studio,
Ollama, Jan, GPT4All), with real tiny GGUF files, and what discovery must find there."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from tests.support.tiny_models import write_tiny_model

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
