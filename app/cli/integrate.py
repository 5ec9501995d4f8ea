"""``quantdesk integrate --install|--uninstall``: the Linux menu entry, icon and ``.gguf`` file
type for the current user, so that a double-click on a model opens it in QuantDesk."""

from __future__ import annotations

import argparse

NAME = "integrate"


def register(sub: argparse._SubParsersAction) -> None:
    """Add the sub-command's parser."""
    parser = sub.add_parser(
        NAME, help="Add (or remove) QuantDesk to the desktop: menu entry, icon, .gguf file type."
    )
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--install", action="store_true", help="Add it for this user.")
    group.add_argument("--uninstall", action="store_true", help="Remove what --install added.")


def run(args: argparse.Namespace) -> int:
    """Install or uninstall and say what was done."""
    from quantdesk.cli._desktop_integration import MIME_TYPE, install, uninstall

    report = install() if args.install else uninstall()
    verb = "Wrote" if args.install else "Removed"
    print(f"{verb} {len(report.files)} files:")
    for path in report.files:
        print(f"  {path}")
    for command in report.ran:
        print(f"Ran: {command}")
    if report.missing_tools:
        print("Not installed here (the files above still work once they are): "
              + ", ".join(report.missing_tools))  # fmt: skip
    if args.install:
        print(f"Double-clicking a .gguf file ({MIME_TYPE}) now opens it in QuantDesk.")
    return 0
