"""How a model will be loaded on this machine: what the machine offers (:class:`Budget`), GPU
layers chosen automatically (as many as the memory estimate says fit in free VRAM), and safer
settings when a model would not fit (:func:`step_down`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from quantdesk.engine.discovery import split_parts
from quantdesk.engine.estimate import EstimateParams
from quantdesk.engine.estimate_fit import fit
from quantdesk.engine.gguf import GGUFHeader, read_header_from_file
from quantdesk.engine.params import AUTO_GPU_LAYERS, LoadSettings


@dataclass(frozen=True)
class Budget:
    """What this machine offers: available RAM, free VRAM the build can use, offload support."""

    ram_available: int
    vram_free: int | None
    gpu_offload: bool


def machine_budget() -> Budget:
    """This machine's budget, probed now (about 0.1 s: run it off the GUI thread)."""
    from quantdesk.engine.hardware import gpu_memory_budget, probe_hardware, ram_budget

    report = probe_hardware()
    return Budget(ram_budget(), gpu_memory_budget(report), report.build.gpu_offload)


def resolve_gpu_layers(
    headers: Sequence[GGUFHeader],
    load: LoadSettings,
    *,
    ram_available: int,
    vram_free: int | None,
    gpu_offload: bool,
) -> LoadSettings:
    """``load`` with an automatic GPU layer count (AUTO_GPU_LAYERS) replaced by what fits.

    All layers when the model and its context fit in the free VRAM, else as many as fit (the
    estimator's fit, with its safety margins), else none; none on a build or machine without
    GPU offload. Any other value is the user's choice and stays.
    """
    if load.n_gpu_layers != AUTO_GPU_LAYERS:
        return load
    if not gpu_offload or vram_free is None:
        return load.with_(n_gpu_layers=0)
    result = fit(
        headers,
        EstimateParams.from_load_settings(load),
        ram_available=ram_available,
        vram_free=vram_free,
        gpu_offload_supported=True,
    )
    layers = result.max_gpu_layers if result.verdict in ("gpu", "partial") else 0
    return load.with_(n_gpu_layers=layers)


def load_settings_for(path: Path, load: LoadSettings) -> LoadSettings:
    """The settings a load of the model at ``path`` really uses: an automatic GPU layer count
    resolved against this machine, probed now (about 0.1 s; not on the GUI thread)."""
    if load.n_gpu_layers != AUTO_GPU_LAYERS:
        return load
    from quantdesk.engine.hardware import gpu_memory_budget, probe_hardware, ram_budget

    report = probe_hardware()
    if not report.build.gpu_offload:
        return load.with_(n_gpu_layers=0)
    return resolve_gpu_layers(
        [read_header_from_file(p) for p in split_parts(path)],
        load,
        ram_available=ram_budget(),
        vram_free=gpu_memory_budget(report),
        gpu_offload=True,
    )
