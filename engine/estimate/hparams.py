"""The shape of a model as llama.cpp sees it, read from GGUF metadata (llama_hparams).

:func:`model_shape` reads what the memory estimator needs from a header (or the headers of a
split model): per-layer head counts (scalars or per-layer arrays), head sizes, which layers use
sliding-window attention, MLA, recurrent state sizes, experts, and the tensor table grouped by
layer. Rules follow ``llama_model_base::load_hparams`` and the per-architecture loaders of the
llama.cpp that llama-cpp-python 0.3.36 vendors.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from quantdesk.engine.errors import InvalidGGUF
from quantdesk.engine.gguf.reader import GGUFHeader, TensorInfo

LLAMA_MAX_LAYERS = 512
"""llama.cpp's own limit (``LLAMA_MAX_LAYERS`` in llama-hparams.h)."""

# Architectures whose graph the estimator rebuilds op by op (compute buffer to the byte),
# each checked against llama.cpp's dry run in tests/engine/estimate/test_estimate.py.
LLAMA_LIKE = frozenset({"llama", "qwen2", "qwen3"})
GEMMA3_LIKE = frozenset({"gemma3"})
# Sliding-window architectures: default layer pattern (n, dense_first) when the file has none.
SWA_PATTERNS: dict[str, tuple[int, bool]] = {
    "gemma2": (2, False), "gemma3": (6, False), "gemma3n": (5, False), "cohere2": (4, False),
    "cohere2moe": (4, True), "exaone4": (4, False), "olmo2": (4, False), "llama4": (4, False),
    "gpt-oss": (2, False), "afmoe": (4, False), "plamo3": (8, False), "mellum": (4, False),
    "smallthinker": (4, True),
}  # fmt: skip
RECURRENT_ARCHS = frozenset({"mamba", "mamba2", "rwkv6", "rwkv6qwen2", "rwkv7", "arwkv7"})
HYBRID_ARCHS = frozenset(
    {"jamba", "granitehybrid", "nemotron_h", "nemotron_h_moe", "falcon-h1", "lfm2", "lfm2moe",
     "qwen3next", "plamo2", "kimi-linear", "qwen35", "qwen35moe"}
)  # fmt: skip

_BLOCK = re.compile(r"^blk\.(\d+)\.")


@dataclass(frozen=True)
class LayerShape:
    """One repeating layer: attention geometry and whether it keeps KV or recurrent state."""

    n_head: int
    n_head_kv: int
    head_k: int
    head_v: int
    n_ff: int
    is_swa: bool
    is_recurrent: bool


@dataclass(frozen=True)
class ModelShape:
    """What llama.cpp derives from the metadata, plus the tensors of each layer."""

    arch: str
    n_layer: int
    n_embd: int
    n_vocab: int
    n_ctx_train: int
    layers: tuple[LayerShape, ...]
    n_swa: int
    is_mla: bool
    n_expert: int
    n_expert_used: int
    n_embd_r: int
    n_embd_s: int
    tensors: tuple[TensorInfo, ...]
    layer_tensors: tuple[tuple[TensorInfo, ...], ...]
    input_tensors: tuple[TensorInfo, ...]
    output_tensors: tuple[TensorInfo, ...]
    tied_output: bool
    notes: tuple[str, ...] = field(default_factory=tuple)
    shard_of: dict[str, int] = field(default_factory=dict)  # tensor name -> file index

    @property
    def graph_family(self) -> str:
        """ "llama", "gemma3" or "generic": which graph builder models the compute buffer."""
        if self.n_expert or self.is_mla or self.n_embd_r or self.n_embd_s:
            return "generic"
        if self.arch in GEMMA3_LIKE:
            return "gemma3"
        if self.arch in LLAMA_LIKE:
            return "llama"
        return "generic"


def _meta_int(meta: dict[str, Any], key: str, default: int | None = None) -> int | None:
    value = meta.get(key, default)
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return default


def _per_layer(meta: dict[str, Any], key: str, n_layer: int, default: int) -> list[int]:
    """A metadata value that is a scalar or a per-layer array (llama.cpp get_key_or_arr)."""
    value = meta.get(key)
    if isinstance(value, list):
        if len(value) != n_layer or not all(isinstance(v, int) for v in value):
            raise InvalidGGUF(f"{key} holds {len(value)} values for {n_layer} layers")
        return list(value)
    scalar = _meta_int(meta, key)
    return [default if scalar is None else scalar] * n_layer


def _swa_layers(meta: dict[str, Any], arch: str, n_layer: int, n_swa: int) -> list[bool]:
    if n_swa <= 0:
        return [False] * n_layer
    key = f"{arch}.attention.sliding_window_pattern"
    pattern = meta.get(key)
    if isinstance(pattern, list) and len(pattern) == n_layer:
        return [bool(v) for v in pattern]
    n, dense_first = SWA_PATTERNS.get(arch, (0, False))
    if isinstance(pattern, int) and not isinstance(pattern, bool):
        n = pattern
    if dense_first:
        return [n == 0 or il % n != 0 for il in range(n_layer)]
    return [n == 0 or il % n < n - 1 for il in range(n_layer)]


def check_layer_count(header: GGUFHeader) -> None:
    """InvalidGGUF for a layer count past llama.cpp's limit: a crafted header's 50 million
    layers hung the estimate, and llama.cpp itself aborts on them."""
    arch = header.metadata.get("general.architecture")
    n_layer = _meta_int(header.metadata, f"{arch}.block_count") if isinstance(arch, str) else 0
    if n_layer and n_layer > LLAMA_MAX_LAYERS:
        raise InvalidGGUF(
            f"{arch}.block_count says {n_layer:,} layers; llama.cpp runs at most "
            f"{LLAMA_MAX_LAYERS}, so this file is damaged or not a model it can load."
        )


