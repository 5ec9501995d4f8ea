"""KV cache and recurrent state sizes per layer, as llama.cpp allocates them.

Rules from llama-context.cpp (context padding), llama-kv-cache.cpp / llama-kv-cache-iswa.cpp
(cell counts, K/V tensor shapes) and llama-memory-recurrent.cpp:

* the context is padded to a multiple of 256 cells; with ``n_seq`` sequences (not unified)
  each gets ``pad(n_ctx / n_seq, 256)`` cells in its own stream;
* each attention layer stores K as ``[head_k * n_head_kv, cells]`` and V likewise; without
  flash attention V is transposed and padded to the widest V of the model; MLA stores K only;
* sliding-window layers get ``pad(min(cells, n_swa + n_ubatch), 256)`` cells, or all cells
  when ``swa_full`` is on (llama-cpp-python's default, "using full-size SWA cache"; QuantDesk
  loads with it off, as llama.cpp's own tools do);
* recurrent layers (Mamba, RWKV, hybrids) keep ``(n_embd_r + n_embd_s)`` F32 values per sequence.
"""

from __future__ import annotations

from dataclasses import dataclass

from quantdesk.engine.estimate._ggml_graph import row_size
from quantdesk.engine.estimate.hparams import ModelShape

KV_TYPES = {"f16": 1, "q8_0": 8, "q4_0": 2}
"""KV cache types QuantDesk offers, as ggml type ids."""

CTX_PAD = 256


def pad(n: int, to: int = CTX_PAD) -> int:
    """Round ``n`` up to a multiple of ``to``."""
    return (n + to - 1) // to * to


@dataclass(frozen=True)
class ContextSize:
    """Context sizes after llama.cpp's padding."""

    n_ctx: int  # total cells (what llama_n_ctx reports)
    n_ctx_seq: int  # cells per sequence stream
    n_stream: int
    n_batch: int
    n_ubatch: int


def context_size(
    n_ctx: int, n_batch: int, n_ubatch: int, n_seq: int, n_ctx_train: int, unified: bool = False
) -> ContextSize:
    """Mirror llama-cpp-python and llama_context: batch clamps, padding, per-sequence split."""
    if n_ctx > 0:
        n_batch = min(n_ctx, n_batch)  # llama_cpp.Llama clamps before llama.cpp pads
    n_ctx = pad(n_ctx if n_ctx > 0 else n_ctx_train)
    n_seq = max(1, n_seq)
    if unified:
        n_ctx_seq, n_stream = n_ctx, 1
    else:
        n_ctx_seq, n_stream = pad(n_ctx // n_seq), n_seq
        n_ctx = n_ctx_seq * n_seq
    n_batch = min(n_ctx, n_batch)
    n_ubatch = min(n_batch, n_ubatch or n_batch)
    return ContextSize(n_ctx, n_ctx_seq, n_stream, n_batch, n_ubatch)


def swa_cells(shape: ModelShape, ctx: ContextSize, swa_full: bool, unified: bool = False) -> int:
    """Cells of the sliding-window cache."""
    if swa_full or shape.n_swa <= 0:
        return ctx.n_ctx_seq
    window = shape.n_swa * (ctx.n_stream if unified else 1) + ctx.n_ubatch
    return pad(min(ctx.n_ctx_seq, window))


def layer_cache_bytes(
    shape: ModelShape,
    ctx: ContextSize,
    type_k: int,
    type_v: int,
    *,
    flash_attn: bool,
    swa_full: bool,
) -> tuple[int, ...]:
    """Bytes of KV cache (or recurrent state) held for each layer."""
    iswa = any(ly.is_swa for ly in shape.layers)
    n_swa_cells = swa_cells(shape, ctx, swa_full)
    v_trans = not flash_attn
    widest = max(ly.head_v * ly.n_head_kv for ly in shape.layers)  # n_embd_v_gqa_max()
    out = []
    for ly in shape.layers:
        if ly.is_recurrent:
            out.append((shape.n_embd_r + shape.n_embd_s) * 4 * ctx.n_stream)
            continue
        if ly.n_head_kv == 0:
            out.append(0)
            continue
        cells = n_swa_cells if (iswa and ly.is_swa) else ctx.n_ctx_seq
        k = row_size(type_k, ly.head_k * ly.n_head_kv) * cells * ctx.n_stream
        v_width = widest if v_trans else ly.head_v * ly.n_head_kv
        v = 0 if shape.is_mla else row_size(type_v, v_width) * cells * ctx.n_stream
        out.append(k + v)
    return tuple(out)
