"""GPU layers chosen automatically from the memory estimate and the free VRAM."""

from __future__ import annotations

from pathlib import Path

import pytest

from quantdesk.engine.estimate import EstimateParams, estimate
from quantdesk.engine.gguf import read_header_from_file
from quantdesk.engine.load_plan import load_settings_for, resolve_gpu_layers
from quantdesk.engine.params import AUTO_GPU_LAYERS, LoadSettings
from tests.tiny_models import write_tiny_model

GIB = 1 << 30


@pytest.fixture(scope="module")
def headers(tmp_path_factory: pytest.TempPathFactory):
    path = write_tiny_model(tmp_path_factory.mktemp("gl") / "m.gguf", n_embd=256, n_head=4,
                            n_head_kv=1, n_layer=8, quant="F16")  # fmt: skip
    return [read_header_from_file(path)], path


def _resolve(headers, vram: int | None, offload: bool = True, **load) -> int:
    settings = LoadSettings(n_ctx=512, **load)
    out = resolve_gpu_layers(headers, settings, ram_available=8 * GIB, vram_free=vram,
                             gpu_offload=offload)  # fmt: skip
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
