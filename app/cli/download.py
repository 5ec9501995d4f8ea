"""``quantdesk download REPO FILE [--revision R] [--json]``: fetch one model file, verified.

Ctrl-C pauses (the part is kept, exit status 130); running the same command again resumes.
Files land in the app's models folder under ``hub/owner/name/``.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time

from quantdesk.cli._progress import ProgressLine

NAME = "download"


def register(sub: argparse._SubParsersAction) -> None:
    """Add the sub-command's parser."""
    parser = sub.add_parser(NAME, help="Download a model file from the Hub (resumable, verified).")
    parser.add_argument("repo", help="owner/name")
    parser.add_argument("file", help="path of the file in the repo")
    parser.add_argument("--revision", default=None, help="branch, tag or commit")
    parser.add_argument("--json", action="store_true", help="Print the result as JSON.")


class _Bar:
    def __init__(self) -> None:
        self.started = time.monotonic()
        self.first: int | None = None
        self.line = ProgressLine()

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if self.first is None:
            self.first = done
        rate = (done - self.first) / max(now - self.started, 1e-6)
        eta = (total - done) / rate if rate > 0 else 0
        self.line.show(done / total if total else 0.0,
                       f"{done / 1e6:,.1f}/{total / 1e6:,.1f} MB  {rate / 1e6:6.1f} MB/s  "
                       f"ETA {eta:4.0f} s")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    """Queue the file (or find it in the queue), run just that item to the end, show progress."""
    from quantdesk.config.hub_access import hub_client
    from quantdesk.config.paths import resolve_paths
    from quantdesk.engine.downloads.queue import DownloadManager, DownloadState
    from quantdesk.engine.errors import DownloadFailed

    paths = resolve_paths()
    bar = None if args.json else _Bar()
    manager = DownloadManager(
        paths.downloads_db,
        paths.models_dir / "hub",
        hub_client(paths),
        on_change=(lambda item: bar(item.done_bytes, item.total_bytes)) if bar else None,
    )
    previous = signal.getsignal(signal.SIGINT)
    try:
        item = manager.enqueue(args.repo, [args.file], args.revision)
        if item.state == DownloadState.PAUSED:
            manager.resume(item.id)
        elif item.state == DownloadState.FAILED:
            manager.retry(item.id)
        # Ctrl-C pauses: the worker stops before its next chunk and keeps the part.
        signal.signal(signal.SIGINT, lambda *_: manager.pause(item.id))
        manager.start(only=[item.id])  # the rest of the queue belongs to the app
        item = manager.wait(item.id)
    finally:
        signal.signal(signal.SIGINT, previous)
        manager.shutdown()
    if bar is not None:
        bar.line.finish()
    if item.state == DownloadState.PAUSED:
        sys.stderr.write("Paused; run the same command to resume.\n")
        return 130
    if item.state != DownloadState.DONE:
        raise DownloadFailed(item.error or f"The download was {item.state}.")
    from quantdesk.engine.library.store import add_model_file

    # into the library, as a download in the window goes: `quantdesk ls` and the app list it
    add_model_file(paths.library_db, item.dest, source="downloaded", owned=True,
                   sha256=manager.verified_sha256(item.id))  # fmt: skip
    if args.json:
        print(json.dumps(item.to_json()))
    else:
        checked = manager.verified_sha256(item.id)
        print(f"{item.dest} ({item.total_bytes:,} bytes, " + (
            "sha256 verified)" if checked
            else "not verified: the hub gave no sha256 to compare it with)"))  # fmt: skip
    return 0