def model_shape(headers: Sequence[GGUFHeader]) -> ModelShape:
    """Read the model's shape from its header(s): metadata from the first, tensors from all."""
    if not headers:
        raise InvalidGGUF("no GGUF header was given")
    meta = headers[0].metadata
    arch = meta.get("general.architecture")
    if not isinstance(arch, str) or not arch:
        raise InvalidGGUF("general.architecture is missing, so the model cannot be estimated")
    n_layer = _meta_int(meta, f"{arch}.block_count")
    n_embd = _meta_int(meta, f"{arch}.embedding_length")
    if not n_layer or not n_embd:
        raise InvalidGGUF(f"{arch}.block_count or {arch}.embedding_length is missing")
    check_layer_count(headers[0])
    tensors = tuple(t for h in headers for t in h.tensors)
    shard_of = {t.name: i for i, h in enumerate(headers) for t in h.tensors}
    by_name = {t.name: t for t in tensors}
    tokens = meta.get("tokenizer.ggml.tokens")
    n_vocab = len(tokens) if isinstance(tokens, list) else _meta_int(meta, f"{arch}.vocab_size")
    if not n_vocab and "token_embd.weight" in by_name:
        n_vocab = by_name["token_embd.weight"].shape[1]
    n_head = _per_layer(meta, f"{arch}.attention.head_count", n_layer, 0)
    n_head_kv = _per_layer(meta, f"{arch}.attention.head_count_kv", n_layer, -1)
    n_head_kv = [h if kv < 0 else kv for h, kv in zip(n_head, n_head_kv, strict=True)]
    n_ff = _per_layer(meta, f"{arch}.feed_forward_length", n_layer, 0)
    default_head = n_embd // max(n_head) if max(n_head) else 0
    head_k = _meta_int(meta, f"{arch}.attention.key_length", default_head) or 0
    head_v = _meta_int(meta, f"{arch}.attention.value_length", default_head) or 0
    head_k_swa = _meta_int(meta, f"{arch}.attention.key_length_swa", head_k) or 0
    head_v_swa = _meta_int(meta, f"{arch}.attention.value_length_swa", head_v) or 0
    n_swa = _meta_int(meta, f"{arch}.attention.sliding_window", 0) or 0
    is_swa = _swa_layers(meta, arch, n_layer, n_swa)
    recurrent = arch in RECURRENT_ARCHS
    is_recr = [recurrent or (arch in HYBRID_ARCHS and kv == 0) for kv in n_head_kv]
    layers = tuple(
        LayerShape(
            n_head=n_head[il],
            n_head_kv=n_head_kv[il],
            head_k=head_k_swa if is_swa[il] else head_k,
            head_v=head_v_swa if is_swa[il] else head_v,
            n_ff=n_ff[il],
            is_swa=is_swa[il],
            is_recurrent=is_recr[il],
        )
        for il in range(n_layer)
    )
    per_layer: list[list[TensorInfo]] = [[] for _ in range(n_layer)]
    inputs: list[TensorInfo] = []
    outputs: list[TensorInfo] = []
    for t in tensors:
        m = _BLOCK.match(t.name)
        if m and int(m.group(1)) < n_layer:
            per_layer[int(m.group(1))].append(t)
        elif t.name.startswith(("token_embd", "per_layer_token_embd", "token_types", "pos_embd")):
            inputs.append(t)
        else:
            outputs.append(t)
    notes: list[str] = []
    is_mla = bool(_meta_int(meta, f"{arch}.attention.key_length_mla", 0))
    d_conv = _meta_int(meta, f"{arch}.ssm.conv_kernel", 0) or 0
    d_inner = _meta_int(meta, f"{arch}.ssm.inner_size", 0) or 0
    d_state = _meta_int(meta, f"{arch}.ssm.state_size", 0) or 0
    n_group = _meta_int(meta, f"{arch}.ssm.group_count", 0) or 0
    n_embd_r = max(d_conv - 1, 0) * (d_inner + 2 * n_group * d_state)
    n_embd_s = d_state * d_inner
    wkv_head = _meta_int(meta, f"{arch}.wkv.head_size", 0) or 0
    if wkv_head:  # RWKV: token shift and wkv state per layer
        n_embd_r = (_meta_int(meta, f"{arch}.token_shift_count", 2) or 2) * n_embd
        n_embd_s = n_embd * wkv_head
    if any(is_recr) and not (n_embd_r or n_embd_s):
        notes.append("recurrent state size unknown for this architecture (counted as zero)")
    return ModelShape(
        arch=arch,
        n_layer=n_layer,
        n_embd=n_embd,
        n_vocab=n_vocab or 0,
        n_ctx_train=_meta_int(meta, f"{arch}.context_length", 0) or 0,
        layers=layers,
        n_swa=n_swa,
        is_mla=is_mla,
        n_expert=_meta_int(meta, f"{arch}.expert_count", 0) or 0,
        n_expert_used=_meta_int(meta, f"{arch}.expert_used_count", 0) or 0,
        n_embd_r=n_embd_r,
        n_embd_s=n_embd_s,
        tensors=tensors,
        layer_tensors=tuple(tuple(ts) for ts in per_layer),
        input_tensors=tuple(inputs),
        output_tensors=tuple(outputs),
        tied_output="output.weight" not in by_name,
        notes=tuple(notes),
        shard_of=shard_of,
    )
