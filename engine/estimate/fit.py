"""Will a model fit? Full GPU, partial offload, CPU only, or not at all - and how much context.

Safety margins (explicit policy, also in docs/estimator.md):

* RAM: keep ``max(512 MiB, 10 %)`` of the currently *available* RAM free for the OS, the
  page cache and the rest of the app; the model must fit its expected peak resident memory
  (:attr:`MemoryEstimate.peak_ram`) into the remainder.
* VRAM: keep ``max(256 MiB, 5 %)`` of the free VRAM free; the model's VRAM (buffers as
  llama.cpp reserves them, plus the CUDA context) must fit into the remainder.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from quantdesk.engine.estimate.hparams import model_shape
from quantdesk.engine.estimate.kv import CTX_PAD
from quantdesk.engine.estimate.memory import EstimateParams, MemoryEstimate, estimate
from quantdesk.engine.gguf.model_info import human_bytes
from quantdesk.engine.gguf.reader import GGUFHeader

MIB = 1 << 20
RAM_RESERVE_MIN = 512 * MIB
RAM_RESERVE_FRACTION = 0.10
VRAM_RESERVE_MIN = 256 * MIB
VRAM_RESERVE_FRACTION = 0.05
VERDICTS = ("gpu", "partial", "cpu", "no_fit")


@dataclass(frozen=True)
class FitResult:
    """The best placement that fits, the largest context it allows, and the headroom left."""

    verdict: str  # "gpu" | "partial" | "cpu" | "no_fit"
    max_gpu_layers: int  # layers offloaded in the verdict: the most that fit (0: none)
    max_context: int  # largest context (multiple of 256) that fits that placement; 0: none
    estimate: MemoryEstimate  # at the requested context, with the verdict's placement
    ram_budget: int
    vram_budget: int | None
    ram_headroom: int  # budget minus expected peak RAM (negative: short by that much)
    vram_headroom: int | None
    reason: str
    ram_free: int = 0  # the free RAM the budget was taken from (the status bar's "free")
    vram_free: int | None = None


def fit_words(result: FitResult) -> str:
    """The one wording of a fit verdict, wherever one is shown (the library, Discover's badges,
    the Lab, ``quantdesk estimate``, the Quantize dialog): "Fits on GPU", "Partly on GPU (20
    layers)", "Fits in RAM", "Too big at 4,096 ctx"."""
    return {
        "gpu": "Fits on GPU",
        "partial": f"Partly on GPU ({result.max_gpu_layers} layers)",
        "cpu": "Fits in RAM",
        "no_fit": f"Too big at {result.estimate.n_ctx:,} ctx",
    }.get(result.verdict, "Fit unknown")


def free_ram_words(free: int, usable: int) -> str:
    """The one way free memory is told: "24.5 GB of RAM free (2.4 GB of it stays for the
    system)" - the status bar's figure, and what the fit keeps back from it."""
    return (f"{human_bytes(free)} of RAM free ({human_bytes(max(free - usable, 0))} of it "
            "stays for the system)")  # fmt: skip


def budgets(ram_available: int, vram_free: int | None) -> tuple[int, int | None]:
    """Usable RAM and VRAM after the safety margins."""
    ram = ram_available - max(RAM_RESERVE_MIN, int(ram_available * RAM_RESERVE_FRACTION))
    if vram_free is None:
        return ram, None
    return ram, vram_free - max(VRAM_RESERVE_MIN, int(vram_free * VRAM_RESERVE_FRACTION))


def fits(est: MemoryEstimate, ram: int, vram: int | None) -> bool:
    """Whether ``est`` fits the RAM and VRAM budgets (after :func:`budgets`' margins)."""
    if est.peak_ram > ram:
        return False
    return est.vram is None or (vram is not None and est.vram <= vram)


def largest_true(lo: int, hi: int, ok) -> int:  # noqa: ANN001 - a predicate on ints
    """Largest x in [lo, hi] with ok(x), assuming ok is monotone decreasing; lo - 1 if none."""
    best = lo - 1
    while lo <= hi:
        mid = (lo + hi) // 2
        if ok(mid):
            best, lo = mid, mid + 1
        else:
            hi = mid - 1
    return best


