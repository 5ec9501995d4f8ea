"""Command-line sibling of the GUI, on the same engine.

Each sub-command lives in its own module of this package (``quantdesk.cli.<name>``) with
``register(subparsers)`` and ``run(args) -> int``, listed in :mod:`quantdesk.cli._commands`
(imported there, so every tool sees who uses it); add new ones there and to
:data:`SUBCOMMANDS`. Helpers the commands share are the private modules (``_progress``,
``_stores``). Errors are one readable line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from collections.abc import Mapping, Sequence
from types import ModuleType

from quantdesk import __version__
from quantdesk.engine.errors import QuantDeskError
from quantdesk.engine.sqlite_files import write_failure_words

SUBCOMMANDS = (
    "inspect", "run", "hw", "search", "quants", "estimate", "download", "downloads", "quantize",
    "ls", "chats", "export", "import-chat", "doctor", "integrate", "serve", "rpc-worker", "ladder",
    "token",
)
"""What users type, in the help's order (module ``import_chat`` is the command
``import-chat``); known without importing the commands, so the GUI starts without them."""
EXIT_USER_ERROR = 2


def _parser(modules: Mapping[str, ModuleType]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="quantdesk", description="QuantDesk command line.")
    parser.add_argument("--version", action="version", version=f"QuantDesk {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for module in modules.values():
        module.register(sub)
    return parser


def run_cli(argv: Sequence[str]) -> int:
    """Run one CLI command; returns the exit status."""
    from quantdesk.cli._commands import COMMANDS

    args = _parser(COMMANDS).parse_args(list(argv))
    try:
        return COMMANDS[args.command].run(args)
    except QuantDeskError as exc:
        where = getattr(args, "file", None)
        prefix = f"{where.name}: " if hasattr(where, "name") else ""
        print(f"quantdesk: error: {prefix}{exc.message}", file=sys.stderr)
        return EXIT_USER_ERROR
    except sqlite3.Error as exc:  # a store locked, read-only or full mid-way: one line too
        print(f"quantdesk: error: {write_failure_words(exc)}", file=sys.stderr)
        return EXIT_USER_ERROR
    except BrokenPipeError:
        return 0
