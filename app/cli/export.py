"""``quantdesk export CHAT_ID --format md|json [--out FILE]``: a chat, and how to redo it."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

NAME = "export"


def register(sub: argparse._SubParsersAction) -> None:
    """Add the sub-command's parser."""
    parser = sub.add_parser(NAME, help="Export a chat to Markdown or JSON.")
    parser.add_argument("chat_id", type=int, metavar="CHAT_ID", help="From `quantdesk chats`.")
    parser.add_argument("--format", choices=("md", "json"), default="md",
                        help="Markdown (default) or JSON (which `import-chat` reads back).")
    parser.add_argument("--out", type=Path, metavar="FILE", help="Write here, not to stdout.")
    parser.add_argument("--no-hash", action="store_true",
                        help="Skip the model file's sha256 (slow for large models).")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    """Print (or write) the export."""
    from quantdesk.cli.chats import open_store
    from quantdesk.engine.chat.export import export_json, export_markdown

    store = open_store()
    try:
        if args.format == "json":
            data = export_json(store, args.chat_id, hash_models=not args.no_hash)
            text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
        else:
            text = export_markdown(store, args.chat_id, hash_models=not args.no_hash)
    finally:
        store.close()
    if args.out is None:
        sys.stdout.write(text)
        return 0
    part = args.out.with_name(args.out.name + ".part")
    part.write_text(text, encoding="utf-8")
    os.replace(part, args.out)  # never a half-written export under the real name
    print(f"Chat {args.chat_id} exported to {args.out}", file=sys.stderr)
    return 0
