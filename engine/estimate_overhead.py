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

from .estimate_hparams import ModelShape
from .gguf import GGUFHeader

MIB = 1 << 20
VOCAB_BYTES_PER_TOKEN = 155  # token_data + token_to_id + piece cache entries (SSO strings)
VOCAB_STRING_COPIES = 4  # token texts longer than 15 bytes live on the heap, 4 copies
VOCAB_BYTES_PER_MERGE = 175  # BPE merge ranks (std::map of string pairs)
RUNTIME_BYTES = 5 * MIB  # llama.cpp/ggml code pages touched and allocator arenas
BINDINGS_FIXED = 3 * MIB  # llama-cpp-python's Llama object, chat formatter, numpy arrays
BINDINGS_PER_BATCH_TOKEN = 4096  # llama_batch seq_id arrays: one touched page per token
BINDINGS_PER_VOCAB_TOKEN = 16  # candidate ids (np.arange) + the sampler's candidate vector
PROCESS_BASELINE = 40 * MIB  # python + numpy + llama_cpp imported, nothing loaded
CUDA_CONTEXT = 384 * MIB  # CUDA runtime + cuBLAS handles; NOT measured here (no GPU)


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


def host_overhead(header: GGUFHeader, shape: ModelShape, n_batch: int) -> HostOverhead:
    """The host-side costs of one loaded model with one context."""
    return HostOverhead(
        vocab=vocab_bytes(header),
        sampling=shape.n_vocab * 4,  # llama_context's token id table for backend samplers
        bindings=BINDINGS_FIXED
        + BINDINGS_PER_BATCH_TOKEN * n_batch
        + BINDINGS_PER_VOCAB_TOKEN * shape.n_vocab,
        runtime=RUNTIME_BYTES,
        process_baseline=PROCESS_BASELINE,
    )


def cuda_overhead() -> int:
    """VRAM the CUDA backend takes before any buffer (context, cuBLAS workspace)."""
    return CUDA_CONTEXT
