"""Command-line sibling of the GUI, on the same engine.

Each sub-command lives in its own module ``quantdesk.cli_<name>`` with
``NAME``, ``register(subparsers)`` and ``run(args) -> int``; add new ones to
:data:`COMMAND_MODULES`. Errors are one readable line on stderr and exit
status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sqlite3
import sys
from collections.abc import Sequence
from types import ModuleType

from quantdesk import __version__
from quantdesk.engine.errors import QuantDeskError
from quantdesk.engine.sqlite_files import write_failure_words

COMMAND_MODULES = (
    "inspect", "run", "hw", "search", "quants", "estimate", "download", "downloads", "quantize",
    "ls", "chats", "export", "import_chat", "doctor", "integrate", "serve", "rpc_worker", "ladder",
    "token",
)
SUBCOMMANDS = tuple(name.replace("_", "-") for name in COMMAND_MODULES)
"""What users type: module ``cli_import_chat`` is the command ``import-chat``."""
EXIT_USER_ERROR = 2


def _modules() -> dict[str, ModuleType]:
    return {name: importlib.import_module(f"quantdesk.cli_{name}") for name in COMMAND_MODULES}


def _parser(modules: dict[str, ModuleType]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="quantdesk", description="QuantDesk command line.")
    parser.add_argument("--version", action="version", version=f"QuantDesk {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for module in modules.values():
        module.register(sub)
    return parser


def run_cli(argv: Sequence[str]) -> int:
    """Run one CLI command; returns the exit status."""
    modules = _modules()
    args = _parser(modules).parse_args(list(argv))
    try:
        return modules[args.command.replace("-", "_")].run(args)
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
