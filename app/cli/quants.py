"""``quantdesk quants REPO [--revision REV] [--json]``: the quantizations a hub repo offers."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

NAME = "quants"


def register(sub: argparse._SubParsersAction) -> None:
    """Add the sub-command's parser."""
    parser = sub.add_parser(
        NAME, help="List the GGUF quantizations of a hub repository with their download sizes."
    )
    parser.add_argument("repo", help="Repository id, e.g. 'bartowski/Llama-3.2-1B-Instruct-GGUF'.")
    parser.add_argument("--revision", help="Branch, tag or commit (default: main).")
    parser.add_argument("--json", action="store_true", help="Machine-readable output.")


def format_text(repo) -> str:  # noqa: ANN001 - a RepoGGUF
    """The repository's quantizations as text, smallest first."""
    from quantdesk.engine.gguf.model_info import human_bytes

    at = f" at commit {repo.commit[:7]}" if repo.commit else ""
    if not repo.quants:
        return f"{repo.repo_id}{at} has no GGUF model files."
    n = len(repo.quants)
    lines = [f"{repo.repo_id}{at}: {n} quantization{'s' if n != 1 else ''}", ""]
    rows = [("QUANT", "SIZE", "FILE")]
    for g in repo.quants:
        first = g.files[0].path
        rows.append((g.label, human_bytes(g.total_size), first + (" ..." if g.is_split else "")))
    widths = [max(len(r[i]) for r in rows) for i in range(2)]
    for label, size, path in rows:
        lines.append(f"{label.ljust(widths[0])}  {size.rjust(widths[1])}  {path}")
    for p in repo.projectors:
        size = f" ({human_bytes(p.size)})" if p.size else ""
        lines.append(f"\nVision projector (for image input): {p.path}{size}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """List and print the quantizations."""
    from quantdesk.config.hub_access import hub_client
    from quantdesk.config.paths import resolve_paths

    repo = hub_client(resolve_paths()).list_gguf(args.repo, revision=args.revision)
    if args.json:
        print(json.dumps(asdict(repo), indent=2))
    else:
        print(format_text(repo))
    return 0
