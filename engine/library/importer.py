"""Adding GGUF files to the library: strict validation first, then reference, copy or move.

Nothing reaches the library (or llama.cpp) before its header passed the strict
reader. A copy is written to a ``.part`` file and renamed into place only when
complete, so an interrupted copy never shows up as a model; a move is a rename on the same
disk, else a complete copy first and the original removed only after it. The parts of a
split set (``name-00001-of-00003.gguf``...) travel together under their own names, and the
library lists the set once (by its first part, which is what llama.cpp opens).
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from quantdesk.engine.errors import ImportRejected, QuantDeskError
from quantdesk.engine.gguf.model_info import summarize
from quantdesk.engine.gguf.reader import read_header_from_file
from quantdesk.engine.library.discovery import group_split_sets, model_stem, split_info
from quantdesk.engine.library.store import LibraryEntry, ModelLibrary

MODE_COPY = "copy"
MODE_MOVE = "move"
MODE_REFERENCE = "reference"
_PARTIAL_SUFFIXES = (".part", ".tmp", ".partial", ".download")
_COPY_CHUNK = 8 * 1024 * 1024


@dataclass(frozen=True)
class ImportOutcome:
    """What happened to one offered file: an entry, or a readable error."""

    source: Path
    entry: LibraryEntry | None = None
    error: str = ""
    details: str = ""


def find_gguf_files(paths: Iterable[Path]) -> list[Path]:
    """Expand dropped paths: files as given, folders searched for ``*.gguf``."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            for candidate in sorted(path.rglob("*")):
                name = candidate.name.lower()
                if name.endswith(".gguf") and not name.startswith(".") and candidate.is_file():
                    found.append(candidate)
        else:
            found.append(path)
    return found


def _unique_target(models_dir: Path, name: str) -> Path:
    # Only the base name is used: a dropped path can never write outside models_dir.
    base = Path(name).name or "model.gguf"
    target = models_dir / base
    stem, suffix = target.stem, target.suffix
    counter = 1
    while target.exists():
        target = models_dir / f"{stem}-{counter}{suffix}"
        counter += 1
    return target


def copy_into(source: Path, models_dir: Path, name: str | None = None) -> Path:
    """Copy ``source`` into ``models_dir`` atomically; returns the new path."""
    models_dir.mkdir(parents=True, exist_ok=True)
    size = source.stat().st_size
    free = shutil.disk_usage(models_dir).free
    if free < size + 64 * 1024 * 1024:
        raise ImportRejected(
            f"Not enough free disk space to copy '{source.name}' ({size / 2**30:.2f} GiB needed, "
            f"{free / 2**30:.2f} GiB free in {models_dir}). Reference it in place instead, or "
            "free some space."
        )
    target = _unique_target(models_dir, name or source.name)
    partial = target.with_name(target.name + ".part")
    try:
        with source.open("rb") as src, partial.open("wb") as dst:
            shutil.copyfileobj(src, dst, _COPY_CHUNK)
            dst.flush()
            os.fsync(dst.fileno())
        os.replace(partial, target)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise ImportRejected(
            f"Copying '{source.name}' failed: {exc.strerror or exc}. Nothing was added.",
            details=repr(exc),
        ) from exc
    return target


def move_into(source: Path, models_dir: Path, name: str | None = None) -> Path:
    """Move ``source`` into ``models_dir`` (rename, or copy then delete across disks).

    A symbolic link is copied instead (its content; the link and its target stay as they
    are): moving the link would leave the model outside the folder, or break a relative link.
    """
    if source.is_symlink():
        return copy_into(source, models_dir, name)
    models_dir.mkdir(parents=True, exist_ok=True)
    target = _unique_target(models_dir, name or source.name)
    try:
        os.rename(source, target)
        return target
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise ImportRejected(
                f"Moving '{source.name}' failed: {exc.strerror or exc}. Nothing was changed."
            ) from exc
    copied = copy_into(source, models_dir, name)
    source.unlink()  # only once the complete copy is in place
    return copied


def import_model(
    parts: tuple[Path, ...], library: ModelLibrary, models_dir: Path, mode: str
) -> ImportOutcome:
    """Validate one model (a file, or all parts of a split set) and add it to the library."""
    path = parts[0]
    try:
        for part in parts:
            if part.name.lower().endswith(_PARTIAL_SUFFIXES):
                raise ImportRejected(
                    f"'{part.name}' looks like an unfinished download; not imported."
                )
        info = split_info(path)
        if info is not None and len(parts) != info[2]:
            raise ImportRejected(
                f"'{path.name}' is part of a set of {info[2]} files but {len(parts)} "
                f"{'is' if len(parts) == 1 else 'are'} here; add all the parts together."
            )
        report = summarize(read_header_from_file(path), path=path)
        for part in parts[1:]:
            read_header_from_file(part)
        # the app owns a file only when it really lies in its folder (not a link into or out of it)
        inside = not path.is_symlink() and path.parent.resolve() == models_dir.resolve()
        if mode in (MODE_COPY, MODE_MOVE) and not inside:
            folder = models_dir / model_stem(path) if len(parts) > 1 else models_dir
            place = copy_into if mode == MODE_COPY else move_into
            stored = [place(part, folder) for part in parts]
            entry = library.add(stored[0], report, source="imported", owned=True)
        else:
            entry = library.add(path, report, source="imported", owned=inside)
    except QuantDeskError as exc:
        return ImportOutcome(path, error=exc.message, details=exc.details)
    except OSError as exc:
        return ImportOutcome(path, error=f"'{path.name}' could not be read: {exc.strerror or exc}.")
    return ImportOutcome(path, entry=entry)


def import_file(path: Path, library: ModelLibrary, models_dir: Path, mode: str) -> ImportOutcome:
    """Validate one file and add it to the library (see :func:`import_model`)."""
    return import_model((path,), library, models_dir, mode)


def import_paths(
    paths: Iterable[Path], library: ModelLibrary, models_dir: Path, mode: str
) -> list[ImportOutcome]:
    """Import every GGUF model among ``paths`` (folders are searched; split sets as one)."""
    files = find_gguf_files(paths)
    if not files:
        return [ImportOutcome(Path(p), error=f"No .gguf files found in '{p}'.") for p in paths]
    order = {f: i for i, f in reversed(list(enumerate(files)))}
    models = sorted(group_split_sets(files), key=lambda parts: order[parts[0]])  # as offered
    return [import_model(parts, library, models_dir, mode) for parts in models]
