"""Zero-copy discovery of GGUF models other tools already keep on this disk.

Looks in the Hugging Face hub cache, LM Studio, Ollama's blob store, Jan, GPT4All and folders
the user watches, and returns one :class:`DiscoveredModel` per model: never moving, copying or
writing anything. A model reachable by two routes (a snapshot symlink and its blob, a second
Ollama tag, a folder that links into another tool's store) is listed once, by its real path.
Split sets (``name-00001-of-00003.gguf``) are one model whose ``parts`` are all the files.

Home folder and environment are parameters, so tests run against a fake home.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

SOURCES = ("hf-cache", "lmstudio", "ollama", "jan", "gpt4all", "folder")
GGUF_MAGIC = b"GGUF"
OLLAMA_MODEL_MEDIA_TYPE = "application/vnd.ollama.image.model"
OLLAMA_DEFAULT_REGISTRY = "registry.ollama.ai"
# Where the Linux install script puts the Ollama service's store.
OLLAMA_SYSTEM_STORES = (Path("/usr/share/ollama/.ollama/models"),)

_SPLIT = re.compile(r"^(?P<base>.+)-(?P<index>\d{5})-of-(?P<count>\d{5})\.gguf$", re.IGNORECASE)
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class DiscoveredModel:
    """One model found on disk: ``path`` is the file to open (the first part of a split set)."""

    path: Path
    name: str
    source: str
    parts: tuple[Path, ...]
    sha256: str | None = None
    aliases: tuple[str, ...] = field(default=())

    @property
    def real_path(self) -> str:
        """The first part with every symlink resolved: the identity used to de-duplicate."""
        return os.path.realpath(self.path)


def split_info(path: Path) -> tuple[str, int, int] | None:
    """``(base name, part index, part count)`` for a split-set part, else None."""
    m = _SPLIT.match(path.name)
    if not m:
        return None
    return m["base"], int(m["index"]), int(m["count"])


def split_parts(path: Path) -> tuple[Path, ...]:
    """Every existing file of the model whose first file is ``path`` (a split set's siblings by
    their names, as llama.cpp finds them); just ``path`` for a single file."""
    info = split_info(path)
    if info is None:
        return (path,)
    base, _, count = info
    siblings = [path.with_name(f"{base}-{i:05d}-of-{count:05d}.gguf") for i in range(1, count + 1)]
    return tuple(p for p in siblings if p.is_file())


def model_stem(path: Path) -> str:
    """A file's name without ``.gguf`` and without a split-set ``-00001-of-00003`` suffix."""
    info = split_info(path)
    if info:
        return info[0]
    return path.name[:-5] if path.name.lower().endswith(".gguf") else path.name


def group_split_sets(files: Iterable[Path]) -> list[tuple[Path, ...]]:
    """Group files into models: the parts of a split set (same folder and base) become one."""
    groups: dict[tuple[Path, str, int] | Path, list[tuple[int, Path]]] = {}
    for f in files:
        info = split_info(f)
        key = (f.parent, info[0].lower(), info[2]) if info else f
        groups.setdefault(key, []).append((info[1] if info else 0, f))
    return sorted((tuple(p for _, p in sorted(parts)) for parts in groups.values()), key=str)


def is_gguf_file(path: Path) -> bool:
    """True when ``path`` starts with the GGUF magic bytes (for files without a suffix)."""
    try:
        with open(path, "rb") as f:
            return f.read(4) == GGUF_MAGIC
    except OSError:
        return False


def _gguf_files(folder: Path, *, recursive: bool = True) -> list[Path]:
    """Every ``*.gguf`` file (case-insensitive) under ``folder``; symlinked folders not followed."""
    found: list[Path] = []
    if recursive:
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            found.extend(Path(dirpath, n) for n in filenames if n.lower().endswith(".gguf"))
    else:
        try:
            found = [p for p in folder.iterdir() if p.name.lower().endswith(".gguf")]
        except OSError:
            return []
    return [p for p in found if p.is_file()]  # drops broken links and odd entries


@dataclass(frozen=True)
class ToolRoots:
    """Where each tool keeps its models on this machine (only existing folders are scanned)."""

    hf_cache: Path | None
    lmstudio: tuple[Path, ...]
    ollama: tuple[Path, ...]
    jan: tuple[Path, ...]
    gpt4all: tuple[Path, ...]


