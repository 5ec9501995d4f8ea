"""``quantdesk ls [--json]``: the model library, with each model's source, after a rescan.

Lists models found in place (Hugging Face cache, LM Studio, Ollama, Jan, GPT4All), the app's
own models folder and any ``--folder``; nothing is copied, moved or modified.
"""

from __future__ import annotations

import argparse
import json
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
    """Rescan, then print the index."""
    from quantdesk.engine.discovery import discover_models
    from quantdesk.engine.model_index import ModelIndex
    from quantdesk.engine.model_info import human_bytes
    from quantdesk.paths import resolve_paths

    paths = resolve_paths()
    index = ModelIndex(paths.model_index_db)
    try:
        report = index.refresh(discover_models(watched=[paths.models_dir, *args.folder]))
        entries = index.entries()
    finally:
        index.close()
    if args.json:
        print(json.dumps([e.to_json() for e in entries], indent=2))
        return 0
    if not entries:
        print("No GGUF models found. Add a folder with --folder DIR, or download one in the app.")
        return 0
    width = min(60, max(len(e.name) for e in entries))
    for e in entries:
        quant = "invalid" if e.error else (e.file_type or "?")
        line = f"{e.name:<{width}}  {e.source:<8}  {quant:<8}  {human_bytes(e.size):>9}  {e.path}"
        print(line + (f"  - {e.error}" if e.error else ""))
    print(
        f"{len(entries)} model(s); since the last scan {len(report.added)} added, "
        f"{len(report.changed)} changed, {len(report.removed)} removed."
    )
    return 0
