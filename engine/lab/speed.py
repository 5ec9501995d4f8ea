"""Speed and memory of one model on this machine, measured in a child process of its own.

The child loads the model as the app does (InferenceSession), evaluates a prompt of
``n_prompt`` tokens of real text into an empty cache (prompt tok/s), then decodes ``n_gen``
tokens one at a time (decode tok/s: the evaluation alone, as llama-bench's tg), and reports
its peak resident memory (the kernel's high-water mark of the whole process: loading
included). Child usage: ``python -m quantdesk.engine.lab.speed JOB``.
"""

from __future__ import annotations

import random
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from quantdesk.engine.child_process import run_child_job, serve_job

MODULE = "quantdesk.engine.lab.speed"


@dataclass(frozen=True)
class SpeedReport:
    """Prompt and decode speed and peak RAM of one model."""

    prompt_tps: float
    decode_tps: float
    peak_ram_bytes: int


def measure_speed(
    path: Path, text: str, *, threads: int = 0, n_prompt: int = 256, n_gen: int = 64,
    min_tokens: int = 0, cancel: threading.Event | None = None,
) -> SpeedReport:
    """Measure ``path`` in a child process (see the module docstring). The text must give at
    least ``n_prompt`` tokens and ``min_tokens`` (what later steps need: checked here, before
    anything long runs)."""
    job = {"path": str(path), "text": text, "threads": threads, "n_prompt": n_prompt,
           "n_gen": n_gen, "min_tokens": min_tokens}  # fmt: skip
    final = run_child_job(MODULE, job, what="The speed measurement", cancel=cancel)
    return SpeedReport(**final["report"])


def _peak_rss() -> int:
    try:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, KiB else
    except ImportError:  # Windows: the working set's peak
        import psutil

        return int(getattr(psutil.Process().memory_info(), "peak_wset", 0))


def _measure(job: dict) -> SpeedReport:
    from quantdesk.engine.params import LoadSettings
    from quantdesk.engine.quantize.quality import text_too_short
    from quantdesk.engine.run.session import InferenceSession

    n_prompt, n_gen = int(job["n_prompt"]), int(job["n_gen"])
    load = LoadSettings(n_ctx=n_prompt + n_gen + 16, n_threads=int(job["threads"]),
                        n_gpu_layers=0)  # fmt: skip
    session = InferenceSession.load(Path(job["path"]), load)
    try:
        llama, cache = session._llama, session._cache
        tokens = llama.tokenize(job["text"].encode("utf-8"), add_bos=True, special=False)
        needed = max(n_prompt, int(job.get("min_tokens", 0)))
        if len(tokens) < needed:
            raise text_too_short(len(tokens), needed)
        cache.forget()
        started = time.perf_counter()
        cache.prefill(tokens[:n_prompt])
        prompt_s = time.perf_counter() - started
        rng = random.Random(0)
        vocab = llama.n_vocab()
        started = time.perf_counter()
        for _ in range(n_gen):
            cache.append(rng.randrange(vocab))
        decode_s = time.perf_counter() - started
    finally:
        session.close()
    return SpeedReport(n_prompt / prompt_s, n_gen / decode_s, _peak_rss())


def main(argv: list[str]) -> int:
    """Child entry point."""
    return serve_job(lambda job: {"report": asdict(_measure(job))}, "The speed measurement")


if __name__ == "__main__":
    sys.exit(main(sys.argv))