def _expand(value: str, home: Path) -> Path:
    if value == "~" or value.startswith("~/"):
        return home / value[2:]
    return Path(value)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def tool_roots(
    home: Path | None = None, env: Mapping[str, str] | None = None, *, system: bool | None = None
) -> ToolRoots:
    """The model folders of every known tool for ``home`` and ``env`` (default: this user's).

    ``system`` adds machine-wide stores (the Ollama service's); by default only when ``home``
    is not given, so a test's fake home never sees the real machine.
    """
    system = home is None if system is None else system
    home = Path.home() if home is None else home
    env = os.environ if env is None else env
    xdg_cache = _expand(env.get("XDG_CACHE_HOME") or str(home / ".cache"), home)
    xdg_config = _expand(env.get("XDG_CONFIG_HOME") or str(home / ".config"), home)
    xdg_data = _expand(env.get("XDG_DATA_HOME") or str(home / ".local/share"), home)

    hub = env.get("HF_HUB_CACHE") or env.get("HUGGINGFACE_HUB_CACHE")
    hf_home = _expand(env.get("HF_HOME") or str(xdg_cache / "huggingface"), home)
    hf_cache = _expand(hub, home) if hub else hf_home / "hub"

    lmstudio_homes = [home / ".lmstudio"]
    pointer = _read_text(home / ".lmstudio-home-pointer").strip()
    if pointer:
        lmstudio_homes.insert(0, _expand(pointer, home))
    lmstudio = [h / "models" for h in lmstudio_homes] + [xdg_cache / "lm-studio" / "models"]
    for h in lmstudio_homes:
        try:
            folder = json.loads(_read_text(h / "settings.json") or "{}").get("downloadsFolder")
        except (ValueError, AttributeError):
            folder = None
        if isinstance(folder, str) and folder:
            lmstudio.insert(0, _expand(folder, home))

    ollama = [_expand(env["OLLAMA_MODELS"], home)] if env.get("OLLAMA_MODELS") else []
    ollama.append(home / ".ollama" / "models")
    if system:
        ollama.extend(OLLAMA_SYSTEM_STORES)

    # Jan: ~/jan/models (up to 0.4), then a data folder holding models/ (cortex, 0.5) and
    # llamacpp/models/<id>/ with a model.yml (0.6 on).
    jan_data = [xdg_config / "Jan" / "data", xdg_data / "Jan" / "data"]
    jan_data.append(home / "Library" / "Application Support" / "Jan" / "data")
    jan = [home / "jan" / "models"]
    jan += [d / sub for d in jan_data for sub in ("llamacpp/models", "models")]

    gpt4all = [xdg_data / "nomic.ai" / "GPT4All"]
    ini = _read_text(xdg_config / "nomic.ai" / "GPT4All.ini")
    match = re.search(r"^modelPath=(.+)$", ini, re.M)
    if match:
        gpt4all.insert(0, _expand(match[1].strip(), home))
    gpt4all.append(home / "Library" / "Application Support" / "nomic.ai" / "GPT4All")

    return ToolRoots(hf_cache, _unique(lmstudio), _unique(ollama), _unique(jan), _unique(gpt4all))


def _unique(paths: Sequence[Path]) -> tuple[Path, ...]:
    seen: dict[str, Path] = {}
    for p in paths:
        seen.setdefault(os.path.realpath(p), p)
    return tuple(seen.values())


# --- one function per tool -------------------------------------------------------------------


def _hf_cache(cache: Path | None) -> list[DiscoveredModel]:
    if cache is None or not cache.is_dir():
        return []
    from huggingface_hub import scan_cache_dir
    from huggingface_hub.errors import CacheNotFound

    try:
        info = scan_cache_dir(cache)
    except (CacheNotFound, OSError, ValueError):
        return []
    found: list[DiscoveredModel] = []
    scanned = set()
    for repo in sorted(info.repos, key=lambda r: r.repo_id):
        scanned.add(repo.repo_path.name)
        if repo.repo_type != "model":
            continue
        # Newest revision that a ref (main first) points at wins for a file present in several.
        revisions = sorted(
            repo.revisions,
            key=lambda r: ("main" in r.refs, bool(r.refs), r.last_modified),
            reverse=True,
        )
        seen: set[str] = set()
        for rev in revisions:
            files = [f.file_path for f in rev.files if f.file_name.lower().endswith(".gguf")]
            for group in group_split_sets(files):
                rel = group[0].parent.relative_to(rev.snapshot_path) / model_stem(group[0])
                if rel.as_posix() in seen:
                    continue
                seen.add(rel.as_posix())
                found.append(_hf_model(repo.repo_id, rel, group))
    # Repos scan_cache_dir skipped as corrupted (a blob deleted by hand leaves a broken link):
    # the files that are still there are still models.
    for repo_path in sorted(cache.glob("models--*")):
        if repo_path.name in scanned or not (repo_path / "snapshots").is_dir():
            continue
        repo_id = repo_path.name.removeprefix("models--").replace("--", "/")
        seen = set()
        for snapshot in sorted((repo_path / "snapshots").iterdir()):
            for group in group_split_sets(_gguf_files(snapshot)):
                rel = group[0].parent.relative_to(snapshot) / model_stem(group[0])
                if rel.as_posix() not in seen:
                    seen.add(rel.as_posix())
                    found.append(_hf_model(repo_id, rel, group))
    return found


def _hf_model(repo_id: str, rel: Path, group: tuple[Path, ...]) -> DiscoveredModel:
    blob = Path(os.path.realpath(group[0])).name
    sha = blob if _SHA256.match(blob) else None  # LFS blobs are named by sha256, others by sha1
    return DiscoveredModel(group[0], f"{repo_id}/{rel.as_posix()}", "hf-cache", group, sha)


