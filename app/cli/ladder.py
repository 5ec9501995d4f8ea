"""``quantdesk ladder SRC [--types LIST] [--text FILE] [--out DIR] [--json]``: quantize one
F16/BF16/F32 model to several types and measure each on this machine (size, bits per weight,
peak RAM, prompt and decode speed, perplexity, KL divergence and top-1 agreement against the
source). Rungs measured before are taken from the lab's cache."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path

from quantdesk.cli._progress import ProgressLine

NAME = "ladder"
EXIT_CANCELLED = 130


def _count(text: str) -> int:
    """A whole number of at least 0 (argparse type)."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {value}")
    return value


def register(sub: argparse._SubParsersAction) -> None:
    """Add the sub-command's parser."""
    from quantdesk.engine.lab.ladder import DEFAULT_TYPES

    parser = sub.add_parser(
        NAME, help="Measure the size / speed / quality trade-off of quant types on your model."
    )
    parser.add_argument("source", type=Path, help="an F16, BF16 or F32 GGUF model")
    defaults = ",".join(DEFAULT_TYPES)
    parser.add_argument("--types", default=defaults,
                        help=f"comma-separated quant types (default: {defaults})")  # fmt: skip
    parser.add_argument("--text", type=Path, default=None,
                        help="text file for perplexity and agreement (default: the bundled "
                        "English sample)")  # fmt: skip
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for the quantized files and the report (default: beside "
                        "the source, SOURCE-ladder/)")  # fmt: skip
    parser.add_argument("--chunks", type=_count, default=8,
                        help="512-token chunks of text scored per type (0 = all)")  # fmt: skip
    parser.add_argument("--threads", type=_count, default=0, help="0 = physical cores")
    parser.add_argument("--json", action="store_true", help="print every figure as JSON")


# a rung's stages and their share of its time (quality, over the text, takes longest)
STAGE_SHARE = {"quantizing": (0.0, 0.3), "speed": (0.3, 0.2), "quality": (0.5, 0.5),
               "cached": (0.0, 1.0)}  # fmt: skip


class LadderBar:
    """One progress line per rung and stage, its bar the whole ladder's progress."""

    def __init__(self) -> None:
        self._stage: tuple[str, str] | None = None
        self._line = ProgressLine()

    def show(self, step) -> None:  # noqa: ANN001 - LadderProgress
        """Show where the ladder is (a new line when the rung or its stage changes)."""
        if self._stage != (step.qtype, step.stage):
            self._line.finish()
            self._line = ProgressLine()
            self._stage = (step.qtype, step.stage)
        start, share = STAGE_SHARE.get(step.stage, (0.0, 1.0))
        done = (step.done + start + share * step.fraction) / max(step.total, 1)
        self._line.show(done, f"[{step.done + 1}/{step.total}] {step.qtype}: {step.stage}")

    def finish(self) -> None:
        """End the last line."""
        self._line.finish()


def run(args: argparse.Namespace) -> int:
    """Run the ladder, print the table (or JSON), write ladder.md and ladder.json."""
    from quantdesk.config.paths import resolve_paths
    from quantdesk.engine.errors import QuantizeCancelled, QuantizeError
    from quantdesk.engine.lab.ladder import LadderCancelled, LadderSettings, open_cache, run_ladder
    from quantdesk.engine.lab.report import markdown, to_json, write_report

    source = args.source.expanduser()
    if not source.exists():
        raise QuantizeError(f"'{source}' does not exist.")
    if not source.is_file():
        raise QuantizeError(f"'{source}' is not a file.")
    out = args.out or source.with_name(f"{source.stem}-ladder")
    if out.exists() and not out.is_dir():
        raise QuantizeError(f"'{out}' is a file: --out needs a folder.")
    cache = open_cache(resolve_paths().ensure().data_dir / "ladder.sqlite3")
    cancel = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: cancel.set())
    bar = LadderBar()

    try:
        result = run_ladder(
            source, args.types.split(","), out, cache,
            text_file=args.text.expanduser() if args.text else None,
            settings=LadderSettings(threads=args.threads, max_chunks=args.chunks or None),
            on_progress=None if args.json else bar.show, cancel=cancel,
        )  # fmt: skip
    except QuantizeCancelled as exc:  # LadderCancelled once the rungs have begun
        if isinstance(exc, LadderCancelled) and len(exc.partial.rungs) > 1 and not args.json:
            print(markdown(exc.partial))  # what was measured before the cancel
        print("Cancelled: the finished types are kept for the next run.", file=sys.stderr)
        return EXIT_CANCELLED
    finally:
        bar.finish()
        cache.close()
    try:
        report = write_report(result, out)
    except OSError as exc:
        raise QuantizeError(f"The report cannot be written to '{out}': "
                            f"{exc.strerror or exc}.") from exc  # fmt: skip
    if args.json:
        print(json.dumps(to_json(result), indent=1))
    else:
        print(markdown(result))
        print(f"Report: {report} (and ladder.json)", file=sys.stderr)
        for qtype, path in result.files.items():
            print(f"{qtype}: {path}", file=sys.stderr)
        fileless = [r.qtype for r in result.rungs[1:] if r.qtype not in result.files]
        if fileless:
            print(f"No file here for {', '.join(fileless)}: measured in an earlier run whose file "
                  "is gone or elsewhere (`quantdesk quantize SRC --type TYPE` makes one).",
                  file=sys.stderr)  # fmt: skip
    return 0
