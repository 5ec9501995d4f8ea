"""How a model will be loaded on this machine: what the machine offers (:class:`Budget`), GPU
layers chosen automatically (as many as the memory estimate says fit in free VRAM), and safer
settings when a model would not fit (:func:`step_down`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from quantdesk.engine.estimate.fit import FitResult, budgets, fit, fits
from quantdesk.engine.estimate.memory import EstimateParams, MemoryEstimate, estimate
from quantdesk.engine.gguf.reader import GGUFHeader, read_header_cached
from quantdesk.engine.library.discovery import split_parts
from quantdesk.engine.params import AUTO_GPU_LAYERS, LoadSettings


@dataclass(frozen=True)
class Budget:
    """What this machine offers: available RAM, free VRAM the build can use, offload support."""

    ram_available: int
    vram_free: int | None
    gpu_offload: bool


def fit_within(headers: Sequence[GGUFHeader], params: EstimateParams, budget: Budget) -> FitResult:
    """:func:`~quantdesk.engine.estimate.fit.fit` against what ``budget`` offers."""
    return fit(headers, params, ram_available=budget.ram_available, vram_free=budget.vram_free,
               gpu_offload_supported=budget.gpu_offload)  # fmt: skip


def machine_budget() -> Budget:
    """This machine's budget, probed now (about 0.1 s: run it off the GUI thread)."""
    from quantdesk.engine.hardware.machine import gpu_memory_budget, probe_hardware, ram_budget

    report = probe_hardware()
    return Budget(ram_budget(), gpu_memory_budget(report), report.build.gpu_offload)


def resolve_gpu_layers(
    headers: Sequence[GGUFHeader], load: LoadSettings, budget: Budget
) -> LoadSettings:
    """``load`` with an automatic GPU layer count (AUTO_GPU_LAYERS) replaced by what fits.

    All layers when the model and its context fit in the free VRAM, else as many as fit (the
    estimator's fit, with its safety margins), else none; none on a build or machine without
    GPU offload. Any other value is the user's choice and stays.
    """
    if load.n_gpu_layers != AUTO_GPU_LAYERS:
        return load
    if not budget.gpu_offload or budget.vram_free is None:
        return load.with_(n_gpu_layers=0)
    result = fit_within(headers, EstimateParams.from_load_settings(load), budget)
    layers = result.max_gpu_layers if result.verdict in ("gpu", "partial") else 0
    return load.with_(n_gpu_layers=layers)


def load_settings_for(path: Path, load: LoadSettings) -> LoadSettings:
    """The settings a load of the model at ``path`` really uses: an automatic GPU layer count
    resolved against this machine, probed now (about 0.1 s; not on the GUI thread)."""
    if load.n_gpu_layers != AUTO_GPU_LAYERS or load.rpc_workers:
        return load  # explicit, or planned across RPC workers where they are attached (rpc.py)
    budget = machine_budget()
    if not budget.gpu_offload:  # no header to read: none of the layers can go to a GPU
        return load.with_(n_gpu_layers=0)
    return resolve_gpu_layers([read_header_cached(p) for p in split_parts(path)], load, budget)


#: The shortest context a step-down goes to; below it a chat is not much use.
MIN_CONTEXT = 512
#: KV cache types to try, in order, when the context cannot shrink further (need flash attn).
SMALLER_KV = {"f16": "q8_0", "q8_0": "q4_0"}


@dataclass(frozen=True)
class LoadPlan:
    """The settings a load will use, what was changed from the asked ones (in words, for the
    user) and whether the memory estimate says they fit."""

    settings: LoadSettings
    changes: tuple[str, ...] = ()
    fits: bool = True
    shortfall: str = ""  # when it does not fit: what it needs against what is free, in words


def _estimate_for(
    headers: Sequence[GGUFHeader], load: LoadSettings, budget: Budget
) -> tuple[MemoryEstimate, int, int | None]:
    """The estimate for ``load`` and the usable RAM and VRAM of ``budget``."""
    ram, vram = budgets(budget.ram_available, budget.vram_free)
    offload = budget.gpu_offload and load.n_gpu_layers != 0
    return estimate(headers, EstimateParams.from_load_settings(load), offload=offload), ram, vram