def fit(
    headers: Sequence[GGUFHeader],
    params: EstimateParams,
    *,
    ram_available: int,
    vram_free: int | None,
    gpu_offload_supported: bool,
    gpu_backend: bool | None = None,
) -> FitResult:
    """Pick the placement for ``params`` (its n_gpu_layers is ignored) and the largest context.

    Tries everything on the GPU, then as many layers as fit, then CPU only. ``gpu_backend``:
    whether the build's GPU backend takes VRAM even with no layer offloaded (a CUDA build with
    a device); None: when offload is supported and the free VRAM is known.
    """
    shape = model_shape(headers)
    ram, vram = budgets(ram_available, vram_free)
    total_layers = shape.n_layer + 1
    if gpu_backend is None:
        gpu_backend = gpu_offload_supported and vram_free is not None

    def est(n_gpu: int, n_ctx: int | None = None) -> MemoryEstimate:
        p = params.with_(n_gpu_layers=n_gpu, n_ctx=params.n_ctx if n_ctx is None else n_ctx)
        offload = gpu_offload_supported and n_gpu != 0
        return estimate(headers, p, offload=offload, gpu_backend=gpu_backend)

    verdict, layers, chosen = "no_fit", 0, est(0)
    if gpu_offload_supported and vram is not None and vram > 0:
        full = est(-1)
        if fits(full, ram, vram):
            verdict, layers, chosen = "gpu", total_layers, full
        else:
            k = largest_true(1, shape.n_layer, lambda n: est(n).vram <= vram)  # type: ignore[operator]
            if k >= 1 and fits(est(k), ram, vram):
                verdict, layers, chosen = "partial", k, est(k)
    if verdict == "no_fit" and fits(chosen, ram, vram):  # a CUDA build uses VRAM at ngl 0
        verdict = "cpu"
    n_gpu = layers if verdict in ("gpu", "partial") else 0
    limit = max(shape.n_ctx_train, CTX_PAD) // CTX_PAD
    steps = largest_true(1, limit, lambda s: fits(est(n_gpu, s * CTX_PAD), ram, vram))
    max_ctx = max(steps, 0) * CTX_PAD
    reason = _reason(verdict, layers, total_layers, chosen, (ram_available, ram), vram, max_ctx,
                     params.n_ctx)  # fmt: skip
    return FitResult(
        verdict=verdict, max_gpu_layers=n_gpu, max_context=max_ctx, estimate=chosen, ram_budget=ram,
        vram_budget=vram, ram_headroom=ram - chosen.peak_ram,
        vram_headroom=None if vram is None or chosen.vram is None else vram - chosen.vram,
        reason=reason, ram_free=ram_available, vram_free=vram_free,
    )  # fmt: skip


def _reason(
    verdict: str,
    layers: int,
    total: int,
    est: MemoryEstimate,
    ram: tuple[int, int],
    vram: int | None,
    max_ctx: int,
    n_ctx: int,
) -> str:
    # sizes as everywhere in the app (decimal, human_bytes); free RAM is the status bar's figure
    free, usable = ram
    need = f"{human_bytes(est.peak_ram)} of RAM"
    if verdict == "gpu":
        return f"Fits entirely on the GPU ({human_bytes(est.vram or 0)} of VRAM, {need})."
    if verdict == "partial":
        return f"{layers} of {total} layers fit on the GPU; the rest runs on the CPU ({need})."
    if verdict == "cpu":
        return (f"Runs on the CPU only, needing about {human_bytes(est.peak_ram)} of the "
                f"{free_ram_words(free, usable)}.")  # fmt: skip
    tail = (
        f" A context of up to {max_ctx:,} tokens would fit."
        if max_ctx
        else " Even the smallest context does not fit."
    )
    return (
        f"Does not fit with a {n_ctx:,}-token context: it needs about {need}, more than the "
        f"{human_bytes(max(usable, 0))} left of the {free_ram_words(free, usable)}.{tail}"
    )
