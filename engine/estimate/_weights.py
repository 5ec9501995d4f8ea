"""Where llama.cpp puts each weight: CPU (memory-mapped or copied), CPU_REPACK, or the GPU.

Rules from ``llama_model_base::load_tensors`` and ``llama_model_loader::create_tensor``: the
token embeddings always stay on the CPU; with ``n_gpu_layers = k`` the last ``k - 1`` repeating
layers and the output layer go to the GPU (``k > n_layer`` offloads everything, ``-1`` means
all); a tied output head is a second copy of ``token_embd`` where the output layer lives. On the
CPU, 2-D matrix weights whose type the CPU can repack (ggml-cpu/repack.cpp, depends on
AVX2/AVX-512/NEON) are copied into a ``CPU_REPACK`` buffer; the rest is served from the memory
map, whose buffer spans from the first to the last CPU tensor in the file.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from quantdesk.engine.estimate.hparams import ModelShape
from quantdesk.engine.gguf.reader import TensorInfo
from quantdesk.engine.hardware.llama_build import compiled_cpu_features

CPU_ALIGNMENT = 32
CUDA_ALIGNMENT = 128
CUDA_ROW_PADDING = 512  # MATRIX_ROW_PADDING in ggml-cuda/common.cuh
PAGE = 4096

_QUANTIZED = re.compile(r"^(Q\d|IQ\d|TQ\d|MXFP4|NVFP4)")
_NOT_MATMUL = (
    "norm",
    "conv1d",
    "bias",
    "scale",
    "rope_freqs",
    "ssm_a",
    "ssm_d",
    "time_mix_",
    "channel_mix_lerp",
    "pos_embd",
    "token_types",
)


@functools.lru_cache(maxsize=1)
def cpu_features() -> frozenset[str]:
    """Instruction-set features of this llama.cpp build on this CPU ("AVX2", "NEON", ...)."""
    try:
        return compiled_cpu_features()
    except Exception:  # llama.cpp missing or too old: fall back to what the CPU says
        pass
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            flags = next((ln.split(":", 1)[1].split() for ln in f if ln.startswith("flags")), [])
    except OSError:
        return frozenset()
    names = {"avx2": "AVX2", "avx512f": "AVX512", "avx": "AVX"}
    return frozenset(names[f] for f in flags if f in names) | {"REPACK"}


def repacks(type_name: str, ne1: int, features: frozenset[str]) -> bool:
    """True when ggml-cpu repacks a matrix of this type and row count for faster matmuls."""
    if "REPACK" not in features:
        return False
    avx2, avx512 = "AVX2" in features, "AVX512" in features
    neon = "NEON" in features
    i8mm, dot = neon and "MATMUL_INT8" in features, neon and "DOTPROD" in features
    if type_name == "Q4_0":
        return (avx2 and ne1 % 8 == 0) or ((i8mm or dot) and ne1 % 4 == 0)
    if type_name == "Q4_K":
        return (avx2 or i8mm or dot) and ne1 % 8 == 0
    if type_name in ("Q5_K", "Q6_K"):
        return (i8mm or dot) and ne1 % 8 == 0
    if type_name == "Q2_K":
        return avx512 and ne1 % 8 == 0
    if type_name in ("IQ4_NL", "MXFP4"):
        return (avx2 and ne1 % 8 == 0) or (dot and ne1 % 4 == 0)
    if type_name in ("Q8_0", "Q1_0"):
        return (i8mm or dot) and ne1 % 4 == 0
    return False


def is_matmul_weight(t: TensorInfo) -> bool:
    """Weights used by MUL_MAT / MUL_MAT_ID (the only ones a repack buffer can hold)."""
    return len(t.shape) in (2, 3) and not any(part in t.name for part in _NOT_MATMUL)


def cuda_alloc_size(t: TensorInfo) -> int:
    """Bytes of a weight in a CUDA buffer: quantized rows are padded to 512 columns."""
    size = t.n_bytes
    if _QUANTIZED.match(t.type_name) and t.shape[0] % CUDA_ROW_PADDING:
        pad = CUDA_ROW_PADDING - t.shape[0] % CUDA_ROW_PADDING
        size += _row_bytes(t, pad)
    return _align(size, CUDA_ALIGNMENT)


def _row_bytes(t: TensorInfo, n: int) -> int:
    """ggml_row_size for ``n`` elements of the tensor's type."""
    return t.n_bytes * n // t.n_elements


