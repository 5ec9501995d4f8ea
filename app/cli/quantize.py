"""``quantdesk quantize SRC --type Q4_K_M [--out FILE] [--imatrix FILE | --imatrix-from TEXT]
[--allow-requantize] [--quality] [--json]``: quantize a local F16/BF16/F32 GGUF (or an HF
model folder)."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from dataclasses import asdict
from pathlib import Path
from typing import Any

from quantdesk.cli._progress import ProgressLine

NAME = "quantize"
EXIT_CANCELLED = 130


def register(sub: argparse._SubParsersAction) -> None:
    """Add the sub-command's parser."""
    from quantdesk.engine.quantize.options import QUANT_TARGETS

    parser = sub.add_parser(
        NAME,
        help="Quantize a local F16/BF16/F32 model (GGUF file or Hugging Face folder).",
        description="Types: " + ", ".join(QUANT_TARGETS),
    )
    parser.add_argument("source", type=Path, help="GGUF file, or a Hugging Face model folder")
    parser.add_argument("--type", required=True, dest="target", help="e.g. Q4_K_M, Q8_0, IQ4_XS")
    parser.add_argument("--out", type=Path, default=None, help="output file (default: beside)")
    parser.add_argument("--imatrix", type=Path, default=None, help="importance matrix file")
    parser.add_argument(
        "--imatrix-from",
        metavar="TEXT",
        default=None,
        help="compute the importance matrix first, from a text file or 'sample' (the bundled "
        "English text); saved beside the source as NAME.imatrix.gguf",
    )
    parser.add_argument(
        "--allow-requantize", action="store_true", help="quantize an already quantized file"
    )
    parser.add_argument("--output-tensor-type", default=None, help="type for output.weight")
    parser.add_argument("--token-embedding-type", default=None, help="type for token_embd")
    parser.add_argument(
        "--leave-output-tensor", action="store_true", help="leave output.weight unquantized"
    )
    parser.add_argument("--pure", action="store_true", help="no K-quant mix: one type for all")
    parser.add_argument("--threads", type=int, default=0, help="0 = all cores")
    parser.add_argument(
        "--quality", action="store_true", help="measure perplexity and KL divergence afterwards"
    )
    parser.add_argument("--dry-run", action="store_true", help="only predict size and memory")
    parser.add_argument("--json", action="store_true", help="Print the result as JSON.")


class _Progress:
    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.line = ProgressLine()

    def __call__(self, p: Any) -> None:
        if self.enabled:
            self.line.show(p.fraction, f"tensor {p.index}/{p.count} -> {p.target_type:<7}")


def run(args: argparse.Namespace) -> int:
    """Predict, quantize with progress (Ctrl-C cancels), optionally measure quality."""
    from quantdesk.config.paths import resolve_paths
    from quantdesk.engine.errors import QuantizeCancelled
    from quantdesk.engine.estimate.load_plan import machine_budget
    from quantdesk.engine.quantize.job_parts import PartJournal
    from quantdesk.engine.quantize.options import QuantizeOptions
    from quantdesk.engine.quantize.quantizer import (
        default_output,
        inspect_source,
        predict,
        quantize,
    )
    from quantdesk.engine.quantize.report import plan_lines, result_line, source_line

    say = (lambda _line: None) if args.json else (lambda line: print(line, file=sys.stderr))
    journal = PartJournal(resolve_paths().jobs_dir)
    for stale in journal.clean_stale():  # left by a quantization that was killed
        say(f"Removed {stale}: an unfinished file of a quantization that was stopped.")
    source = _gguf_source(args, say)
    if args.imatrix_from and args.imatrix is None:
        args.imatrix = _compute_imatrix(source, args, say)
    options = QuantizeOptions(
        target=args.target,
        allow_requantize=args.allow_requantize,
        output_tensor_type=args.output_tensor_type,
        token_embedding_type=args.token_embedding_type,
        leave_output_unquantized=args.leave_output_tensor,
        pure=args.pure,
        imatrix=args.imatrix,
        threads=args.threads,
    )
    info = inspect_source(source)
    out = args.out or default_output(source, options.target)
    say(source_line(info))
    if info.is_quantized and args.allow_requantize:
        say("Warning: requantizing an already quantized model loses more quality than "
            "quantizing the F16/BF16 original.")  # fmt: skip
    plan = predict(source, options)
    for line in plan_lines(info, plan, machine_budget(), out):
        say(line)
    report: dict[str, Any] = {"source": str(source), "predicted_bytes": plan.size_bytes}
    if args.dry_run:
        report["tensor_types"] = plan.type_mix
        report["requires_imatrix"] = plan.requires_imatrix
        return _finish(args, report)
    cancel = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda *_: cancel.set())
    try:
        progress = _Progress(not args.json)
        result = quantize(
            source, out, options, on_progress=progress, cancel=cancel,
            prediction=plan, journal=journal,
        )  # fmt: skip
    except QuantizeCancelled:
        progress.line.finish()
        say("Cancelled; no file was written.")
        return EXIT_CANCELLED
    finally:
        signal.signal(signal.SIGINT, previous)
    progress.line.finish()
    say(result_line(result))
    report.update(result.to_json())
    if args.quality:
        report["quality"] = _quality(source, result.output, args.threads, say)
    return _finish(args, report)


def _gguf_source(args: argparse.Namespace, say: Any) -> Path:
    """The GGUF to quantize: the file itself, or an HF folder converted to F16 first."""
    source: Path = args.source
    if not source.is_dir():
        return source
    from quantdesk.engine.quantize.convert import convert_hf_folder, converted_path

    target = converted_path(source, args.out.parent if args.out else None)
    if target.exists():
        say(f"Using the earlier conversion {target}")
        return target
    say(f"Converting the Hugging Face folder {source} to F16 GGUF ...")
    return convert_hf_folder(source, target)


def _compute_imatrix(source: Path, args: argparse.Namespace, say: Any) -> Path:
    from quantdesk.engine.quantize.imatrix_compute import (
        compute_imatrix_in_child,
        default_imatrix_path,
    )

    text = None if args.imatrix_from == "sample" else Path(args.imatrix_from)
    if text is not None and not text.is_file():
        from quantdesk.engine.errors import ImatrixError

        raise ImatrixError(f"The text file '{text}' does not exist.")
    output = default_imatrix_path(source)
    say(f"Computing the importance matrix from {text or 'the bundled sample text'} ...")
    summary = compute_imatrix_in_child(
        source, output, text_file=text, threads=args.threads,
        on_progress=None if args.json else _chunks,
    )  # fmt: skip
    say(f"\nImportance matrix: {summary.entries} weights, {summary.chunks} chunks "
        f"({summary.tokens:,} tokens) in {summary.seconds:.1f} s -> {output}")  # fmt: skip
    return output


def _chunks(done: int, total: int) -> None:
    sys.stderr.write(f"\r  chunk {done}/{total}")
    sys.stderr.flush()


def _quality(source: Path, result: Path, threads: int, say: Any) -> dict[str, Any]:
    from quantdesk.engine.quantize.quality_run import run_quality_check

    say("Measuring quality (perplexity and KL divergence on the bundled sample) ...")
    report = run_quality_check(source, result, threads=threads)
    say(report.summary())
    return asdict(report)


def _finish(args: argparse.Namespace, report: dict[str, Any]) -> int:
    if args.json:
        print(json.dumps(report, indent=2))
    elif "output" in report:
        print(report["output"])
    return 0
