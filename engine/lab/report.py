"""The ladder's results in words and tables: the Pareto front (no other rung is both smaller and
more faithful), a plain-language verdict, and the Markdown / JSON report a user can paste into
a model card or an issue."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from quantdesk.engine.gguf.model_info import human_bytes
from quantdesk.engine.lab.ladder import LadderResult, Rung

TOP1: Callable[[Rung], float] = lambda r: r.top1_agreement  # noqa: E731
DECODE: Callable[[Rung], float] = lambda r: r.decode_tps  # noqa: E731

#: Top-1 agreement a rung needs to count as keeping the source's behaviour in the verdict.
FAITHFUL = 0.99


def perplexity_text(value: float) -> str:
    """A perplexity for tables: 2 decimals, or 3 significant digits for huge ones."""
    return f"{value:.2f}" if value < 1e6 else f"{value:.3g}"


def pareto_front(rungs: list[Rung], value: Callable[[Rung], float] = TOP1) -> list[Rung]:
    """The rungs no other rung beats on both size (smaller) and ``value`` (higher: top-1
    agreement by default, or e.g. decode speed), smallest first."""
    front = [
        r for r in rungs
        if not any(o.size_bytes <= r.size_bytes and value(o) >= value(r)
                   and (o.size_bytes, value(o)) != (r.size_bytes, value(r))
                   for o in rungs)
    ]  # fmt: skip
    return sorted(front, key=lambda r: r.size_bytes)


def verdict(rungs: list[Rung]) -> str:
    """E.g. "Q5_K_M keeps 99.2 % top-1 agreement at 36 % of the size; Q2_K drops to 81 %".
    Agreements are compared as they are shown (one decimal), so the words never contradict
    the figures next to them."""
    source = next((r for r in rungs if r.is_source), None)
    quants = [r for r in rungs if not r.is_source]
    if source is None or not quants:
        return "Nothing to compare yet: the ladder needs the source and at least one type."
    share = lambda r: r.size_bytes / source.size_bytes * 100  # noqa: E731
    shown = lambda r: round(r.top1_agreement * 100, 1)  # noqa: E731
    faithful = [r for r in quants if shown(r) >= FAITHFUL * 100]
    if faithful:
        named = min(faithful, key=lambda r: r.size_bytes)
        parts = [f"{named.qtype} keeps {shown(named):.1f} % top-1 agreement at "
                 f"{share(named):.0f} % of the size"]  # fmt: skip
    else:
        named = max(quants, key=lambda r: r.top1_agreement)
        parts = [f"no type keeps {FAITHFUL * 100:.0f} % top-1 agreement; {named.qtype} comes "
                 f"closest with {shown(named):.1f} %"]  # fmt: skip
    worst = min(quants, key=lambda r: r.top1_agreement)
    if shown(worst) < shown(named):
        parts.append(f"{worst.qtype} drops to {shown(worst):.1f} % at "
                     f"{share(worst):.0f} % of the size")  # fmt: skip
    text = "; ".join(parts)
    return text[0].upper() + text[1:] + "."


def measured_how(result: LadderResult) -> str:
    """What the figures depend on besides the model, in one sentence."""
    s = result.settings
    chunks = "every" if s.max_chunks is None else f"up to {s.max_chunks}"
    return (f"Text: {result.text_name} (sha256 {s.text_sha256[:12]}…), {chunks} chunk(s) of "
            f"{s.n_ctx} tokens scored per type; speed: a {s.n_prompt}-token prompt, then "
            f"{s.n_gen} tokens decoded one by one.")


def markdown(result: LadderResult, charts: dict[str, str] | None = None) -> str:
    """The report as Markdown (``charts``: title -> image file name, shown under the table)."""
    env = result.environment
    source = next((r for r in result.rungs if r.is_source), None)
    front = {r.qtype for r in pareto_front(result.rungs)}
    lines = [
        f"# Quantization ladder: {result.source.name}", "",
        verdict(result.rungs), "",
        f"Source sha256 `{result.source_sha256}`. Measured on {env.get('cpu', '?')}, "
        f"{env.get('threads', '?')} threads, llama-cpp-python {env.get('llama_cpp_python', '?')}"
        f", Python {env.get('python', '?')} ({env.get('platform', '?')}).", "",
        measured_how(result), "",
        "| type | size | % of source | bits/weight | peak RAM | prompt tok/s | decode tok/s "
        "| perplexity | KL divergence (mean / p99) | top-1 agreement | Pareto |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    for r in result.rungs:
        share = f"{r.size_bytes / source.size_bytes * 100:.0f} %" if source else ""
        lines.append(
            f"| {r.qtype}{' (source)' if r.is_source else ''} | {human_bytes(r.size_bytes)} | "
            f"{share} | {r.bits_per_weight:.2f} | {human_bytes(r.peak_ram_bytes)} | "
            f"{r.prompt_tps:.1f} | {r.decode_tps:.1f} | {perplexity_text(r.perplexity)} | "
            f"{r.kld_mean:.4f} / {r.kld_p99:.4f} | {r.top1_agreement * 100:.1f} % | "
            f"{'yes' if r.qtype in front else ''} |"
        )
    for title, file_name in (charts or {}).items():
        lines += ["", f"![{title}]({file_name})"]
    lines += ["", "Perplexity, KL divergence and top-1 agreement: llama-perplexity's method "
              "(chunks of the text, second half of each scored) against the source, in float64. "
              "Speeds: prompt and decode on this machine's CPU; peak RAM: the measuring "
              "process's high-water mark."]  # fmt: skip
    return "\n".join(lines) + "\n"


def to_json(result: LadderResult) -> dict:
    """Every figure and the environment, JSON-ready."""
    return {
        "format": "quantdesk-ladder", "version": 1,
        "source": str(result.source), "source_sha256": result.source_sha256,
        "environment": result.environment,
        "settings": asdict(result.settings), "text": result.text_name,
        "measured_now": result.measured,
        "rungs": [asdict(r) for r in result.rungs],
        "pareto_front": [r.qtype for r in pareto_front(result.rungs)],
        "verdict": verdict(result.rungs),
    }  # fmt: skip


def write_report(result: LadderResult, folder: Path, charts: dict[str, str] | None = None) -> Path:
    """Write ladder.md and ladder.json into ``folder``; returns the Markdown file."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ladder.json").write_text(json.dumps(to_json(result), indent=1), encoding="utf-8")
    out = folder / "ladder.md"
    out.write_text(markdown(result, charts), encoding="utf-8")
    return out
