"""``quantdesk downloads [--json]``: the download queue (the same one the GUI shows)."""

from __future__ import annotations

import argparse
import json

from quantdesk.engine.gguf.model_info import human_bytes

NAME = "downloads"


def register(sub: argparse._SubParsersAction) -> None:
    """Add the sub-command's parser."""
    parser = sub.add_parser(NAME, help="List the download queue.")
    parser.add_argument("--json", action="store_true", help="Machine-readable output.")


def run(args: argparse.Namespace) -> int:
    """Print every queued, running, paused, failed and finished download."""
    from quantdesk.cli._stores import open_for_reading
    from quantdesk.config.hub_access import hub_client
    from quantdesk.config.paths import resolve_paths
    from quantdesk.engine.downloads.queue import DownloadManager
    from quantdesk.engine.downloads.store import DownloadStore

    paths = resolve_paths()
    queue = open_for_reading(DownloadStore, paths.downloads_db, what="The download queue")
    manager = DownloadManager(queue, paths.models_dir / "hub", hub_client(paths))
    # no start(): listing runs nothing
    try:
        items = manager.items()
    finally:
        manager.shutdown()
    if args.json:
        print(json.dumps([i.to_json() for i in items], indent=2))
        return 0
    if not items:
        print("No downloads. Start one in the app's Discover page or with 'quantdesk download'.")
    for i in items:
        files = i.files[0] + (f" (+{len(i.files) - 1} parts)" if len(i.files) > 1 else "")
        print(
            f"{i.id:>4}  {i.state:<9} {i.fraction * 100:5.1f}%  "
            f"{human_bytes(i.total_bytes):>10}  {i.repo_id}/{files}"
            + (f"  - {i.error}" if i.error else "")
        )
    return 0
