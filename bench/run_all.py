"""Every QuantDesk benchmark in one run, each against its reference; writes docs/benchmarks.md.

    .venv/bin/python bench/run_all.py [--quick] [--out docs/benchmarks.md] [--skip NAME ...]

1. builds llama.cpp's reference tools (llama-bench, llama-quantize, llama-perplexity) from the
   llama.cpp source the installed llama-cpp-python vendors, with its CMake flags (cached);
2. runs, one after the other (never two at once: they share the CPUs), each in its own process:
   ``engine`` (bench/engine_vs_llama_bench.py: decode and prompt tok/s, time to first token),
   ``gui`` (bench/long_chat.py --stream starter: event-loop stalls with a 2,000-message chat
   open, while a reply streams at full speed), ``cold`` (bench/cold_start.py), ``rescan``
   (bench/rescan.py), ``download`` (bench/download_vs_hf.py), ``quantize``
   (bench/quantize_vs_reference.py);
3. prints each figure with its ratio to the reference and writes the Markdown report with the
   machine's description.

``--quick`` runs fewer rounds (a smoke run, minutes). A benchmark, not a test: nothing asserts
on the figures; a step that fails is reported as failed and the others still run.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PY = sys.executable


@dataclass
class Step:
    """One benchmark's outcome: summary rows (figure, ours, reference, ratio) and its section."""

    title: str
    rows: list[tuple[str, str, str, str]] = field(default_factory=list)
    section: str = ""
    seconds: float = 0.0


