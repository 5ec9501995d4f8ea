"""The estimator for CUDA builds against the figures measured on an H200 (docs/gpu_check.md).

No GPU is needed: the model is a header-only GGUF (sparse file) shaped like the one measured
(bench/vram_vs_reality.py's SHAPE), and the expected values are the ones llama.cpp logged and
NVML / /proc reported in that single run (H200, CUDA 13.0, driver 580, llama-cpp-python 0.3.36,
2026-11-29). Other GPUs and builds differ; the constants are the highest values seen there.
"""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np
import pytest

from quantdesk.engine.estimate import EstimateParams, estimate
from quantdesk.engine.estimate_fit import fit
from quantdesk.engine.gguf import GGUFHeader, read_header_from_file
from tests.tiny_models import _build_vocab

MIB = 1 << 20
GIB = 1 << 30
SHAPE = {"n_vocab": 32000, "n_embd": 2048, "n_layer": 16, "n_head": 32, "n_head_kv": 8,
         "n_ff": 8192, "n_ctx_train": 131072}  # fmt: skip
BASELINE = int(222.4 * MIB)  # RSS after importing the CUDA build, passed as the bench did
# (ngl, n_ctx): CUDA0 compute, CUDA_Host compute, NVML used after 512+1 tokens, VmHWM (MiB)
MEASURED = {
    (-1, 4096): (282.0, 18.0, 3104.8, 2439.3),
    (-1, 32768): (2130.0, 74.0, 5845.6, 2439.2),
    (8, 4096): (322.0, 18.0, 2025.6, 2439.5),
    (8, 32768): (2192.0, 74.0, 4287.6, 2439.1),
    (0, 4096): (320.0, 18.0, 967.6, 2790.5),
    (0, 32768): (2192.0, 74.0, 2839.6, 3743.8),
}
TOLERANCE = 0.02  # totals: never below the measurement, at most 2 % above it


def _write_header(path: Path) -> Path:
    """The measured model's GGUF header, tensor data left as a hole (the estimator reads none)."""
    s = SHAPE
    tokens, types, merges, special = _build_vocab(1000, ())
    fillers = [f"x{i:05d}" for i in range(s["n_vocab"] - len(tokens))]
    tokens, types = tokens + fillers, types + [1] * len(fillers)
    head = s["n_embd"] // s["n_head"]
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_file_type(1)
    w.add_vocab_size(s["n_vocab"])
    w.add_context_length(s["n_ctx_train"])
    w.add_embedding_length(s["n_embd"])
    w.add_block_count(s["n_layer"])
    w.add_feed_forward_length(s["n_ff"])
    w.add_head_count(s["n_head"])
    w.add_head_count_kv(s["n_head_kv"])
    w.add_rope_dimension_count(head)
    w.add_rope_freq_base(500000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(special["<s>"])
    w.add_eos_token_id(special["</s>"])
    total = 0

    def info(name: str, shape: tuple[int, ...], dtype: type) -> None:
        nonlocal total
        n = int(np.prod(shape)) * np.dtype(dtype).itemsize
        total += n
        w.add_tensor_info(name, shape, np.dtype(dtype), n)

    e, kv, ff = s["n_embd"], s["n_head_kv"] * head, s["n_ff"]
    info("token_embd.weight", (s["n_vocab"], e), np.float16)
    for i in range(s["n_layer"]):
        p = f"blk.{i}."
        info(p + "attn_norm.weight", (e,), np.float32)
        for name, rows, cols in (("attn_q", e, e), ("attn_k", kv, e), ("attn_v", kv, e),
                                 ("attn_output", e, e), ("ffn_gate", ff, e), ("ffn_up", ff, e),
                                 ("ffn_down", e, ff)):  # fmt: skip
            info(p + name + ".weight", (rows, cols), np.float16)
        info(p + "ffn_norm.weight", (e,), np.float32)
    info("output_norm.weight", (e,), np.float32)
    info("output.weight", (s["n_vocab"], e), np.float16)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    w.close()
    with path.open("r+b") as f:
        f.truncate(path.stat().st_size + total + 64 * 33 + (1 << 20))  # sparse, alignment slack
    return path


@pytest.fixture(scope="module")
def headers(tmp_path_factory: pytest.TempPathFactory) -> list[GGUFHeader]:
    return [read_header_from_file(_write_header(tmp_path_factory.mktemp("cuda") / "m.gguf"))]


def _est(headers: list[GGUFHeader], ngl: int, n_ctx: int, **kw):  # noqa: ANN202
    p = EstimateParams(n_ctx=n_ctx, n_gpu_layers=ngl)
    return estimate(headers, p, offload=True, gpu_backend=True, process_baseline=BASELINE, **kw)


@pytest.mark.parametrize(("ngl", "n_ctx"), sorted(MEASURED))
def test_cuda_compute_buffers_match_llama_log(headers: list[GGUFHeader], ngl: int, n_ctx: int):
    """The scheduler's split (weight copies, KV views, inputs) gives the logged buffers."""
    cuda0, host, _, _ = MEASURED[(ngl, n_ctx)]
    est = _est(headers, ngl, n_ctx)
    assert abs(est.devices["GPU"].compute / MIB - cuda0) <= 0.01
    assert abs(est.devices["CPU"].compute / MIB - host) <= 0.01
    assert est.devices["CPU"].repack == 0  # CUDA builds keep CPU weights out of CPU_REPACK


@pytest.mark.parametrize(("ngl", "n_ctx"), sorted(MEASURED))
def test_cuda_totals_cover_measured_peaks(headers: list[GGUFHeader], ngl: int, n_ctx: int):
    """VRAM (with ngl 0 too) and peak RAM are at or just above what was measured."""
    _, _, nvml_peak, vm_hwm = MEASURED[(ngl, n_ctx)]
    est = _est(headers, ngl, n_ctx)
    assert est.vram is not None
    assert nvml_peak <= est.vram / MIB <= nvml_peak * (1 + TOLERANCE)
    assert vm_hwm <= est.peak_ram / MIB <= vm_hwm * (1 + TOLERANCE)


def test_cpu_build_estimate_unchanged(headers: list[GGUFHeader]) -> None:
    """Without a GPU backend nothing of the above applies (the CPU figures of gpu_check.md)."""
    est = estimate(headers, EstimateParams(n_ctx=4096), offload=False, gpu_backend=False)
    assert est.vram is None and set(est.devices) == {"CPU"}
    assert round(est.devices["CPU"].compute / MIB, 1) == 286.0


def test_fit_counts_vram_at_ngl_zero(headers: list[GGUFHeader]) -> None:
    """A CUDA build needs VRAM for CPU-only placement; without enough, it does not fit."""
    params = EstimateParams(n_ctx=4096)
    ok = fit(headers, params, ram_available=64 * GIB, vram_free=2 * GIB,
             gpu_offload_supported=True)  # fmt: skip
    assert ok.verdict in ("partial", "cpu") and ok.vram_headroom is not None
    short = fit(headers, params, ram_available=64 * GIB, vram_free=900 * MIB,
                gpu_offload_supported=True)  # fmt: skip
    assert short.verdict == "no_fit"
    cpu_build = fit(headers, params, ram_available=64 * GIB, vram_free=None,
                    gpu_offload_supported=False)  # fmt: skip
    assert cpu_build.verdict == "cpu" and cpu_build.estimate.vram is None
