"""Adding GGUF files to the library: strict validation first, then copy or reference.

Nothing reaches the library (or llama.cpp) before its header passed the strict
reader. A copy is written to a ``.part`` file and renamed into place only when
complete, so an interrupted copy never shows up as a model.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from quantdesk.engine.errors import ImportRejected, QuantDeskError
from quantdesk.engine.gguf import read_header_from_file
from quantdesk.engine.library import LibraryEntry, ModelLibrary
from quantdesk.engine.model_info import summarize

MODE_COPY = "copy"
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


def copy_into(source: Path, models_dir: Path) -> Path:
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
    target = _unique_target(models_dir, source.name)
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


def import_file(path: Path, library: ModelLibrary, models_dir: Path, mode: str) -> ImportOutcome:
    """Validate one file and add it to the library (copying it when ``mode`` is copy)."""
    try:
        if path.name.lower().endswith(_PARTIAL_SUFFIXES):
            raise ImportRejected(f"'{path.name}' looks like an unfinished download; not imported.")
        report = summarize(read_header_from_file(path), path=path)
        if mode == MODE_COPY and path.resolve().parent != models_dir.resolve():
            stored = copy_into(path, models_dir)
            entry = library.add(stored, report, source="imported", owned=True)
        else:
            entry = library.add(path, report, source="imported", owned=False)
    except QuantDeskError as exc:
        return ImportOutcome(path, error=exc.message, details=exc.details)
    except OSError as exc:
        return ImportOutcome(path, error=f"'{path.name}' could not be read: {exc.strerror or exc}.")
    return ImportOutcome(path, entry=entry)


def import_paths(
    paths: Iterable[Path], library: ModelLibrary, models_dir: Path, mode: str
) -> list[ImportOutcome]:
    """Import every GGUF file among ``paths`` (folders are searched)."""
    files = find_gguf_files(paths)
    if not files:
        return [ImportOutcome(Path(p), error=f"No .gguf files found in '{p}'.") for p in paths]
    return [import_file(f, library, models_dir, mode) for f in files]
