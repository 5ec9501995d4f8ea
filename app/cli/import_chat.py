"""``quantdesk import-chat FILE.json``: a chat exported as JSON, back as a new chat."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

NAME = "import-chat"


def register(sub: argparse._SubParsersAction) -> None:
    """Add the sub-command's parser."""
    parser = sub.add_parser(NAME, help="Import a chat exported as JSON (as a new chat).")
    parser.add_argument("file", type=Path, metavar="FILE.json")


def run(args: argparse.Namespace) -> int:
    """Import the file and say which chat it became."""
    from quantdesk.config.paths import resolve_paths
    from quantdesk.engine.chat.conversations import ConversationStore
    from quantdesk.engine.chat.export import ChatImportError, import_json
    from quantdesk.engine.wording import counted

    try:
        data = json.loads(args.file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ChatImportError(f"There is no file {args.file}.") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ChatImportError(
            "This file is not JSON, so not a QuantDesk chat export; it may be damaged.", str(exc)
        ) from None
    # written to, so never a copy: a busy, read-only or newer store is a one-line refusal
    store = ConversationStore(resolve_paths().chats_db)
    if store.recovered_from is not None:
        print(f"quantdesk: the chat history was damaged; it was kept as "
              f"'{store.recovered_from.name}' and a new one was started.", file=sys.stderr)
    try:
        chat = import_json(store, data)
    finally:
        store.close()
    print(f"Imported chat {chat.id}: {chat.title} ({counted(chat.message_count, 'message')})")
    return 0
