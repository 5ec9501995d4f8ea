"""``quantdesk inspect FILE [--json] [--tensors]``: what a GGUF file contains (header only)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

NAME = "inspect"


def register(sub: argparse._SubParsersAction) -> None:
    """Add the sub-command's parser."""
    parser = sub.add_parser(NAME, help="Show what a GGUF file contains (header only).")
    parser.add_argument("file", type=Path)
    parser.add_argument("--json", action="store_true", help="Machine-readable output.")
    parser.add_argument("--tensors", action="store_true", help="Include the tensor table.")


def run(args: argparse.Namespace) -> int:
    """Print the header report."""
    from quantdesk.engine.gguf.model_info import format_text, summarize
    from quantdesk.engine.gguf.reader import read_header_from_file

    report = summarize(read_header_from_file(args.file), path=args.file)
    if args.json:
        data = report.to_dict()
        if not args.tensors:
            data.pop("tensors", None)
        print(json.dumps(data, indent=2))
    else:
        print(format_text(report, include_tensors=args.tensors))
    return 0
