"""GPU layers chosen automatically from the memory estimate and the free VRAM."""

from __future__ import annotations

from pathlib import Path

import pytest

from quantdesk.engine.estimate.load_plan import (
    Budget,
    after_memory_failure,
    is_memory_error,
    load_settings_for,
    resolve_gpu_layers,
    step_down,
)
from quantdesk.engine.estimate.memory import EstimateParams, estimate
from quantdesk.engine.gguf.reader import read_header_from_file
from quantdesk.engine.params import AUTO_GPU_LAYERS, LoadSettings
from tests.support.tiny_models import write_llama_gguf, write_tiny_model

GIB = 1 << 30


@pytest.fixture(scope="module")
def headers(tmp_path_factory: pytest.TempPathFactory):
    path = write_tiny_model(tmp_path_factory.mktemp("gl") / "m.gguf", n_embd=256, n_head=4,
                            n_head_kv=1, n_layer=8, quant="F16")  # fmt: skip
    return [read_header_from_file(path)], path


def _resolve(headers, vram: int | None, offload: bool = True, **load) -> int:
    settings = LoadSettings(n_ctx=512, **load)
    out = resolve_gpu_layers(headers, settings, Budget(8 * GIB, vram, offload))
    return out.n_gpu_layers


def test_everything_on_the_gpu_when_it_fits(headers) -> None:
    assert _resolve(headers[0], 8 * GIB) == 9  # 8 layers + the output layer


def test_as_many_layers_as_fit_in_little_vram(headers) -> None:
    hdrs = headers[0]
    params = EstimateParams(n_ctx=512)
    # free VRAM a little above what 4 layers need (plus the 256 MiB safety margin)
    four = estimate(hdrs, params.with_(n_gpu_layers=4), offload=True).vram
    layers = _resolve(hdrs, four + 256 * (1 << 20) + (1 << 16))
    assert 1 <= layers < 9
    assert estimate(hdrs, params.with_(n_gpu_layers=layers), offload=True).vram <= four + (1 << 16)


def test_none_without_offload_or_vram_and_a_chosen_value_stays(headers) -> None:
    hdrs = headers[0]
    assert _resolve(hdrs, None) == 0  # no GPU memory known
    assert _resolve(hdrs, 8 * GIB, offload=False) == 0  # a CPU-only build
    assert _resolve(hdrs, 8 * GIB, n_gpu_layers=3) == 3
    assert _resolve(hdrs, 8 * GIB, n_gpu_layers=0) == 0


def test_this_machine_resolves_auto(headers) -> None:
    """This build is CPU-only (CI): auto means no layer on a GPU."""
    _, path = headers
    assert LoadSettings().n_gpu_layers == AUTO_GPU_LAYERS
    import llama_cpp

    resolved = load_settings_for(Path(path), LoadSettings())
    expected = None if llama_cpp.llama_supports_gpu_offload() else 0
    if expected is not None:
        assert resolved.n_gpu_layers == expected
    assert resolved.n_gpu_layers != AUTO_GPU_LAYERS


# -- stepping down when a model does not fit ---------------------------------------------------

MIB = 1 << 20


def _budget(ram: int, vram: int | None = None) -> Budget:
    return Budget(ram_available=ram, vram_free=vram, gpu_offload=vram is not None)


def _need(headers, **load) -> int:
    """Peak RAM the estimate gives for these settings on the CPU."""
    params = EstimateParams.from_load_settings(LoadSettings(n_gpu_layers=0, **load))
    return estimate(headers, params, offload=False).peak_ram


def test_a_model_that_fits_is_left_alone(headers) -> None:
    plan = step_down(headers[0], LoadSettings(n_ctx=512), _budget(8 * GIB))
    assert plan.fits and plan.changes == () and plan.settings.n_ctx == 512


def test_the_context_shrinks_until_the_model_fits(headers) -> None:
    hdrs = headers[0]
    big = LoadSettings(n_ctx=8192, n_gpu_layers=0)
    # RAM for 2,048 tokens (plus the 512 MiB safety margin), not for 8,192
    ram = _need(hdrs, n_ctx=2048) + 512 * MIB + MIB
    plan = step_down(hdrs, big, _budget(ram))
    assert plan.fits and 512 <= plan.settings.n_ctx < 8192
    assert plan.changes == (f"context 8,192 → {plan.settings.n_ctx:,} tokens",)


def test_then_the_kv_cache_gets_smaller(tmp_path: Path) -> None:
    """A model whose KV cache dominates (many wide layers, a small vocabulary; header only)."""
    shape = {"n_vocab": 2000, "n_embd": 1024, "n_layer": 32, "n_head": 8, "n_head_kv": 8,
             "n_ff": 2048, "n_ctx_train": 32768}  # fmt: skip
    hdrs = [read_header_from_file(write_llama_gguf(tmp_path / "kv.gguf", shape, header_only=True))]
    q8 = _need(hdrs, n_ctx=512, kv_type="q8_0")
    assert q8 < _need(hdrs, n_ctx=512)  # the smaller cache type is what saves memory here
    plan = step_down(hdrs, LoadSettings(n_ctx=8192, n_gpu_layers=0), _budget(q8 + 512 * MIB + MIB))
    assert plan.fits and plan.settings.n_ctx == 512 and plan.settings.kv_type == "q8_0"
    assert plan.settings.flash_attn
    assert plan.changes == ("context 8,192 → 512 tokens", "KV cache f16 → q8_0")


def test_nothing_fits_says_so(headers) -> None:
    plan = step_down(headers[0], LoadSettings(n_ctx=8192, n_gpu_layers=0), _budget(64 * MIB))
    assert not plan.fits and plan.settings.kv_type == "q4_0" and plan.settings.n_ctx == 512
    assert "GiB of RAM needed" in plan.shortfall


def test_gpu_layers_step_down_first(headers) -> None:
    hdrs = headers[0]
    params = EstimateParams(n_ctx=512)
    four = estimate(hdrs, params.with_(n_gpu_layers=4), offload=True).vram
    plan = step_down(hdrs, LoadSettings(n_ctx=512, n_gpu_layers=-1),
                     _budget(8 * GIB, four + 256 * MIB + (1 << 16)))  # fmt: skip
    assert plan.fits and 1 <= plan.settings.n_gpu_layers < 9
    assert plan.changes == (f"GPU layers all → {plan.settings.n_gpu_layers}",)


def test_after_a_real_memory_failure_the_context_halves_then_the_cache_shrinks() -> None:
    load = LoadSettings(n_ctx=2048)
    steps = []
    while (smaller := after_memory_failure(load)) is not None:
        load, change = smaller
        steps.append(change)
    assert steps == ["context 2,048 → 1,024 tokens", "context 1,024 → 512 tokens",
                     "KV cache f16 → q8_0", "KV cache q8_0 → q4_0"]  # fmt: skip
    assert is_memory_error("ggml_backend_cpu_buffer_type_alloc_buffer: failed to allocate buffer")
    assert not is_memory_error("unknown model architecture: 'frobnicator'")
