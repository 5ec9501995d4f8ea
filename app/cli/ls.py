"""``quantdesk ls [--json]``: the model library, with each model's source, after a rescan.

The same list as the window's library: the app's own models (starters, copies, downloads,
quantized files), files used in place, and models found in place (Hugging Face cache, LM
Studio, Ollama, Jan, GPT4All, the watched folders and any ``--folder``), after the same scan
(:mod:`quantdesk.engine.library.sync`); nothing is copied, moved or modified.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

NAME = "ls"


def register(sub: argparse._SubParsersAction) -> None:
    """Add the sub-command's parser."""
    parser = sub.add_parser(
        NAME, help="List the GGUF models on this computer (other tools' too) and where they are."
    )
    parser.add_argument("--json", action="store_true", help="Machine-readable output.")
    parser.add_argument(
        "--folder",
        action="append",
        type=Path,
        default=[],
        metavar="DIR",
        help="Also look in DIR and its subfolders (may be given more than once).",
    )


def run(args: argparse.Namespace) -> int:
    """Rescan as the window does, then print the library."""
    import os

    from quantdesk.config.paths import resolve_paths
    from quantdesk.config.settings import Settings
    from quantdesk.engine.gguf.model_info import human_bytes
    from quantdesk.engine.library.store import ModelLibrary
    from quantdesk.engine.library.sync import discovery_roots, sync_discovered

    paths = resolve_paths()
    settings = Settings(paths.settings_file)
    watched = [Path(f) for f in settings.get("library.watched_folders")] + list(args.folder)
    result = sync_discovered(
        paths.library_db, paths.model_index_db, watched=watched,
        hidden=set(settings.get("library.hidden")), roots=discovery_roots(None, os.environ),
    )  # fmt: skip
    library = ModelLibrary(paths.library_db)
    try:
        entries = library.entries()
    finally:
        library.close()
    names = {str(e.path): result.names.get(str(e.path), e.name) for e in entries}
    if args.json:
        rows = [{"name": names[str(e.path)], "path": str(e.path), "source": e.source,
                 "owned": e.owned, "file_type": e.file_type, "size": e.size,
                 "architecture": e.architecture, "parameters": e.parameters,
                 "sha256": e.sha256 or None} for e in entries]  # fmt: skip
        invalid = [{"path": p, "error": why} for p, why in result.invalid.items()]
        print(json.dumps({"models": rows, "invalid": invalid}, indent=2))
        return 0
    if result.index_note:
        print(f"quantdesk: {result.index_note}", file=sys.stderr)
    for path, why in result.invalid.items():
        print(f"not a usable model: {path} - {why}")
    if not entries:
        print("No GGUF models found. Add a folder with --folder DIR, or download one in the app.")
        return 0
    width = min(60, max(len(n) for n in names.values()))
    for e in entries:
        name = names[str(e.path)]
        missing = "" if e.exists else "  - the file is gone"
        print(f"{name:<{width}}  {e.source:<10}  {e.file_type:<8}  {human_bytes(e.size):>9}  "
              f"{e.path}{missing}")
    print(f"{len(entries)} model(s); this scan found {result.added} new and "
          f"{result.removed} gone.")  # fmt: skip
    return 0