def _align(n: int, a: int) -> int:
    return (n + a - 1) // a * a


@dataclass(frozen=True)
class WeightPlacement:
    """Bytes of weights per buffer, and where each repeating layer lives."""

    cpu_mapped: int  # memory-mapped range (use_mmap) or CPU buffer (no mmap)
    cpu_repack: int
    gpu: int
    layer_bytes: tuple[int, ...]
    layer_on_gpu: tuple[bool, ...]
    output_on_gpu: bool
    input_bytes: int
    output_bytes: int
    repacked: tuple[str, ...]


def gpu_layer_split(n_layer: int, n_gpu_layers: int, offload: bool) -> tuple[list[bool], bool]:
    """Which repeating layers and whether the output layer go to the GPU."""
    if not offload or n_gpu_layers == 0:
        return [False] * n_layer, False
    k = n_layer + 1 if n_gpu_layers < 0 else min(n_gpu_layers, n_layer + 1)
    start = n_layer + 1 - k
    return [il >= start for il in range(n_layer)], k >= 1


def place_weights(
    shape: ModelShape,
    n_gpu_layers: int,
    *,
    offload: bool,
    use_mmap: bool,
    features: frozenset[str] | None = None,
) -> WeightPlacement:
    """Assign every weight to a buffer the way llama.cpp would."""
    features = cpu_features() if features is None else features
    on_gpu, out_gpu = gpu_layer_split(shape.n_layer, n_gpu_layers, offload)
    cpu_tensors: list[TensorInfo] = list(shape.input_tensors)
    repack: list[TensorInfo] = []
    gpu_bytes = 0

    def place(t: TensorInfo, gpu: bool) -> None:
        nonlocal gpu_bytes
        if gpu:
            gpu_bytes += cuda_alloc_size(t)
        elif is_matmul_weight(t) and repacks(t.type_name, t.shape[1], features):
            repack.append(t)
        else:
            cpu_tensors.append(t)

    for il, tensors in enumerate(shape.layer_tensors):
        for t in tensors:
            place(t, on_gpu[il])
    for t in shape.output_tensors:
        place(t, out_gpu)
    if shape.tied_output:
        embd = next((t for t in shape.input_tensors if t.name == "token_embd.weight"), None)
        if embd is not None:
            if out_gpu:
                gpu_bytes += cuda_alloc_size(embd)
            elif repacks(embd.type_name, embd.shape[1], features):
                repack.append(embd)  # a repacked copy for the head; get_rows keeps the original
    repack_bytes = sum(_align(t.n_bytes, CPU_ALIGNMENT) for t in repack)
    if use_mmap:
        # one mapped buffer per file, spanning its first to last CPU-resident tensor
        # (repacked tensors in between stay mapped: their pages are read while loading)
        spans: dict[int, tuple[int, int]] = {}
        for t in cpu_tensors:
            shard = shape.shard_of.get(t.name, 0)
            lo, hi = spans.get(shard, (t.offset, t.offset + t.n_bytes))
            spans[shard] = (min(lo, t.offset), max(hi, t.offset + t.n_bytes))
        mapped = sum(hi - lo for lo, hi in spans.values())
    else:
        mapped = sum(_align(t.n_bytes, CPU_ALIGNMENT) for t in cpu_tensors)
    layer_bytes = tuple(sum(t.n_bytes for t in ts) for ts in shape.layer_tensors)
    return WeightPlacement(
        cpu_mapped=mapped, cpu_repack=repack_bytes, gpu=gpu_bytes, layer_bytes=layer_bytes,
        layer_on_gpu=tuple(on_gpu), output_on_gpu=out_gpu,
        input_bytes=sum(t.n_bytes for t in shape.input_tensors),
        output_bytes=sum(t.n_bytes for t in shape.output_tensors),
        repacked=tuple(t.name for t in repack),
    )  # fmt: skip
