"""Memory a loaded model costs besides llama.cpp's logged buffers.

llama.cpp logs its weight, KV, compute and output buffers, but a process holding a model also
keeps the vocabulary in C++ containers, the bindings' arrays and the code of the libraries.
These terms were measured with llama-cpp-python 0.3.36 on Linux x86-64 (glibc malloc):
loading vocabularies alone (``vocab_only``) of synthetic SPM and BPE models from 32k to 262k
tokens, with short and long token texts, and diffing ``/proc/self/status`` (see
docs/estimator.md). They are estimates with about 5 % error each, small next to the buffers.
"""

from __future__ import annotations

from dataclasses import dataclass

from quantdesk.engine.estimate.hparams import ModelShape
from quantdesk.engine.gguf.reader import GGUFHeader

MIB = 1 << 20
VOCAB_BYTES_PER_TOKEN = 155  # token_data + token_to_id + piece cache entries (SSO strings)
VOCAB_STRING_COPIES = 4  # token texts longer than 15 bytes live on the heap, 4 copies
VOCAB_BYTES_PER_MERGE = 175  # BPE merge ranks (std::map of string pairs)
RUNTIME_BYTES = 5 * MIB  # llama.cpp/ggml code pages touched and allocator arenas
BINDINGS_FIXED = 3 * MIB  # llama-cpp-python's Llama object, chat formatter, numpy arrays
BINDINGS_PER_BATCH_TOKEN = 4096  # llama_batch seq_id arrays: one touched page per token
BINDINGS_PER_VOCAB_TOKEN = 16  # candidate ids (np.arange) + the sampler's candidate vector
PROCESS_BASELINE = 40 * MIB  # python + numpy + llama_cpp imported, nothing loaded
# CUDA builds. Measured once (docs/gpu_check.md): NVIDIA H200, driver 580.159.04, CUDA 13.0,
# the llama.cpp of llama-cpp-python 0.3.36 built for sm_90, 2026-11-29, a 1.1e9-parameter F16
# llama. Other GPUs, drivers, CUDA versions and builds differ; each figure is the highest seen.
CUDA_CONTEXT = 532 * MIB  # VRAM outside any buffer after the load (528.3-531.5 measured)
CUDA_FIRST_BATCH = 122 * MIB  # + cuBLAS / ggml pool on the first 512-token batch (120-122)
CUDA_FIRST_TOKEN = 62 * MIB  # + the first single-token step when layers are on the GPU (62)
CUDA_HOST_RSS = 328 * MIB  # RAM of the CUDA runtime after the first token (300-328 unexplained)
CUDA_LOAD_RSS = 111 * MIB  # RAM beyond baseline + mapped file at the load peak (110.6-110.8)
PROCESS_BASELINE_CUDA = 223 * MIB  # python + numpy + a CUDA llama_cpp imported (222.3-222.4)


def _heap_chunk(n: int) -> int:
    """glibc malloc chunk for an n-byte string (+NUL, +8 header, 16-byte granularity)."""
    return max(32, (n + 1 + 8 + 15) // 16 * 16)


@dataclass(frozen=True)
class HostOverhead:
    """RAM outside llama.cpp's logged buffers, by cause."""

    vocab: int
    sampling: int
    bindings: int
    runtime: int
    process_baseline: int

    @property
    def total(self) -> int:
        """Everything except the process baseline (which is counted separately)."""
        return self.vocab + self.sampling + self.bindings + self.runtime


def vocab_bytes(header: GGUFHeader) -> int:
    """Heap used by llama.cpp's vocabulary for this tokenizer."""
    meta = header.metadata
    tokens = meta.get("tokenizer.ggml.tokens")
    merges = meta.get("tokenizer.ggml.merges")
    total = 0
    if isinstance(tokens, list):
        total += VOCAB_BYTES_PER_TOKEN * len(tokens)
        for text in tokens:
            n = len(text.encode("utf-8")) if isinstance(text, str) else 0
            if n > 15:
                total += VOCAB_STRING_COPIES * _heap_chunk(n)
    if isinstance(merges, list):
        total += VOCAB_BYTES_PER_MERGE * len(merges)
    return total


def host_overhead(
    header: GGUFHeader, shape: ModelShape, n_batch: int, *, cuda: bool = False
) -> HostOverhead:
    """The host-side costs of one loaded model with one context (``cuda``: a CUDA build)."""
    return HostOverhead(
        vocab=vocab_bytes(header),
        sampling=shape.n_vocab * 4,  # llama_context's token id table for backend samplers
        bindings=BINDINGS_FIXED
        + BINDINGS_PER_BATCH_TOKEN * n_batch
        + BINDINGS_PER_VOCAB_TOKEN * shape.n_vocab,
        runtime=RUNTIME_BYTES + (CUDA_HOST_RSS if cuda else 0),
        process_baseline=PROCESS_BASELINE_CUDA if cuda else PROCESS_BASELINE,
    )


def cuda_overhead(layers_on_gpu: bool = True) -> int:
    """Peak VRAM the CUDA backend takes besides its buffers (context, kernels, cuBLAS, pool).

    With no layer on the GPU, single tokens run on the CPU and the first-token growth is absent.
    """
    return CUDA_CONTEXT + CUDA_FIRST_BATCH + (CUDA_FIRST_TOKEN if layers_on_gpu else 0)
