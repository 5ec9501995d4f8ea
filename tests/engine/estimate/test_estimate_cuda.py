"""The estimator for CUDA builds against the figures measured on an H200 (docs/gpu_check.md).

No GPU is needed: the model is a header-only GGUF (sparse file) shaped like the one measured
(bench/vram_vs_reality.py's SHAPE), and the expected values are the ones llama.cpp logged and
NVML / /proc reported in that single run (H200, CUDA 13.0, driver 580, llama-cpp-python 0.3.36,
2026-11-29). Other GPUs and builds differ; the constants are the highest values seen there.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from quantdesk.engine.estimate.fit import fit
from quantdesk.engine.estimate.memory import EstimateParams, estimate
from quantdesk.engine.gguf.reader import GGUFHeader, read_header_from_file
from tests.support.tiny_models import write_llama_gguf

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
MEASURED_WITH = {"flash_attn": False}  # the app's load defaults at the time of the measurement


def _write_header(path: Path) -> Path:
    """The measured model's GGUF header, tensor data left as a hole (the estimator reads none)."""
    return write_llama_gguf(path, SHAPE, header_only=True)


@pytest.fixture(scope="module")
def headers(tmp_path_factory: pytest.TempPathFactory) -> list[GGUFHeader]:
    return [read_header_from_file(_write_header(tmp_path_factory.mktemp("cuda") / "m.gguf"))]


def _est(headers: list[GGUFHeader], ngl: int, n_ctx: int, **kw):  # noqa: ANN202
    p = EstimateParams(n_ctx=n_ctx, n_gpu_layers=ngl, **MEASURED_WITH)
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
    params = EstimateParams(n_ctx=4096, **MEASURED_WITH)
    est = estimate(headers, params, offload=False, gpu_backend=False)
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
