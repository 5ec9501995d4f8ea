"""The memory estimator against llama.cpp itself (dry-run loads and real loads)."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from quantdesk.engine.errors import EstimateError, SimulationError
from quantdesk.engine.estimate.fit import budgets, fit
from quantdesk.engine.estimate.format import format_estimate
from quantdesk.engine.estimate.llama_sim import estimate_via_llama, simulate_load, simulate_loads
from quantdesk.engine.estimate.memory import EstimateParams, MemoryEstimate, estimate
from quantdesk.engine.gguf.reader import read_header_from_file
from quantdesk.engine.llama.log_parse import parse_llama_log
from quantdesk.engine.params import AUTO_GPU_LAYERS, LoadSettings
from tests.support.tiny_models import write_model_that_aborts_llama, write_tiny_model

MIB = 1 << 20
GIB = 1 << 30
CONTEXTS = (512, 2048, 4096)
# (kv type, flash attention): f16 both ways, and a quantized cache (needs flash attention)
KV_CASES = (("f16", False), ("f16", True), ("q8_0", True))


def _mib(n: int) -> float:
    """Bytes as llama.cpp prints them: MiB rounded to two decimals."""
    return round(n / MIB, 2)


def _grid(**extra) -> list[EstimateParams]:
    return [
        EstimateParams(n_ctx=n, kv_type=kv, flash_attn=fa, n_threads=1, **extra)
        for n in CONTEXTS
        for kv, fa in KV_CASES
    ]


def _assert_matches_llama(path: Path, grid: list[EstimateParams]) -> None:
    headers = [read_header_from_file(path)]
    for sim in simulate_loads(path, grid):
        est = estimate(headers, sim.params, offload=False)
        cpu = est.devices["CPU"]
        label = f"{path.name} {sim.params}"
        assert est.n_ctx == sim.n_ctx, label
        # one line per cache (two for sliding-window models), each rounded to 0.01 MiB
        assert abs(_mib(cpu.kv_cache) - sim.kv_mib) <= 0.011, label
        assert _mib(cpu.compute) == sim.buffers.compute["CPU"], label
        assert _mib(cpu.output) == sim.output_mib, label


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("estimate-models")
    return {
        # head size 32: quantized KV without the Hadamard rotation
        "gqa": write_tiny_model(folder / "gqa.gguf", n_embd=128, n_head=4, n_head_kv=2,
                                quant="Q8_0", n_ctx_train=8192),
        # head size 64: a quantized K cache gets rotated (extra graph inputs and matmuls)
        "mqa": write_tiny_model(folder / "mqa.gguf", n_embd=256, n_head=4, n_head_kv=1,
                                n_layer=3, quant="F16", n_ctx_train=8192),
    }  # fmt: skip


@pytest.mark.parametrize("name", ["gqa", "mqa"])
def test_kv_compute_output_equal_llama_dry_run(tiny_models: dict[str, Path], name: str) -> None:
    _assert_matches_llama(tiny_models[name], _grid())


def test_odd_context_batch_and_sequences_equal_llama(tiny_models: dict[str, Path]) -> None:
    grid = [
        EstimateParams(n_ctx=1000, n_threads=1),  # padded to 1024 cells
        EstimateParams(n_ctx=4096, n_ubatch=100, n_threads=1),
        EstimateParams(n_ctx=4096, n_batch=256, n_threads=1),
        EstimateParams(n_ctx=300, n_threads=1),  # batch clamped to the context
        EstimateParams(n_ctx=4096, n_seq=3, flash_attn=True, n_threads=1),  # 3 streams
    ]
    _assert_matches_llama(tiny_models["gqa"], grid)


def test_weights_and_buffers_equal_a_real_load(tiny_models: dict[str, Path]) -> None:
    """A real (allocating, memory-mapped) load logs the same buffers the estimate predicts."""
    path = tiny_models["gqa"]
    lines = _real_load_log(path, n_ctx=2048)
    logged = parse_llama_log(lines)
    est = estimate([read_header_from_file(path)], EstimateParams(n_ctx=2048), offload=False)
    cpu = est.devices["CPU"]
    assert logged.model == _model_buffers(est)
    assert logged.kv_total == _mib(cpu.kv_cache)
    assert logged.compute == {"CPU": _mib(cpu.compute)}
    assert logged.output == {"CPU": _mib(cpu.output)}


def _model_buffers(est: MemoryEstimate) -> dict[str, float]:
    """The model buffers llama.cpp logs for a CPU load with mmap (repack only if used)."""
    cpu = est.devices["CPU"]
    expected = {"CPU_Mapped": _mib(cpu.weights)}
    if cpu.repack:
        expected["CPU_REPACK"] = _mib(cpu.repack)
    return expected


def _real_load_log(path: Path, n_ctx: int, **settings: object) -> list[str]:
    """llama.cpp's log of a normal load with QuantDesk's defaults, in a child process."""
    code = (
        "import json, sys; from quantdesk.engine.run.session import InferenceSession;"
        "from quantdesk.engine.params import LoadSettings;"
        "s = InferenceSession.load(sys.argv[1], LoadSettings(**json.loads(sys.argv[2])),"
        " verbose=True); s.close()"
    )
    args = json.dumps({"n_ctx": n_ctx, **settings})
    proc = subprocess.run([sys.executable, "-c", code, str(path), args], capture_output=True,
                          text=True, timeout=120, check=True)  # fmt: skip
    return proc.stderr.splitlines()


def test_session_hands_kv_type_flash_attention_and_ubatch_to_llama(
    tiny_models: dict[str, Path],
) -> None:
    path = tiny_models["gqa"]
    settings = {"kv_type": "q8_0", "flash_attn": True, "n_ubatch": 128}
    lines = _real_load_log(path, 2048, **settings)
    logged = parse_llama_log(lines)
    params = EstimateParams.from_load_settings(LoadSettings(n_ctx=2048, **settings))
    cpu = estimate([read_header_from_file(path)], params, offload=False).devices["CPU"]
    assert logged.kv_total == _mib(cpu.kv_cache)  # q8_0: 34 bytes per 32 values
    assert logged.compute == {"CPU": _mib(cpu.compute)}  # 128-token micro-batches
    assert any(
        "flash_attn            = enabled" in ln for ln in _real_load_log(path, 512, **settings)
    )


def test_defaults_follow_the_app() -> None:
    load, params = LoadSettings(), EstimateParams()
    for name in ("n_ctx", "n_batch", "n_ubatch", "kv_type", "flash_attn", "n_threads",
                 "swa_full"):  # fmt: skip
        assert getattr(params, name) == getattr(load, name), name
    # the app's "auto" GPU layers is resolved before an estimate; unresolved it means none
    assert load.n_gpu_layers == AUTO_GPU_LAYERS
    assert EstimateParams.from_load_settings(load).n_gpu_layers == params.n_gpu_layers == 0


def test_quantized_cache_without_flash_attention_is_refused() -> None:
    with pytest.raises(EstimateError, match="flash attention"):
        EstimateParams(kv_type="q4_0", flash_attn=False)
    with pytest.raises(EstimateError):
        EstimateParams(kv_type="q5_1", flash_attn=True)


def test_kv_grows_linearly_and_compute_is_deterministic(tiny_models: dict[str, Path]) -> None:
    headers = [read_header_from_file(tiny_models["gqa"])]
    small = estimate(headers, EstimateParams(n_ctx=1024), offload=False)
    big = estimate(headers, EstimateParams(n_ctx=4096), offload=False)
    # 2 layers x 2 KV heads x 32 dims x 2 (K and V) x 2 bytes per cell
    assert small.devices["CPU"].kv_cache == 1024 * 2 * 2 * 32 * 2 * 2
    assert big.devices["CPU"].kv_cache == 4 * small.devices["CPU"].kv_cache
    assert big.peak_ram > small.peak_ram
    assert estimate(headers, EstimateParams(n_ctx=4096), offload=False) == big


def test_split_model_headers_add_up(tiny_models: dict[str, Path], tmp_path: Path) -> None:
    """A model split into shards estimates like the single file, and llama.cpp agrees."""
    whole = tiny_models["gqa"]
    shards = _split_gguf(whole, tmp_path, tensors_per_shard=8)
    assert len(shards) > 2
    headers = [read_header_from_file(p) for p in shards]
    params = EstimateParams(n_ctx=2048)
    one = estimate([read_header_from_file(whole)], params, offload=False)
    split = estimate(headers, params, offload=False)
    assert split.layer_weights == one.layer_weights
    for attr in ("kv_cache", "compute", "output", "repack"):
        assert getattr(split.devices["CPU"], attr) == getattr(one.devices["CPU"], attr)
    # each shard is mapped separately: the ranges lose the other shards' headers and gaps
    assert split.devices["CPU"].weights <= one.devices["CPU"].weights
    sim = simulate_load(shards[0], params=params)
    assert sim.kv_mib == _mib(split.devices["CPU"].kv_cache)
    assert sim.compute_mib == _mib(split.devices["CPU"].compute)
    assert sim.model_bytes == sum(t.n_bytes for h in headers for t in h.tensors)


def _split_gguf(path: Path, folder: Path, tensors_per_shard: int) -> list[Path]:
    """Re-write a GGUF as llama.cpp-style shards (model-0000i-of-0000n.gguf)."""
    import gguf

    reader = gguf.GGUFReader(str(path))
    out = folder / "split.gguf"
    writer = gguf.GGUFWriter(str(out), reader.fields["general.architecture"].contents(),
                             split_max_tensors=tensors_per_shard)  # fmt: skip
    for field in reader.fields.values():
        if field.name.startswith("GGUF.") or field.name == "general.architecture":
            continue
        vtype = field.types[0]
        sub = field.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, field.contents(), vtype, sub_type=sub)
    for t in reader.tensors:
        writer.add_tensor(t.name, t.data, raw_dtype=t.tensor_type)  # data in numpy order
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return sorted(folder.glob("split-*-of-*.gguf"))


def _rewrite_as(path: Path, out: Path, arch: str) -> Path:
    """The tiny llama model as another llama-like architecture (qwen2: QKV biases, qwen3:
    Q/K norms); the weights do not matter for memory, only names and shapes do."""
    import gguf
    import numpy as np

    reader = gguf.GGUFReader(str(path))
    writer = gguf.GGUFWriter(str(out), arch)
    for field in reader.fields.values():
        if field.name.startswith("GGUF.") or field.name == "general.architecture":
            continue
        vtype = field.types[0]
        sub = field.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name.replace("llama.", f"{arch}."), field.contents(), vtype,
                             sub_type=sub)  # fmt: skip
    meta = {f.name: f.contents() for f in reader.fields.values()}
    n_head, n_kv = meta["llama.attention.head_count"], meta["llama.attention.head_count_kv"]
    head = meta["llama.embedding_length"] // n_head
    extra = {"qwen2": {"attn_q.bias": n_head * head, "attn_k.bias": n_kv * head,
                       "attn_v.bias": n_kv * head},
             "qwen3": {"attn_q_norm.weight": head, "attn_k_norm.weight": head}}[arch]  # fmt: skip
    for t in reader.tensors:
        writer.add_tensor(t.name, t.data, raw_dtype=t.tensor_type)
        if t.name.endswith(".attn_norm.weight"):
            block = t.name.removesuffix("attn_norm.weight")
            for name, n in extra.items():
                writer.add_tensor(block + name, np.ones(n, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out


@pytest.mark.parametrize("arch", ["qwen2", "qwen3"])
def test_other_llama_like_architectures_equal_llama(
    tiny_models: dict[str, Path], tmp_path: Path, arch: str
) -> None:
    model = _rewrite_as(tiny_models["gqa"], tmp_path / f"{arch}.gguf", arch)
    _assert_matches_llama(model, _grid())
    assert not estimate([read_header_from_file(model)], offload=False).approximate


def test_unknown_architecture_is_approximate(tiny_models: dict[str, Path]) -> None:
    header = read_header_from_file(tiny_models["gqa"])
    meta = {k.replace("llama.", "newarch."): v for k, v in header.metadata.items()}
    meta["general.architecture"] = "newarch"
    odd = replace(header, metadata=meta)
    known = estimate([header], EstimateParams(n_ctx=2048), offload=False)
    guess = estimate([odd], EstimateParams(n_ctx=2048), offload=False)
    assert not known.approximate
    assert guess.approximate
    assert any("Approximate" in line for line in guess.explanation)
    assert guess.devices["CPU"].kv_cache == known.devices["CPU"].kv_cache


def test_gpu_placement_follows_llama_rules(tiny_models: dict[str, Path]) -> None:
    """n_gpu_layers = k offloads the output layer and the last k - 1 repeating layers."""
    headers = [read_header_from_file(tiny_models["mqa"])]  # 3 layers
    cpu_only = estimate(headers, EstimateParams(n_gpu_layers=2), offload=False)
    assert set(cpu_only.devices) == {"CPU"} and cpu_only.vram is None
    two = estimate(headers, EstimateParams(n_gpu_layers=2), offload=True)
    assert two.layer_devices == ("CPU", "CPU", "GPU") and two.gpu_layers == 2
    every = estimate(headers, EstimateParams(n_gpu_layers=-1), offload=True)
    assert every.layer_devices == ("GPU",) * 3 and every.gpu_layers == 4
    gpu = every.devices["GPU"]
    assert gpu.kv_cache == sum(every.layer_kv) and every.devices["CPU"].kv_cache == 0
    assert gpu.overhead > 0 and every.vram == gpu.total
    # the token embeddings stay on the CPU; the tied head gets a copy on the GPU
    assert every.devices["CPU"].weights > 0 and gpu.weights > sum(every.layer_weights)


def test_fit_verdicts(tiny_models: dict[str, Path]) -> None:
    headers = [read_header_from_file(tiny_models["mqa"])]
    params = EstimateParams(n_ctx=4096)
    cpu = fit(headers, params, ram_available=16 * GIB, vram_free=None,
              gpu_offload_supported=False)  # fmt: skip
    assert cpu.verdict == "cpu" and cpu.max_gpu_layers == 0 and cpu.max_context == 8192
    gpu = fit(headers, params, ram_available=16 * GIB, vram_free=8 * GIB,
              gpu_offload_supported=True)  # fmt: skip
    assert gpu.verdict == "gpu" and gpu.max_gpu_layers == 4 and gpu.vram_headroom > 0
    full_vram = gpu.estimate.vram
    assert full_vram is not None
    # VRAM for the output layer and one repeating layer, not for all three
    two = estimate(headers, params.with_(n_gpu_layers=2), offload=True).vram
    assert two is not None
    vram_free = _free_for_budget(two + (full_vram - two) // 4)
    partial = fit(headers, params, ram_available=16 * GIB, vram_free=vram_free,
                  gpu_offload_supported=True)  # fmt: skip
    assert partial.verdict == "partial" and partial.max_gpu_layers == 2
    none = fit(headers, params, ram_available=256 * MIB, vram_free=None,
               gpu_offload_supported=False)  # fmt: skip
    assert none.verdict == "no_fit" and none.ram_headroom < 0 and none.max_context == 0
    tight = cpu.estimate.peak_ram  # enough for 4096 tokens, not for 8192
    small = fit(headers, params.with_(n_ctx=8192), ram_available=_ram_for_budget(tight),
                vram_free=None, gpu_offload_supported=False)  # fmt: skip
    assert small.verdict == "no_fit" and 0 < small.max_context < 8192
    assert estimate(headers, params.with_(n_ctx=small.max_context), offload=False).peak_ram \
        <= small.ram_budget  # fmt: skip


def _free_for_budget(budget: int) -> int:
    """VRAM free that leaves ``budget`` after the safety margin (256 MiB below 5 GiB)."""
    assert budgets(0, budget + 256 * MIB)[1] == budget
    return budget + 256 * MIB


def _ram_for_budget(budget: int) -> int:
    """Available RAM that leaves ``budget`` after the safety margin (512 MiB below 5 GiB)."""
    assert budgets(budget + 512 * MIB, None)[0] == budget
    return budget + 512 * MIB


def test_format_and_dict(tiny_models: dict[str, Path]) -> None:
    est = estimate([read_header_from_file(tiny_models["gqa"])], EstimateParams(), offload=False)
    text = format_estimate(est)
    assert "KV cache" in text and "Expected peak RAM" in text and "CPU" in text
    data = json.loads(json.dumps(est.to_dict()))
    assert data["devices"]["CPU"]["total"] == est.devices["CPU"].total
    assert data["peak_ram"] == est.peak_ram


def test_dry_run_of_an_aborting_model_is_an_error(tmp_path: Path) -> None:
    bad = write_model_that_aborts_llama(tmp_path / "abort.gguf")
    with pytest.raises(SimulationError, match="crashed|refused"):
        simulate_load(bad)


def test_dry_run_from_header_bytes(tiny_models: dict[str, Path]) -> None:
    """A remote header (bytes + the file's size) is enough for llama.cpp's dry run."""
    path = tiny_models["gqa"]
    header = read_header_from_file(path)
    head = path.read_bytes()[: header.data_offset]
    params = EstimateParams(n_ctx=2048)
    sim = simulate_load(head, header.file_size, params)
    assert sim.kv_mib == _mib(estimate([header], params).devices["CPU"].kv_cache)
    via = estimate_via_llama(head, params, file_size=header.file_size)
    assert isinstance(via, MemoryEstimate) and _mib(via.devices["CPU"].compute) == sim.compute_mib


@pytest.mark.starter
def test_starter_model_equals_llama(starter_model: Path) -> None:
    """Gemma 3 (sliding-window layers, tied head, 262k vocab): KV and compute to the MiB.

    With swa_full on (llama-cpp-python's default, "using full-size SWA cache") the 15
    sliding-window layers get as many cells as the 3 global ones; off (QuantDesk's default, as
    in llama.cpp's own tools) they get n_swa + n_ubatch.
    """
    _assert_matches_llama(starter_model, _grid() + _grid(swa_full=True))
    headers = [read_header_from_file(starter_model)]
    full = estimate(headers, EstimateParams(n_ctx=4096, swa_full=True), offload=False)
    window = estimate(headers, EstimateParams(n_ctx=4096), offload=False)
    assert full.devices["CPU"].kv_cache == 18 * 4096 * 2 * 256 * 2  # 72 MiB
    assert window.devices["CPU"].kv_cache == (3 * 4096 + 15 * 1024) * 2 * 256 * 2  # 27 MiB


@pytest.mark.starter
def test_starter_model_real_load(starter_model: Path) -> None:
    lines = _real_load_log(starter_model, n_ctx=2048)
    logged = parse_llama_log(lines)
    est = estimate([read_header_from_file(starter_model)], EstimateParams(n_ctx=2048),
                   offload=False)  # fmt: skip
    cpu = est.devices["CPU"]
    assert logged.model == _model_buffers(est)
    assert logged.kv_total == _mib(cpu.kv_cache)
    assert logged.compute == {"CPU": _mib(cpu.compute)}
    assert logged.output == {"CPU": _mib(cpu.output)}