def _fits_budget(headers: Sequence[GGUFHeader], load: LoadSettings, budget: Budget) -> bool:
    return fits(*_estimate_for(headers, load, budget))


def _shortfall(headers: Sequence[GGUFHeader], load: LoadSettings, budget: Budget) -> str:
    est, ram, vram = _estimate_for(headers, load, budget)
    gib = 2**30
    text = f"about {est.peak_ram / gib:.1f} GiB of RAM needed, {max(ram, 0) / gib:.1f} GiB usable"
    if est.vram is not None and vram is not None:
        text += f"; {est.vram / gib:.1f} GiB of VRAM needed, {max(vram, 0) / gib:.1f} usable"
    return text


def step_down(headers: Sequence[GGUFHeader], load: LoadSettings, budget: Budget) -> LoadPlan:
    """Settings that fit ``budget`` by the memory estimate, stepping down only as far as needed:
    fewer GPU layers, then a shorter context, then a smaller KV cache type.

    When even the smallest of those does not fit, the smallest is returned with ``fits`` False
    (the caller may still try: the estimate keeps safety margins).
    """
    changes: list[str] = []
    load = resolve_gpu_layers(headers, load, budget)
    if _fits_budget(headers, load, budget):
        return LoadPlan(load)
    params = EstimateParams.from_load_settings(load)
    if load.n_gpu_layers != 0 and budget.gpu_offload:
        result = fit_within(headers, params, budget)
        layers = result.max_gpu_layers if result.verdict in ("gpu", "partial") else 0
        if layers != load.n_gpu_layers:
            shown = "all" if load.n_gpu_layers < 0 else load.n_gpu_layers
            changes.append(f"GPU layers {shown} → {layers}")
            load = load.with_(n_gpu_layers=layers)
            if _fits_budget(headers, load, budget):
                return LoadPlan(load, tuple(changes))
    while True:
        result = fit_within(headers, EstimateParams.from_load_settings(load), budget)
        context = max(MIN_CONTEXT, min(result.max_context, load.n_ctx))
        if context < load.n_ctx:
            changes.append(f"context {load.n_ctx:,} → {context:,} tokens")
            load = load.with_(n_ctx=context)
            if _fits_budget(headers, load, budget):
                return LoadPlan(load, tuple(changes))
        smaller = SMALLER_KV.get(load.kv_type)
        if smaller is None:
            return LoadPlan(load, tuple(changes), fits=False,
                            shortfall=_shortfall(headers, load, budget))  # fmt: skip
        changes.append(f"KV cache {load.kv_type} → {smaller}")
        load = load.with_(kv_type=smaller, flash_attn=True)
        if _fits_budget(headers, load, budget):
            return LoadPlan(load, tuple(changes))


def plan_load(path: Path, load: LoadSettings, budget: Budget | None = None) -> LoadPlan:
    """:func:`step_down` for the model at ``path`` (all parts of a split set) on this machine
    (probed when no ``budget`` is given: about 0.1 s, off the GUI thread)."""
    headers = [read_header_cached(p) for p in split_parts(path)]
    return step_down(headers, load, budget or machine_budget())


def after_memory_failure(load: LoadSettings) -> tuple[LoadSettings, str] | None:
    """One step smaller after a load really ran out of memory (the estimate was not enough):
    half the context, down to MIN_CONTEXT, then a smaller KV cache type; None when nothing is
    left to give up."""
    if load.n_ctx > MIN_CONTEXT:
        context = max(MIN_CONTEXT, load.n_ctx // 2)
        return load.with_(n_ctx=context), f"context {load.n_ctx:,} → {context:,} tokens"
    smaller = SMALLER_KV.get(load.kv_type)
    if smaller is not None:
        return load.with_(kv_type=smaller, flash_attn=True), f"KV cache {load.kv_type} → {smaller}"
    return None


_MEMORY_WORDS = ("failed to allocate", "unable to allocate", "out of memory", "cudamalloc failed",
                 "bad_alloc", "cannot allocate memory", "not enough memory")  # fmt: skip


def is_memory_error(text: str) -> bool:
    """Whether a load failure's message or llama.cpp log says memory ran out."""
    lowered = text.lower()
    return any(word in lowered for word in _MEMORY_WORDS)
