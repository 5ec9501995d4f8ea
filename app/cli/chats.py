"""``quantdesk chats [--json] [--search TEXT]``: the saved conversations."""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from quantdesk.engine.chat.conversations import ConversationStore

NAME = "chats"


def open_store() -> ConversationStore:
    """The app's chat database (the GUI's own), as the CLI commands use it."""
    from quantdesk.cli._stores import open_for_reading
    from quantdesk.config.paths import resolve_paths
    from quantdesk.engine.chat.conversations import ConversationStore

    return open_for_reading(ConversationStore, resolve_paths().chats_db, what="The chat history")


def register(sub: argparse._SubParsersAction) -> None:
    """Add the sub-command's parser."""
    parser = sub.add_parser(
        NAME, help="List saved chats.",
        description="List saved chats: 'messages' in the version shown, 'versions' the earlier "
        "edits and regenerated replies kept beside them (quantdesk export shows them all).",
    )
    parser.add_argument("--json", action="store_true", help="Machine-readable output.")
    parser.add_argument("--search", default="", metavar="TEXT",
                        help="Only chats whose title or messages contain TEXT.")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    """Print the chats, pinned first, then the most recently updated."""
    store = open_store()
    try:
        chats = store.chats(args.search)
    finally:
        store.close()
    if args.json:
        rows = [
            {"id": c.id, "title": c.title, "messages": c.message_count,
             "other_versions": c.stored_count - c.message_count, "pinned": c.pinned,
             "created": c.created, "updated": c.updated}
            for c in chats
        ]  # fmt: skip
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return 0
    if not chats:
        print("No chats match." if args.search.strip() else "No chats yet.")
        return 0
    print(f"{'id':>5}  {'messages':>8}  {'versions':>8}  {'updated':<16}  title")
    for c in chats:
        updated = datetime.fromtimestamp(c.updated).strftime("%Y-%m-%d %H:%M")
        pin = "(pinned) " if c.pinned else ""
        older = c.stored_count - c.message_count  # edits and regenerated replies not shown
        print(f"{c.id:>5}  {c.message_count:>8}  {'+' + str(older) if older else '':>8}  "
              f"{updated:<16}  {pin}{c.title}")
    return 0
