"""Models found in place (other tools' folders, watched folders) into the library: one scan,
shared by the window's library and `quantdesk ls` (no Qt), so both list the same models and
count the same changes."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from quantdesk.engine.gguf.model_info import summarize
from quantdesk.engine.gguf.reader import read_header_from_file
from quantdesk.engine.library._model_index import ModelIndex
from quantdesk.engine.library.discovery import SOURCES, ToolRoots, discover_models, tool_roots
from quantdesk.engine.library.store import ModelLibrary

#: Set to 1 to look only in watched folders, not in other tools' folders (tests set it).
ENV_SKIP_DISCOVERY = "QUANTDESK_SKIP_DISCOVERY"
_NO_TOOLS = ToolRoots(None, (), (), (), ())


def discovery_roots(home: Path | None, env: Mapping[str, str]) -> ToolRoots:
    """Where other tools keep their models (none when ``ENV_SKIP_DISCOVERY`` is set)."""
    return _NO_TOOLS if env.get(ENV_SKIP_DISCOVERY) == "1" else tool_roots(home, env)


@dataclass(frozen=True)
class ScanResult:
    """What one rescan found, by real path of each model's first file."""

    names: dict[str, str]  # the name its tool gives it ("llama3.2:3b")
    sha256: dict[str, str]
    parts: dict[str, tuple[Path, ...]]
    added: int
    removed: int
    seconds: float
    invalid: dict[str, str] = dataclasses.field(default_factory=dict)  # new bad file -> why
    index_note: str = ""  # the model index was damaged, newer or read-only: what to say


def sync_discovered(
    library_db: Path,
    index_db: Path,
    *,
    watched: list[Path],
    hidden: set[str],
    roots: ToolRoots,
) -> ScanResult:
    """Discover models, refresh the index, and bring the library's found entries in line.

    New or changed files are added (header read once); found entries whose file is gone, or
    whose folder is no longer watched, leave the library. Entries the user added by other
    means keep their source. Runs on any thread (own connections).
    """
    found = discover_models(watched=watched, roots=roots)
    index = ModelIndex(index_db)
    try:
        report = index.refresh(found)
        every = index.entries()
        index_note = index.note
    finally:
        index.close()
    rows = [r for r in every if r.error is None]
    new = {str(p) for p in (*report.added, *report.changed)}  # said once, not on each rescan
    invalid = {str(r.path): r.error for r in every if r.error and str(r.path) in new}
    names: dict[str, str] = {}
    sha: dict[str, str] = {}
    parts: dict[str, tuple[Path, ...]] = {}
    added = removed = 0
    library = ModelLibrary(library_db)
    try:
        for row in rows:
            real = os.path.realpath(row.path)
            split = len(row.parts) > 1  # keep the link: llama.cpp finds the parts by name
            key = str(Path(row.path).absolute()) if split else real
            if real in hidden or key in hidden or not os.path.isfile(real):
                continue
            names[key], parts[key] = row.name, row.parts
            if row.sha256:
                sha[key] = row.sha256
            existing = library.find(Path(key))
            if existing is not None and existing.size == os.path.getsize(real):
                continue
            info = summarize(read_header_from_file(Path(real)), path=real)
            if row.parameter_count:  # a split set: count every part's tensors
                info = dataclasses.replace(
                    info, parameter_count=row.parameter_count,
                    parameter_label=row.parameter_label or info.parameter_label,
                )  # fmt: skip
            library.add(Path(key), info, source=row.source, owned=False, keep_link=split)
            added += existing is None
        for entry in library.entries():
            if entry.source in SOURCES and str(entry.path) not in names:
                library.remove(entry.id)
                removed += 1
    finally:
        library.close()
    return ScanResult(names, sha, parts, added, removed, report.seconds, invalid, index_note)