def run(args: list[str], timeout: int = 3600) -> str:
    """Run a bench script (with this Python) and return its stdout; raise on failure."""
    env = dict(os.environ, PYTHONPATH=str(BENCH))
    done = subprocess.run([PY, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)  # fmt: skip
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        raise RuntimeError(f"{' '.join(args)} exited with {done.returncode}:\n{tail}")
    return done.stdout


def last_json(out: str) -> dict:
    """The last line of ``out`` that is a JSON object."""
    for line in reversed(out.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError(f"no JSON in the output:\n{out[-2000:]}")


def machine() -> str:
    """CPU, cores, RAM, OS, Python and llama.cpp build, as one Markdown list."""
    import psutil

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import llama_cpp
    from reference_tools import tools_dir

    flags = (tools_dir() / "cmake-args.txt").read_text().split()
    from quantdesk.engine.params import default_threads

    return "\n".join([
        f"- CPU: {cpu}, {psutil.cpu_count(logical=False)} cores / "
        f"{psutil.cpu_count()} threads; QuantDesk's default thread count: {default_threads()}",
        f"- RAM: {psutil.virtual_memory().total / 2**30:.1f} GiB; GPU: none used",
        f"- OS: {platform.platform()}; Python {platform.python_version()}",
        f"- llama-cpp-python {llama_cpp.__version__} (its vendored llama.cpp for the reference "
        f"tools too), CMake flags: `{' '.join(f for f in flags if f.startswith('-DGGML'))}`",
    ])  # fmt: skip


def engine(quick: bool) -> Step:
    """Decode and prompt speed, time to first token, vs llama-bench."""
    rounds = "2" if quick else "5"
    out = run([str(BENCH / "engine_vs_llama_bench.py"), "--rounds", rounds, "--json"])
    r = last_json(out)
    m, ratio = r["median"], r["ratio"]
    step = Step("Generation engine vs llama-bench")
    step.rows = [
        (f"decode tok/s (tg{r['n_gen']}, app sampling)", f"{m['tg']:.2f}", f"{m['ref_tg']:.2f}",
         f"{ratio['decode']:.3f}x"),
        ("decode tok/s, engine without sampling", f"{m['decode_only']:.2f}",
         f"{m['ref_tg']:.2f}", f"{ratio['decode_only']:.3f}x"),
        (f"prompt tok/s (pp{r['n_prompt']})", f"{m['pp']:.1f}", f"{m['ref_pp']:.1f}",
         f"{ratio['prompt']:.3f}x"),
        (f"time to first token, {r['n_prompt']}-token prompt", f"{m['ttft'] * 1000:.0f} ms",
         f"{r['n_prompt'] / m['ref_pp'] * 1000:.0f} ms", f"{ratio['ttft']:.3f}x"),
    ]  # fmt: skip
    from engine_vs_llama_bench import markdown

    step.section = (
        f"`.venv/bin/python bench/engine_vs_llama_bench.py --rounds {rounds}`\n\n{markdown(r)}"
    )
    return step


def gui(quick: bool) -> Step:
    """Event-loop stalls with a 2,000-message chat open, while streaming."""
    tokens = "128" if quick else "256"
    r = last_json(run([str(BENCH / "long_chat.py"), "--stream", "starter", "--tokens", tokens,
                       "--json"]))  # fmt: skip
    step = Step("GUI stalls with a 2,000-message chat")
    step.rows = [
        ("longest GUI stall while streaming", f"{r['stream_stall_ms']:.0f} ms", "50 ms (goal)",
         f"{r['stream_stall_ms'] / 50:.2f}x of the goal"),
        ("streaming speed in the app", f"{r['stream_tok_s']:.1f} tok/s", "", ""),
    ]  # fmt: skip
    step.section = "\n".join([
        f"`.venv/bin/python bench/long_chat.py --stream starter --tokens {tokens}` (offscreen "
        "Qt; a 5 ms timer in the GUI thread; a stall is the longest gap between two ticks)",
        "",
        "| | longest stall |",
        "|---|---|",
        f"| opening the chat ({r['messages']:,} messages) | {r['open_stall_ms']:.0f} ms |",
        f"| scrolling it top to bottom (101 steps) | {r['scroll_stall_ms']:.0f} ms |",
        f"| streaming {r['stream_tokens']} tokens at {r['stream_tok_s']:.1f} tok/s | "
        f"{r['stream_stall_ms']:.0f} ms |",
    ])  # fmt: skip
    return step


def cold(quick: bool) -> Step:
    """Cold start to a usable window vs a bare PySide6 window."""
    runs = "3" if quick else "7"
    r = last_json(run([str(BENCH / "cold_start.py"), "--runs", runs, "--json"]))
    step = Step("Cold start")
    step.rows = [("cold start to a usable window", f"{r['quantdesk_s']:.2f} s",
                  f"{r['bare_qt_s']:.2f} s (bare PySide6 window)",
                  f"{r['quantdesk_s'] / r['bare_qt_s']:.1f}x slower")]  # fmt: skip
    step.section = (
        f"`.venv/bin/python bench/cold_start.py --runs {runs}`: fresh process to the event "
        "loop's first pass after the window was shown and start-up ran (medians): QuantDesk "
        f"{r['quantdesk_s']:.2f} s (runs {', '.join(f'{x:.2f}' for x in r['quantdesk_runs'])}),"
        f" a bare PySide6 window {r['bare_qt_s']:.2f} s."
    )
    return step


def rescan(quick: bool) -> Step:
    """Model index: 1,000 headers cold, then warm rescans."""
    out = run([str(BENCH / "rescan.py"), "--runs", "3" if quick else "5"])
    warm = next(line for line in out.splitlines() if line.startswith("| warm, median"))
    total = warm.strip("|").split("|")[-1].strip()
    step = Step("Library rescan")
    ms = float(total.split()[0])
    step.rows = [("warm rescan of 1,000 models", total, "1 s (goal)",
                  f"{ms / 1000:.2f}x of the goal")]  # fmt: skip
    step.section = f"`.venv/bin/python bench/rescan.py`\n\n{out.strip()}"
    return step


def download(quick: bool) -> Step:
    """Download throughput vs huggingface_hub on loopback."""
    mb, runs = ("128", "2") if quick else ("256", "3")
    out = run([str(BENCH / "download_vs_hf.py"), "--mb", mb, "--runs", runs])
    ratio = next(line for line in out.splitlines() if line.startswith("ratio:")).split()[-1]
    ours = next(line for line in out.splitlines() if line.startswith("QuantDesk"))
    theirs = next(line for line in out.splitlines() if line.startswith("hf_hub_download"))
    step = Step("Downloads")
    step.rows = [("download MB/s (loopback)", ours.split(":")[1].split("(")[0].strip(),
                  theirs.split(":")[1].split("(")[0].strip() + " (hf_hub_download)", ratio)]
    step.section = f"`.venv/bin/python bench/download_vs_hf.py --mb {mb} --runs {runs}`\n\n" + (
        "\n".join(f"    {line}" for line in out.strip().splitlines())
    )
    return step


def quantize(quick: bool) -> Step:
    """Quantizer vs llama-quantize: same bytes, speed."""
    types = ["Q4_K_M", "Q8_0"] if quick else ["Q8_0", "Q6_K", "Q4_K_M", "Q4_0", "Q2_K"]
    runs = "1" if quick else "3"
    cmd = [str(BENCH / "quantize_vs_reference.py"), "--types", *types, "--runs", runs,
           "--reuse-prediction"]  # fmt: skip
    out = run(cmd, timeout=7200)
    table = "\n".join(line for line in out.splitlines() if line.startswith("|"))
    ratios = [float(line.rstrip("|").split("|")[-1].strip().rstrip("x"))
              for line in table.splitlines()[2:]]  # fmt: skip
    same = all("| yes |" in line for line in table.splitlines()[2:])
    step = Step("Quantizer vs llama-quantize")
    step.rows = [(f"quantize time ({', '.join(types)})", "", "llama-quantize",
                  f"{statistics.median(ratios):.2f}x (median; outputs identical: "
                  f"{'yes' if same else 'NO'})")]  # fmt: skip
    step.section = f"`.venv/bin/python bench/{' '.join(Path(c).name for c in cmd)}`\n\n{table}"
    return step


STEPS: dict[str, Callable[[bool], Step]] = {
    "engine": engine, "gui": gui, "cold": cold, "rescan": rescan, "download": download,
    "quantize": quantize,
}  # fmt: skip


def report(steps: list[Step], failed: list[str], quick: bool, machine_text: str) -> str:
    """The whole Markdown document."""
    when = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    lines = [
        "# Benchmarks",
        "",
        f"Written by `.venv/bin/python bench/run_all.py{' --quick' if quick else ''}` on "
        f"{when}. Benchmarks, not tests: nothing asserts on these figures. How the figures "
        "came about (and earlier ones) is told in [benchmark_notes.md](benchmark_notes.md).",
        "",
        "## Machine",
        "",
        machine_text,
        "",
        "## Summary",
        "",
        "| figure | QuantDesk | reference | ratio |",
        "|---|---|---|---|",
    ]
    for step in steps:
        lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in step.rows]
    lines += [f"| {name} | failed | | |" for name in failed]
    for step in steps:
        lines += ["", f"## {step.title}", "", step.section, "", f"({step.seconds:.0f} s)"]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    """Build the tools, run every step, write the report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds: a smoke run")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--skip", nargs="*", default=[], choices=list(STEPS))
    args = parser.parse_args(argv)
    sys.path.insert(0, str(BENCH))
    from reference_tools import tools_dir

    started = time.perf_counter()
    print(f"reference tools: {tools_dir()} ({time.perf_counter() - started:.0f} s)", flush=True)
    machine_text = machine()
    done: list[Step] = []
    failed: list[str] = []
    for name, fn in STEPS.items():
        if name in args.skip:
            continue
        began = time.perf_counter()
        print(f"== {name} ...", flush=True)
        try:
            step = fn(args.quick)
        except Exception as exc:  # noqa: BLE001 - one failing benchmark must not stop the rest
            print(f"   failed: {exc}", flush=True)
            failed.append(name)
            continue
        step.seconds = time.perf_counter() - began
        for row in step.rows:
            print("   " + " | ".join(x for x in row if x), flush=True)
        done.append(step)
    args.out.write_text(report(done, failed, args.quick, machine_text), encoding="utf-8")
    print(f"wrote {args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
