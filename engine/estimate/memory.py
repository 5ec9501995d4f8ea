"""How much memory llama.cpp will take for a model, from its GGUF header alone.

:func:`estimate` reproduces what the llama.cpp vendored in llama-cpp-python 0.3.36 allocates
for given load parameters - weights per buffer (memory map, CPU_REPACK, GPU), KV cache,
compute buffers, output buffer - and adds the host memory that does not show up in its logs
(vocabulary tables, scratch, bindings) to predict the process's peak resident memory.
Weights, KV and compute buffers agree with llama.cpp's own numbers to the byte for the
architectures whose graphs are rebuilt op by op (llama, gemma3; see
:mod:`~quantdesk.engine.estimate._graph`); others are marked ``approximate``.
:mod:`~quantdesk.engine.estimate.llama_sim` asks llama.cpp itself for the same figures.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from quantdesk.engine.errors import EstimateError
from quantdesk.engine.estimate._ggml_alloc import measure
from quantdesk.engine.estimate._graph import (
    GraphConfig,
    build_graph,
    graph_bytes,
    sched_graph_bytes,
    work_buffer_bytes,
)
from quantdesk.engine.estimate._overhead import CUDA_LOAD_RSS, cuda_overhead, host_overhead
from quantdesk.engine.estimate._weights import (
    CUDA_ALIGNMENT,
    PAGE,
    WeightPlacement,
    cpu_features,
    place_weights,
)
from quantdesk.engine.estimate.format import explain
from quantdesk.engine.estimate.hparams import ModelShape, model_shape
from quantdesk.engine.estimate.kv import (
    KV_TYPES,
    ContextSize,
    context_size,
    layer_cache_bytes,
    swa_cells,
)
from quantdesk.engine.gguf.reader import GGUFHeader
from quantdesk.engine.params import AUTO_GPU_LAYERS, LoadSettings, default_threads

MIB = 1 << 20


@dataclass(frozen=True)
class EstimateParams:
    """Load parameters, with the defaults QuantDesk's InferenceSession loads models with."""

    n_ctx: int = 4096
    n_batch: int = 2048
    n_ubatch: int = 512
    kv_type: str = "f16"
    flash_attn: bool = True  # as LoadSettings
    n_threads: int = 0  # 0 means default_threads()
    n_gpu_layers: int = 0  # -1 means all (the repeating layers plus the output layer)
    n_seq: int = 1
    swa_full: bool = False  # as LoadSettings: sliding-window layers keep only their window
    offload_kqv: bool = True
    use_mmap: bool = True

    def __post_init__(self) -> None:
        if self.kv_type not in KV_TYPES:
            raise EstimateError(
                f"KV cache type {self.kv_type!r} is not one of {', '.join(KV_TYPES)}."
            )
        if self.kv_type != "f16" and not self.flash_attn:
            raise EstimateError(
                f"A {self.kv_type} KV cache needs flash attention: llama.cpp refuses a quantized "
                "V cache without it. Turn flash attention on or use an f16 cache."
            )
        if self.n_ctx < 0 or self.n_batch < 1 or self.n_ubatch < 1 or self.n_seq < 1:
            raise EstimateError("Context, batch and sequence counts must be positive.")

    def with_(self, **changes: Any) -> EstimateParams:
        """A copy with some fields changed."""
        return replace(self, **changes)

    @classmethod
    def from_load_settings(cls, settings: LoadSettings, **changes: Any) -> EstimateParams:
        """The parameters InferenceSession.load would hand llama.cpp for these settings.

        An automatic GPU layer count counts as none here: resolve it first
        (:func:`quantdesk.engine.estimate.recommend.resolve_gpu_layers`).
        """
        if settings.n_gpu_layers == AUTO_GPU_LAYERS:
            settings = settings.with_(n_gpu_layers=0)
        names = ("n_ctx", "n_batch", "n_ubatch", "kv_type", "flash_attn", "n_gpu_layers",
                 "swa_full")  # fmt: skip
        fields = {name: getattr(settings, name) for name in names}
        return cls(**fields, n_threads=settings.resolved_threads(), **changes)


@dataclass(frozen=True)
class DeviceBytes:
    """Bytes on one device, by kind. ``compute`` is what llama.cpp reserves (and logs);
    ``compute_resident`` the part of it ever written when only the last token's logits are
    needed (what counts in RAM on the CPU)."""

    weights: int = 0
    kv_cache: int = 0
    compute: int = 0
    output: int = 0
    repack: int = 0
    overhead: int = 0
    compute_resident: int = 0

    @property
    def total(self) -> int:
        """Everything llama.cpp allocates on this device, plus the overhead."""
        return (
            self.weights + self.kv_cache + self.compute + self.output + self.repack + self.overhead
        )


