"""The ``quantdesk`` command: the GUI, or the CLI when given a sub-command."""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI for a known sub-command, otherwise start the GUI."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--run-module"] and len(args) > 1:  # a child process of a bundled app
        import runpy

        sys.argv = [args[1], *args[2:]]
        runpy.run_module(args[1], run_name="__main__", alter_sys=True)
        return 0
    from quantdesk.cli import SUBCOMMANDS

    if args and args[0] in SUBCOMMANDS:
        from quantdesk.cli import run_cli

        return run_cli(args)
    from quantdesk.gui import run_gui

    return run_gui(args)


if __name__ == "__main__":
    sys.exit(main())
