"""``quantdesk hw [--json]``: this machine's CPU, memory, GPUs and what llama.cpp can use."""

from __future__ import annotations

import argparse
import json

NAME = "hw"


def register(sub: argparse._SubParsersAction) -> None:
    """Add the sub-command's parser."""
    parser = sub.add_parser(
        NAME, help="Show CPU, memory, GPUs and which of them the llama.cpp build can use."
    )
    parser.add_argument("--json", action="store_true", help="Machine-readable output.")
    parser.add_argument(
        "--timeout",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="Longest wait for each vendor tool such as rocm-smi (default 5).",
    )


def run(args: argparse.Namespace) -> int:
    """Probe and print the hardware report."""
    from quantdesk.engine.hardware.machine import probe_hardware
    from quantdesk.engine.hardware.text import format_text

    report = probe_hardware(tool_timeout=args.timeout)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(format_text(report))
    return 0
