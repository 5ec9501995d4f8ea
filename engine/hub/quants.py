"""GGUF files of a hub repository, grouped into the quantizations a person chooses between.

Hub repositories name their files after the quantization they hold (``Model-Q4_K_M.gguf``,
``model.IQ4_XS.gguf``, ``Q5_K_M/model-Q5_K_M-00001-of-00002.gguf``...). :func:`parse_quant`
reads that name, :func:`group_gguf_files` turns a repository's file list into
:class:`QuantGroup` s (one per model file, several files for a split model) sorted by size, and
sets vision projectors (``mmproj-*.gguf``) apart. Names only: nothing here reads a header.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import PurePosixPath

_QUANT_RE = re.compile(
    r"(?<![A-Za-z0-9])(?P<quant>(?:UD-)?(?:"
    r"IQ[1-4]_(?:XXS|XS|NL|S|M|L)"  # i-quants: IQ2_XXS, IQ4_XS, IQ4_NL
    r"|Q[1-8]_K(?:_(?:XXS|XS|S|M|L|XL))?"  # k-quants: Q4_K_M, Q6_K, Q4_K_XL, Q6_K_L
    r"|Q[1-8]_[01](?:_[48]_[48])?"  # legacy and ARM-repacked: Q4_0, Q5_1, Q4_0_4_4
    r"|TQ[12]_0|MXFP4(?:_MOE)?|BF16|FP?16|FP?32"
    r"))(?![A-Za-z0-9])",
    re.IGNORECASE,
)
_SPLIT_RE = re.compile(r"^(?P<base>.+)-(?P<no>\d{3,5})-of-(?P<count>\d{3,5})\.gguf$", re.IGNORECASE)
_ALIASES = {"FP16": "F16", "FP32": "F32"}
UNKNOWN_QUANT = "unknown"


@dataclass(frozen=True)
class RemoteFile:
    """One file of a hub repository.

    ``sha256`` is the content hash of LFS files (None for small files kept in git); ``etag`` is
    what the hub reports as the file's ETag (the sha256 for LFS files, the git blob id for
    others); ``commit`` is the repository commit the file was listed at, and ``url`` downloads
    exactly that version. ``size`` is None only when the hub did not say.
    """

    path: str
    size: int | None
    sha256: str | None
    url: str
    etag: str | None = None
    commit: str | None = None


@dataclass(frozen=True)
class QuantGroup:
    """One downloadable model at one quantization: a single file, or the ordered parts of a split.

    ``name`` is the file's path without the split suffix and ``.gguf``; ``split_count`` is the
    number of parts the file names announce (1 when not split).
    """

    quant: str
    files: tuple[RemoteFile, ...]
    total_size: int
    is_split: bool
    label: str
    name: str
    split_count: int = 1

    @property
    def is_complete(self) -> bool:
        """Whether every announced part of a split model is present."""
        return len(self.files) == self.split_count


@dataclass(frozen=True)
class RepoGGUF:
    """The GGUF content of one repository at one commit."""

    repo_id: str
    commit: str | None
    quants: tuple[QuantGroup, ...]
    projectors: tuple[RemoteFile, ...]


def _normalize(token: str) -> str:
    upper = token.upper()
    return _ALIASES.get(upper, upper)


def parse_quant(path: str) -> str | None:
    """The quantization named by a GGUF file's path ("Q4_K_M", "IQ4_XS", "F16"...), or None.

    The file name is searched first (the last match wins: quant names end file names), then
    the folders from the innermost out. ``FP16`` becomes ``F16``; Unsloth's ``UD-`` prefix is kept.
    """
    parts = PurePosixPath(path).parts
    if not parts:
        return None
    stem = split_info(parts[-1])[0]
    stem = stem[: -len(".gguf")] if stem.lower().endswith(".gguf") else stem
    for text in (stem, *reversed(parts[:-1])):
        matches = list(_QUANT_RE.finditer(text))
        if matches:
            return _normalize(matches[-1].group("quant"))
    return None


def split_info(name: str) -> tuple[str, int, int]:
    """``(name without the split suffix, part number, part count)``; ``(name, 1, 1)`` if whole.

    Split files are named as llama.cpp's gguf-split writes them: ``stem-00001-of-00003.gguf``.
    """
    match = _SPLIT_RE.match(name)
    if match is None:
        return name, 1, 1
    return match["base"], int(match["no"]), int(match["count"])


def is_projector(path: str) -> bool:
    """Whether a GGUF file is a multimodal projector (mmproj), not a language model."""
    return "mmproj" in PurePosixPath(path).name.lower()


def _group_name(path: str) -> tuple[str, int, int]:
    """The group a file belongs to: its path without split suffix and ``.gguf``, part, count."""
    folder, _, name = path.rpartition("/")
    base, number, count = split_info(name)
    if count == 1 and base.lower().endswith(".gguf"):
        base = base[: -len(".gguf")]
    return (f"{folder}/{base}" if folder else base), number, count


def group_gguf_files(repo_id: str, files: list[RemoteFile], commit: str | None = None) -> RepoGGUF:
    """Group a repository's GGUF files by model file (split parts together), smallest first.

    Files not ending in ``.gguf`` are ignored; projectors are returned apart. When two groups
    share a quantization (two models in one repository) their labels use the file names.
    """
    groups: dict[str, list[tuple[int, int, RemoteFile]]] = {}
    projectors: list[RemoteFile] = []
    for f in files:
        if not f.path.lower().endswith(".gguf"):
            continue
        if is_projector(f.path):
            projectors.append(f)
            continue
        name, number, count = _group_name(f.path)
        groups.setdefault(name, []).append((number, count, f))

    drafts = []
    for name, members in groups.items():
        members.sort(key=lambda m: m[0])
        count = max(m[1] for m in members)
        quant = parse_quant(members[0][2].path) or UNKNOWN_QUANT
        parts = tuple(m[2] for m in members)
        drafts.append((quant, name, count, parts))
    quant_counts = Counter(d[0] for d in drafts)

    result = []
    for quant, name, count, parts in drafts:
        unique = quant != UNKNOWN_QUANT and quant_counts[quant] == 1
        label = quant if unique else PurePosixPath(name).name
        if count > 1:
            label += (
                f" ({count} parts)"
                if len(parts) == count
                else f" (incomplete: {len(parts)} of {count} parts)"
            )
        total = sum(f.size or 0 for f in parts)
        result.append(QuantGroup(quant, parts, total, count > 1, label, name, count))
    result.sort(key=lambda g: (g.total_size, g.label))
    projectors.sort(key=lambda f: (f.size or 0, f.path))
    return RepoGGUF(repo_id, commit, tuple(result), tuple(projectors))
