"""Words and tables for a memory estimate: why each number is what it is.

Sizes are shown in MiB (2^20 bytes), the unit llama.cpp's own log uses, so the two can be
compared line by line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from quantdesk.engine.estimate._overhead import HostOverhead
from quantdesk.engine.estimate._weights import WeightPlacement
from quantdesk.engine.estimate.hparams import ModelShape

if TYPE_CHECKING:
    from quantdesk.engine.estimate.memory import MemoryEstimate

MIB = 1 << 20
_ROWS = (
    ("weights", "weights"), ("repack", "CPU repack"), ("kv_cache", "KV cache"),
    ("compute", "compute (reserved)"), ("compute_resident", "  of which written"),
    ("output", "output"), ("overhead", "overhead"),
)  # fmt: skip


def mib(n: int) -> str:
    """Bytes as MiB with two decimals, the way llama.cpp prints buffer sizes."""
    return f"{n / MIB:.2f} MiB"


def explain(
    est: MemoryEstimate,
    shape: ModelShape,
    wp: WeightPlacement,
    host: HostOverhead,
    work: int,
    baseline: int,
) -> tuple[str, ...]:
    """One line per figure saying where it comes from."""
    p = est.params
    cpu = est.devices["CPU"]
    lines = [
        f"{shape.arch}, {shape.n_layer} layers, context {est.n_ctx} cells (asked {p.n_ctx}, "
        f"padded to 256), KV {p.kv_type}, flash attention {'on' if p.flash_attn else 'off'}.",
    ]
    where = "memory-mapped from the file" if p.use_mmap else "copied into a CPU buffer"
    lines.append(
        f"Weights on the CPU: {mib(cpu.weights)} {where}; the token embeddings always "
        "stay on the CPU."
    )
    if wp.repacked:
        lines.append(
            f"CPU repack: {len(wp.repacked)} matrices ({mib(wp.cpu_repack)}) are copied into an "
            "interleaved layout for faster CPU matmuls; with mmap their file pages stay mapped "
            "too, so they count twice."
        )
    if est.gpu_layers:
        lines.append(
            f"GPU: {est.gpu_layers} of {shape.n_layer + 1} layers (the last repeating layers "
            f"{'and the output layer' if wp.output_on_gpu else ''}) - {mib(wp.gpu)} of weights, "
            "rows padded to 512 columns as CUDA does. Not verified on a real GPU here."
        )
    n_kv_layers = sum(1 for b in est.layer_kv if b)
    swa = (
        " Sliding-window layers get full-size caches (swa_full)."
        if any(ly.is_swa for ly in shape.layers) and p.swa_full
        else ""
    )
    lines.append(
        f"KV cache: {n_kv_layers} layers x {est.n_ctx} cells, {mib(sum(est.layer_kv))} "
        f"in total.{swa}"
    )
    lines.append(
        f"Compute: llama.cpp reserves {mib(cpu.compute)} for a worst-case batch of "
        f"{min(p.n_ubatch, p.n_batch, est.n_ctx)} tokens that all output logits; when only the "
        "last token's logits are needed (always, in QuantDesk) at most "
        f"{mib(cpu.compute_resident)} of it is ever written."
    )
    lines.append(
        f"Overhead: vocabulary {mib(host.vocab)}, bindings {mib(host.bindings)}, sampling "
        f"{mib(host.sampling)}, runtime {mib(host.runtime)}, CPU scratch {mib(work)}."
    )
    lines.append(
        f"Peak RAM = process baseline {mib(baseline)} + resident weights, repack, KV, "
        f"output, written compute and overhead = {mib(est.peak_ram)}."
    )
    if est.approximate:
        why = list(shape.notes)
        if shape.graph_family == "generic":
            why.append(f"the {shape.arch} compute graph is approximated with the llama layout")
        if est.gpu_layers:
            why.append("GPU compute buffers and the CUDA context are estimated, not measured")
        lines.append(f"Approximate: {'; '.join(why)}.")
    return tuple(lines)


def format_estimate(est: MemoryEstimate) -> str:
    """A text table of the estimate, one column per device, then the explanation."""
    names = list(est.devices)
    header = f"{'':<20}" + "".join(f"{n:>14}" for n in names)
    rows = [header]
    for attr, label in _ROWS:
        values = [getattr(est.devices[n], attr) for n in names]
        if any(values):
            rows.append(f"{label:<20}" + "".join(f"{mib(v):>14}" for v in values))
    rows.append(f"{'total':<20}" + "".join(f"{mib(est.devices[n].total):>14}" for n in names))
    rows.append("")
    rows.append(f"Expected peak RAM: {mib(est.peak_ram)}")
    rows.append(f"VRAM: {mib(est.vram)}" if est.vram is not None else "VRAM: none (CPU only)")
    if est.approximate:
        rows.append("(approximate)")
    rows.append("")
    rows.extend(est.explanation)
    return "\n".join(rows)