def ollama_name(registry: str, namespace: str, model: str, tag: str) -> str:
    """The name Ollama shows: ``llama3.2:3b``, ``user/model:tag``, ``hf.co/owner/repo:Q4_K_M``."""
    if registry == OLLAMA_DEFAULT_REGISTRY:
        prefix = "" if namespace == "library" else f"{namespace}/"
    else:
        prefix = f"{registry}/{namespace}/"
    return f"{prefix}{model}:{tag}"


def _ollama(stores: Sequence[Path]) -> list[DiscoveredModel]:
    by_blob: dict[Path, list[str]] = {}
    for store in stores:
        manifests = store / "manifests"
        if not manifests.is_dir():
            continue
        for dirpath, _dirs, files in os.walk(manifests):
            rel = Path(dirpath).relative_to(manifests).parts
            if len(rel) != 3:  # manifests/<registry>/<namespace>/<model>/<tag>
                continue
            for tag in files:
                blob = _ollama_model_blob(store, Path(dirpath, tag))
                if blob is not None:
                    by_blob.setdefault(blob, []).append(ollama_name(*rel, tag))
    found = []
    for blob, names in by_blob.items():
        # "llama3.2:3b" rather than its alias "llama3.2:latest" when both exist.
        names = sorted(set(names), key=lambda n: (n.endswith(":latest"), len(n), n))
        sha = blob.name.removeprefix("sha256-")
        found.append(
            DiscoveredModel(blob, names[0], "ollama", (blob,), sha if _SHA256.match(sha) else None,
                            tuple(names[1:]))  # fmt: skip
        )
    return found


def _ollama_model_blob(store: Path, manifest: Path) -> Path | None:
    try:
        layers = json.loads(manifest.read_text(encoding="utf-8")).get("layers") or []
    except (OSError, ValueError, AttributeError):
        return None
    for layer in layers:
        if isinstance(layer, dict) and layer.get("mediaType") == OLLAMA_MODEL_MEDIA_TYPE:
            digest = str(layer.get("digest", "")).replace(":", "-")
            blob = store / "blobs" / digest
            if "/" not in digest and blob.is_file() and is_gguf_file(blob):
                return blob
    return None


def _named_by_folder(root: Path, source: str, *, recursive: bool = True) -> list[DiscoveredModel]:
    """Models in ``root`` named ``relative/folder/stem`` (LM Studio: ``publisher/repo/file``)."""
    if not root.is_dir():
        return []
    found = []
    for group in group_split_sets(_gguf_files(root, recursive=recursive)):
        name = (group[0].parent.relative_to(root) / model_stem(group[0])).as_posix()
        found.append(DiscoveredModel(group[0], name, source, group))
    return found


def _jan(roots: Sequence[Path]) -> list[DiscoveredModel]:
    """Jan keeps one folder per model id; the id is the name when the folder holds one model."""
    found = []
    for root in roots:
        models = _named_by_folder(root, "jan")
        per_folder: dict[Path, int] = {}
        for m in models:
            per_folder[m.path.parent] = per_folder.get(m.path.parent, 0) + 1
        for m in models:
            folder = m.path.parent
            if folder != root and per_folder[folder] == 1:
                m = replace(m, name=folder.relative_to(root).as_posix())
            found.append(m)
        found.extend(_jan_linked(root))
    return found


def _jan_linked(root: Path) -> list[DiscoveredModel]:
    """Models whose model.yml names an absolute ``model_path`` outside Jan's folder."""
    found = []
    for yml in root.glob("**/model.yml") if root.is_dir() else ():
        m = re.search(r"^model_path:\s*['\"]?(.+?)['\"]?\s*$", _read_text(yml), re.M)
        target = Path(m[1]) if m else None
        if target is not None and target.is_absolute() and target.is_file():
            if not target.resolve().is_relative_to(root.resolve()):
                name = yml.parent.relative_to(root).as_posix()
                found.append(DiscoveredModel(target, name, "jan", (target,)))
    return found


def discover_models(
    *,
    home: Path | None = None,
    env: Mapping[str, str] | None = None,
    watched: Sequence[Path] = (),
    roots: ToolRoots | None = None,
) -> list[DiscoveredModel]:
    """Every GGUF model other tools keep, plus those in ``watched`` folders, each once.

    When one file is reachable from several places the first source in :data:`SOURCES` order
    names it (a watched folder that links into the HF cache lists the file as ``hf-cache``).
    """
    roots = roots or tool_roots(home, env)
    found = _hf_cache(roots.hf_cache) + _ollama(roots.ollama)
    for root in roots.lmstudio:
        found += _named_by_folder(root, "lmstudio")
    found += _jan(roots.jan)
    for root in roots.gpt4all:
        found += _named_by_folder(root, "gpt4all", recursive=False)
    for folder in watched:
        found += _named_by_folder(Path(folder).expanduser(), "folder")
    unique: dict[str, DiscoveredModel] = {}
    for model in found:
        unique.setdefault(model.real_path, model)
    return sorted(unique.values(), key=lambda m: (m.name.lower(), str(m.path)))
