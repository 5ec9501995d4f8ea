"""Command-line sibling of the GUI, on the same engine.

    quantdesk inspect FILE [--json] [--tensors]
    quantdesk run FILE --prompt TEXT [-n N] [--ctx N] [--threads N] [--gpu-layers N] [--json]

Errors are one readable line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from quantdesk import __version__
from quantdesk.engine.errors import QuantDeskError

SUBCOMMANDS = ("inspect", "run")
EXIT_USER_ERROR = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="quantdesk", description="QuantDesk command line.")
    parser.add_argument("--version", action="version", version=f"QuantDesk {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    inspect = sub.add_parser("inspect", help="Show what a GGUF file contains (header only).")
    inspect.add_argument("file", type=Path)
    inspect.add_argument("--json", action="store_true", help="Machine-readable output.")
    inspect.add_argument("--tensors", action="store_true", help="Include the tensor table.")

    run = sub.add_parser("run", help="Generate text from a GGUF model, streamed to stdout.")
    run.add_argument("file", type=Path)
    run.add_argument("--prompt", required=True, help="Text to continue (or chat message).")
    run.add_argument("-n", "--max-tokens", type=int, default=128)
    run.add_argument("--ctx", type=int, default=4096, help="Context length in tokens.")
    run.add_argument("--threads", type=int, default=0, help="0 = physical cores.")
    run.add_argument("--gpu-layers", type=int, default=0)
    run.add_argument("--temperature", type=float, default=0.8)
    run.add_argument("--seed", type=int, default=-1)
    run.add_argument("--json", action="store_true", help="Print one JSON object at the end.")
    run.add_argument("--no-probe", action="store_true", help="Skip the child-process test load.")
    run.add_argument("--verbose", action="store_true", help="Show llama.cpp's own log on stderr.")
    return parser


def _inspect(args: argparse.Namespace) -> int:
    from quantdesk.engine.gguf import read_header_from_file
    from quantdesk.engine.model_info import format_text, summarize

    report = summarize(read_header_from_file(args.file), path=args.file)
    if args.json:
        data = report.to_dict()
        if not args.tensors:
            data.pop("tensors", None)
        print(json.dumps(data, indent=2))
    else:
        print(format_text(report, include_tensors=args.tensors))
    return 0


def _run(args: argparse.Namespace) -> int:
    from quantdesk.engine.events import GenerationStats, TokenText
    from quantdesk.engine.params import LoadSettings, SamplingSettings
    from quantdesk.engine.probe import ProbeCache, probe_load, raise_for_probe
    from quantdesk.engine.prompting import COMPLETION_MODE_NOTICE
    from quantdesk.engine.session import MODE_COMPLETION, InferenceSession
    from quantdesk.engine.templates import Message
    from quantdesk.paths import resolve_paths

    if args.max_tokens < 1 or args.ctx < 1:
        raise QuantDeskError("-n and --ctx must be positive numbers.")
    if args.verbose:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
    else:
        quiet = logging.getLogger("quantdesk.llama_cpp")
        quiet.addHandler(logging.NullHandler())
        quiet.propagate = False
    load = LoadSettings(n_ctx=args.ctx, n_threads=args.threads, n_gpu_layers=args.gpu_layers)
    if not args.no_probe:
        cache = ProbeCache(resolve_paths().probe_cache)
        raise_for_probe(probe_load(args.file, load, cache=cache))
    session = InferenceSession.load(args.file, load)
    if session.mode == MODE_COMPLETION and not args.json:
        print(f"[{COMPLETION_MODE_NOTICE}]", file=sys.stderr)
    sampling = SamplingSettings(
        temperature=args.temperature, seed=args.seed, max_tokens=args.max_tokens
    )
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    pieces: list[str] = []
    stats: GenerationStats | None = None
    for event in session.generate([Message("user", args.prompt)], sampling, stop):
        if isinstance(event, TokenText):
            pieces.append(event.text)
            if not args.json:
                sys.stdout.write(event.text)
                sys.stdout.flush()
        else:
            stats = event
    session.close()
    if args.json:
        print(json.dumps({"mode": session.mode, "text": "".join(pieces), "stats": asdict(stats)}))
    else:
        sys.stdout.write("\n")
        if stats is not None:
            print(f"[{stats.summary()}]", file=sys.stderr)
    return 0


def run_cli(argv: Sequence[str]) -> int:
    """Run one CLI command; returns the exit status."""
    args = _parser().parse_args(list(argv))
    try:
        return {"inspect": _inspect, "run": _run}[args.command](args)
    except QuantDeskError as exc:
        print(f"quantdesk: error: {args.file.name}: {exc.message}", file=sys.stderr)
        return EXIT_USER_ERROR
    except BrokenPipeError:
        return 0
