"""``quantdesk token {set,remove,status}``: the Hugging Face access token, as in Preferences.

``set`` reads the token from standard input (typed without echo at a terminal), never from
the command line, where other users could see it in the process list.
"""

from __future__ import annotations

import argparse
import getpass
import sys

NAME = "token"


def register(sub: argparse._SubParsersAction) -> None:
    """Add the sub-command's parser."""
    parser = sub.add_parser(
        NAME, help="Save, show or remove the Hugging Face access token (gated and private models)."
    )
    parser.add_argument(
        "action", choices=("set", "remove", "status"), nargs="?", default="status",
        help="set: read a token from the terminal or standard input and save it; remove: forget "
        "it; status (default): say whether one is saved and where.",
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    """Do the action and say what was done."""
    from quantdesk.config.hub_access import token_store
    from quantdesk.config.paths import resolve_paths
    from quantdesk.engine.hub.token import environment_token_source

    store = token_store(resolve_paths().ensure())
    if args.action == "set":
        if sys.stdin.isatty():
            text = getpass.getpass("Hugging Face access token (not shown): ")
        else:
            text = sys.stdin.readline()
        saved = store.save(text)
        print(f"Saved the token ending in {saved.hint} in {saved.place}.")
    elif args.action == "remove":
        store.clear()
        print("Removed the saved token.")
    else:
        saved = store.load()
        if saved is not None:
            print(f"A token ending in {saved.hint} is saved in {saved.place}.")
        else:
            fallback = environment_token_source()
            print(
                f"No token is saved in QuantDesk; the one from {fallback} is used."
                if fallback
                else "No token is saved: only public models are reachable."
            )
    return 0