@dataclass(frozen=True)
class MemoryEstimate:
    """Memory per device for one model and one set of load parameters."""

    params: EstimateParams
    arch: str
    n_layer: int
    n_ctx: int
    devices: dict[str, DeviceBytes]
    layer_weights: tuple[int, ...]
    layer_devices: tuple[str, ...]
    layer_kv: tuple[int, ...]
    gpu_layers: int
    peak_ram: int
    vram: int | None
    approximate: bool
    explanation: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (bytes as ints; device totals included)."""
        out = asdict(self)
        for name, dev in self.devices.items():
            out["devices"][name]["total"] = dev.total
        return out


def _graph_config(
    shape: ModelShape, ctx: ContextSize, p: EstimateParams, n_tokens: int, n_outputs: int
) -> GraphConfig:
    if n_tokens % ctx.n_stream:
        n_tokens = (n_tokens + ctx.n_stream - 1) // ctx.n_stream * ctx.n_stream
    return GraphConfig(
        n_tokens=n_tokens, n_outputs=n_outputs, n_stream=ctx.n_stream, n_kv=ctx.n_ctx_seq,
        n_kv_swa=swa_cells(shape, ctx, p.swa_full), flash_attn=p.flash_attn,
        type_k=KV_TYPES[p.kv_type], type_v=KV_TYPES[p.kv_type],
    )  # fmt: skip


def _compute(
    shape: ModelShape,
    ctx: ContextSize,
    p: EstimateParams,
    threads: int,
    repacked: frozenset[str],
    alignment: int,
) -> tuple[int, int, int, bool]:
    """(reserved, resident, work buffer, approximate) for the compute buffer."""
    n_tok = min(ctx.n_ctx, ctx.n_ubatch)
    try:
        pp = graph_bytes(shape, _graph_config(shape, ctx, p, n_tok, n_tok), alignment)
        tg = graph_bytes(shape, _graph_config(shape, ctx, p, ctx.n_stream, ctx.n_stream), alignment)
        worst = build_graph(shape, _graph_config(shape, ctx, p, n_tok, ctx.n_stream))
    except KeyError:  # a tensor the llama graph needs is missing: rough dense estimate
        return _rough_compute(shape, ctx, p) + (True,)
    work = work_buffer_bytes(worst, threads, repacked, tiled="AVX2" in cpu_features())
    exact = shape.graph_family != "generic"
    return max(pp, tg), measure(worst, alignment), work, not exact


def _rough_compute(shape: ModelShape, ctx: ContextSize, p: EstimateParams) -> tuple[int, int, int]:
    """A dense-transformer bound when the graph cannot be rebuilt (unknown tensor layout)."""
    n = min(ctx.n_ctx, ctx.n_ubatch)
    n_head = max((ly.n_head for ly in shape.layers), default=1)
    n_ff = max((ly.n_ff for ly in shape.layers), default=4 * shape.n_embd)
    attn = 0 if p.flash_attn else ctx.n_ctx_seq * n * (n_head + 1) * 4
    act = n * (4 * shape.n_embd + 3 * n_ff) * 4
    logits = shape.n_vocab * n * 4
    resident = max(attn, act) + shape.n_vocab * 4
    return max(attn + act, logits + 2 * shape.n_embd * n * 4), resident, act // 2


def estimate(
    headers: Sequence[GGUFHeader],
    params: EstimateParams | None = None,
    *,
    offload: bool | None = None,
    gpu_backend: bool | None = None,
    process_baseline: int | None = None,
) -> MemoryEstimate:
    """Bytes llama.cpp will use on each device for this model (headers of all its shards).

    ``offload``: whether llama.cpp can put layers on a GPU; None asks the installed build.
    ``gpu_backend``: whether the build has a GPU (CUDA) backend with a device, which llama.cpp
    uses even with ``n_gpu_layers = 0`` (it offloads large batches, see docs/estimator.md);
    None: True when ``offload`` is, else asks the installed build.
    ``process_baseline``: resident bytes of the process before the model is loaded (None: a
    fresh Python process with llama_cpp imported, see ``estimate_overhead``).
    """
    p = params or EstimateParams()
    shape = model_shape(headers)
    if offload is None:
        offload = _build_offloads()
    if gpu_backend is None:
        gpu_backend = offload or _build_offloads()
    ctx = context_size(p.n_ctx, p.n_batch, p.n_ubatch, p.n_seq, shape.n_ctx_train)
    threads = p.n_threads if p.n_threads > 0 else default_threads()
    # a CUDA build stores CPU weights in its host buffer type, never in CPU_REPACK (with mmap
    # that becomes the plain mapping): llama_model_loader / make_cpu_buft_list
    features = cpu_features() - {"REPACK"} if gpu_backend else None
    wp = place_weights(
        shape, p.n_gpu_layers, offload=offload, use_mmap=p.use_mmap, features=features
    )
    kv_type = KV_TYPES[p.kv_type]
    kv = layer_cache_bytes(
        shape, ctx, kv_type, kv_type, flash_attn=p.flash_attn, swa_full=p.swa_full
    )
    kv_gpu = sum(b for b, g in zip(kv, wp.layer_on_gpu, strict=True) if g and p.offload_kqv)
    any_gpu = any(wp.layer_on_gpu) or wp.output_on_gpu
    repacked = frozenset(wp.repacked)
    reserved, resident, work, approx = _compute(shape, ctx, p, threads, repacked, 32)
    output = shape.n_vocab * 4 * max(ctx.n_stream, 1)
    host = host_overhead(headers[0], shape, ctx.n_batch, cuda=gpu_backend)
    cpu_compute, cpu_resident, gpu_compute = reserved, resident, 0
    if gpu_backend:
        cuda = _cuda_compute(shape, ctx, p, wp, threads)
        if cuda is not None:
            gpu_compute, cpu_compute, work = cuda
            cpu_resident = cpu_compute  # CUDA_Host is pinned: all of it is resident
        else:  # no graph for this architecture: the rough whole-graph bound on the GPU
            gpu_compute = _compute(shape, ctx, p, threads, repacked, CUDA_ALIGNMENT)[0]
        approx = True
    if any_gpu and not gpu_backend:  # layers offloaded, build unknown: the whole graph
        gpu_compute = _compute(shape, ctx, p, threads, repacked, CUDA_ALIGNMENT)[0]
        if all(wp.layer_on_gpu) and wp.output_on_gpu:  # only inputs and embeddings stay
            n_tok = min(ctx.n_ctx, ctx.n_ubatch)
            cpu_compute = cpu_resident = n_tok * (shape.n_embd * 8 + 16)
        approx = True
    cpu = DeviceBytes(
        weights=wp.cpu_mapped,
        kv_cache=sum(kv) - kv_gpu, compute=cpu_compute, output=output, repack=wp.cpu_repack,
        overhead=host.total + work, compute_resident=cpu_resident,
    )  # fmt: skip
    devices = {"CPU": cpu}
    if any_gpu or gpu_backend:
        devices["GPU"] = DeviceBytes(
            weights=wp.gpu,
            kv_cache=kv_gpu,
            compute=gpu_compute,
            overhead=cuda_overhead(any_gpu),
            compute_resident=gpu_compute,
        )
    baseline = host.process_baseline if process_baseline is None else process_baseline
    # a mapped range costs whole pages: at most one more page at each end per file
    pages = 2 * PAGE * len(headers) if p.use_mmap else 0
    resident = (cpu.weights, cpu.repack, cpu.kv_cache, cpu.output, cpu_resident, cpu.overhead)
    peak = baseline + pages + sum(resident)
    if gpu_backend and wp.gpu and p.use_mmap:  # the load reads every mapped weight page
        peak = max(peak, baseline + pages + _mapped_all(shape) + host.vocab + CUDA_LOAD_RSS)
    gpu_layers = sum(wp.layer_on_gpu) + int(wp.output_on_gpu)
    est = MemoryEstimate(
        params=p, arch=shape.arch, n_layer=shape.n_layer, n_ctx=ctx.n_ctx, devices=devices,
        layer_weights=wp.layer_bytes,
        layer_devices=tuple("GPU" if g else "CPU" for g in wp.layer_on_gpu), layer_kv=kv,
        gpu_layers=gpu_layers, peak_ram=peak,
        vram=devices["GPU"].total if "GPU" in devices else None,
        approximate=approx or bool(shape.notes),
    )  # fmt: skip
    return replace(est, explanation=explain(est, shape, wp, host, work, baseline))


def _cuda_compute(
    shape: ModelShape, ctx: ContextSize, p: EstimateParams, wp: WeightPlacement, threads: int
) -> tuple[int, int, int] | None:
    """(CUDA0 compute, CUDA_Host compute, CPU scratch) in a CUDA build; None: no graph."""
    on, out = wp.layer_on_gpu, wp.output_on_gpu

    def on_gpu(name: str) -> bool:
        if name.startswith("blk."):
            return on[int(name.split(".")[1])]
        if name.startswith("cache_"):
            return on[int(name.rsplit("_l", 1)[1])] and p.offload_kqv
        return out and name.startswith("output")

    n_tok, ns = min(ctx.n_ctx, ctx.n_ubatch), ctx.n_stream
    try:
        pp = sched_graph_bytes(shape, _graph_config(shape, ctx, p, n_tok, n_tok), on_gpu)
        tg = sched_graph_bytes(shape, _graph_config(shape, ctx, p, ns, ns), on_gpu)
        tg_graph = build_graph(shape, _graph_config(shape, ctx, p, ns, ns))
    except KeyError:
        return None
    # the CPU computes single tokens of its own layers; batches go to the GPU
    cpu_runs = not (all(on) and out)
    tiled = "AVX2" in cpu_features()
    work = work_buffer_bytes(tg_graph, threads, frozenset(), tiled) if cpu_runs else 0
    return max(pp[0], tg[0]), max(pp[1], tg[1]), work


def _mapped_all(shape: ModelShape) -> int:
    """The memory-mapped span of every weight (what loading with offload reads)."""
    return place_weights(shape, 0, offload=False, use_mmap=True, features=frozenset()).cpu_mapped


@functools.lru_cache(maxsize=1)
def _build_offloads() -> bool:
    """Whether this llama.cpp build has a device layers can go to (the build probe's answer:
    llama_supports_gpu_offload() is also true for a build with RPC support and no worker)."""
    from quantdesk.engine.hardware.llama_build import probe_llama_build

    return probe_llama_build()[0].gpu_offload
