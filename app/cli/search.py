"""``quantdesk search QUERY [--sort downloads|likes|recent] [--limit N] [--json]``: hub models."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

NAME = "search"


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def register(sub: argparse._SubParsersAction) -> None:
    """Add the sub-command's parser."""
    parser = sub.add_parser(
        NAME,
        help="Search the model hub for GGUF models (HF_ENDPOINT / HF_TOKEN are honoured).",
    )
    parser.add_argument("query", help="Words the repository name contains, e.g. 'llama 8b'.")
    parser.add_argument(
        "--sort",
        choices=("downloads", "likes", "recent"),
        default="downloads",
        help="Order of the results (default: downloads).",
    )
    parser.add_argument("--limit", type=_positive, default=20, help="At most N results (20).")
    parser.add_argument(
        "--all-formats", action="store_true", help="Include repositories without GGUF files."
    )
    parser.add_argument("--json", action="store_true", help="Machine-readable output.")


def format_table(results: list) -> str:
    """The results as a text table: repo, downloads, likes, updated, params, architecture."""
    from quantdesk.engine.gguf.model_info import parameter_label

    rows = [("REPO", "DOWNLOADS", "LIKES", "UPDATED", "PARAMS", "ARCH")]
    for r in results:
        rows.append(
            (
                r.repo_id,
                f"{r.downloads:,}",
                f"{r.likes:,}",
                (r.last_modified or "")[:10] or "-",
                parameter_label(r.parameter_count) if r.parameter_count else "-",
                r.architecture or "-",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    right = {1, 2}
    lines = [
        "  ".join(
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ).rstrip()
        for row in rows
    ]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Search and print the results."""
    from quantdesk.config.hub_access import hub_client
    from quantdesk.config.paths import resolve_paths

    results = hub_client(resolve_paths()).search(
        args.query, gguf_only=not args.all_formats, sort=args.sort, limit=args.limit
    )
    if args.json:
        print(json.dumps([asdict(r) for r in results], indent=2))
    elif not results:
        kind = "models" if args.all_formats else "GGUF models"
        print(f"No {kind} on the hub match {args.query!r}.")
    else:
        print(format_table(results))
    return 0
