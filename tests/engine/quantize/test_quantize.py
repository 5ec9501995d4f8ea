"""The quantizer on real llama.cpp: tiny generated F16 models, and the real starter model."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from quantdesk.engine.errors import ImatrixError, QuantizeCancelled, QuantizeError
from quantdesk.engine.gguf.reader import read_header_from_file
from quantdesk.engine.quantize._imatrix import load_imatrix
from quantdesk.engine.quantize.options import QUANT_TARGETS, QuantizeOptions, target_name
from quantdesk.engine.quantize.quantizer import (
    QuantizeProgress,
    default_output,
    inspect_source,
    part_path,
    predict,
    quantize,
)
from tests.support.tiny_models import write_model_that_aborts_llama, write_tiny_model

TYPES = ("Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "Q4_0", "Q3_K_M", "Q2_K", "IQ4_XS", "BF16")


@pytest.fixture(scope="module")
def f16_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny llama model in F16 whose rows are K-quant sized (256 columns)."""
    folder = tmp_path_factory.mktemp("quant")
    return write_tiny_model(folder / "tiny-F16.gguf", n_embd=256, n_ff=512, quant="F16")


def _generate(path: Path) -> str:
    import llama_cpp

    llm = llama_cpp.Llama(str(path), n_ctx=64, n_threads=1, verbose=False)
    try:
        out = llm.create_completion("Hello world", max_tokens=4, temperature=0.0)
        return out["choices"][0]["text"]
    finally:
        llm.close()


@pytest.mark.parametrize("target", TYPES)
def test_quantize_predicts_size_to_the_byte_and_result_generates(
    f16_model: Path, tmp_path: Path, target: str
) -> None:
    options = QuantizeOptions(target, threads=1)
    plan = predict(f16_model, options)
    seen: list[QuantizeProgress] = []
    result = quantize(f16_model, tmp_path / f"out-{target}.gguf", options, on_progress=seen.append)
    assert result.size_bytes == result.output.stat().st_size
    assert plan.size_bytes == result.size_bytes  # the dry run predicts the file exactly
    header = read_header_from_file(result.output)
    assert header.metadata["general.file_type"] == QUANT_TARGETS[target]
    assert {t.name: t.type_name for t in header.tensors} == plan.tensor_types
    assert [p.index for p in seen] == list(range(1, len(header.tensors) + 1))
    assert seen[-1].fraction == pytest.approx(1.0)
    assert len(_generate(result.output)) > 0
    assert not part_path(result.output).exists()


def test_k_quant_mix_differs_from_pure(f16_model: Path) -> None:
    mixed = predict(f16_model, QuantizeOptions("Q4_K_M"))
    pure = predict(f16_model, QuantizeOptions("Q4_K_M", pure=True))
    assert "Q6_K" in mixed.type_mix  # attn_v / ffn_down get more bits in _M
    assert set(pure.type_mix) <= {"Q4_K", "F32"}
    assert pure.size_bytes < mixed.size_bytes


def test_output_and_embedding_type_options(f16_model: Path, tmp_path: Path) -> None:
    options = QuantizeOptions(
        "Q4_0", output_tensor_type="q8_0", token_embedding_type="Q4_0", threads=1
    )
    result = quantize(f16_model, tmp_path / "o.gguf", options)
    types = {t.name: t.type_name for t in read_header_from_file(result.output).tensors}
    assert types["output.weight"] == "Q8_0"
    assert types["token_embd.weight"] == "Q4_0"
    kept = quantize(
        f16_model, tmp_path / "k.gguf", QuantizeOptions("Q4_0", leave_output_unquantized=True)
    )
    types = {t.name: t.type_name for t in read_header_from_file(kept.output).tensors}
    assert types["output.weight"] == "F16"


def test_requantize_needs_explicit_permission(f16_model: Path, tmp_path: Path) -> None:
    q8 = quantize(f16_model, tmp_path / "q8.gguf", QuantizeOptions("Q8_0")).output
    assert inspect_source(q8).is_quantized
    with pytest.raises(QuantizeError, match="already quantized"):
        predict(q8, QuantizeOptions("Q4_0"))
    again = quantize(q8, tmp_path / "q4.gguf", QuantizeOptions("Q4_0", allow_requantize=True))
    assert len(_generate(again.output)) > 0


def test_low_bit_types_refuse_without_imatrix(f16_model: Path, tmp_path: Path) -> None:
    plan = predict(f16_model, QuantizeOptions("IQ2_XS"))
    assert plan.requires_imatrix
    out = tmp_path / "iq2.gguf"
    with pytest.raises(ImatrixError, match="needs an importance matrix"):
        quantize(f16_model, out, QuantizeOptions("IQ2_XS"))
    assert not out.exists() and not part_path(out).exists()


def _write_gguf_imatrix(model: Path, path: Path) -> dict[str, np.ndarray]:
    """An imatrix in llama-imatrix's GGUF layout for every 2-D weight of ``model``."""
    import gguf

    rng = np.random.default_rng(3)
    writer = gguf.GGUFWriter(str(path), arch="imatrix")
    writer.add_array("imatrix.datasets", ["sample.txt"])
    writer.add_uint32("imatrix.chunk_count", 7)
    writer.add_uint32("imatrix.chunk_size", 512)
    expected = {}
    for t in read_header_from_file(model).tensors:
        if len(t.shape) < 2 or t.name == "token_embd.weight":
            continue
        sums = rng.uniform(0.5, 4.0, size=t.shape[0]).astype(np.float32)
        count = np.float32(11)
        writer.add_tensor(t.name + ".in_sum2", sums.reshape(1, -1))
        writer.add_tensor(t.name + ".counts", np.array([[count]], dtype=np.float32))
        expected[t.name] = sums / count
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return expected


def _write_legacy_imatrix(values: dict[str, np.ndarray], ncall: int, path: Path) -> None:
    with open(path, "wb") as f:
        f.write(struct.pack("<i", len(values)))
        for name, v in values.items():
            raw = name.encode()
            f.write(struct.pack("<i", len(raw)) + raw + struct.pack("<ii", ncall, v.size))
            f.write((v * ncall).astype("<f4").tobytes())
        f.write(struct.pack("<i", 5) + struct.pack("<i", 4) + b"demo")


def test_imatrix_files_load_like_llama_quantize(f16_model: Path, tmp_path: Path) -> None:
    expected = _write_gguf_imatrix(f16_model, tmp_path / "m.imatrix.gguf")
    loaded = load_imatrix(tmp_path / "m.imatrix.gguf")
    assert loaded.datasets == ["sample.txt"] and loaded.chunk_count == 7
    for name, values in expected.items():
        np.testing.assert_array_equal(loaded.values[name], values)
    _write_legacy_imatrix(expected, 4, tmp_path / "m.dat")
    legacy = load_imatrix(tmp_path / "m.dat")
    assert legacy.datasets == ["demo"] and legacy.chunk_count == 5
    for name, values in expected.items():
        np.testing.assert_allclose(legacy.values[name], values, rtol=1e-6)


def test_imatrix_lets_iq2_run_and_is_recorded(f16_model: Path, tmp_path: Path) -> None:
    imatrix = tmp_path / "m.imatrix.gguf"
    _write_gguf_imatrix(f16_model, imatrix)
    options = QuantizeOptions("IQ2_XS", imatrix=imatrix, threads=1)
    plan = predict(f16_model, options)
    assert not plan.requires_imatrix
    result = quantize(f16_model, tmp_path / "iq2.gguf", options)
    assert result.size_bytes == plan.size_bytes
    meta = read_header_from_file(result.output).metadata
    assert meta["quantize.imatrix.file"] == str(imatrix)
    assert meta["quantize.imatrix.dataset"] == "sample.txt"
    assert meta["quantize.imatrix.chunks_count"] == 7
    assert len(_generate(result.output)) > 0


def test_bad_imatrix_files_are_explained(f16_model: Path, tmp_path: Path) -> None:
    junk = tmp_path / "junk.dat"
    junk.write_bytes(b"\x02\x00")
    with pytest.raises(ImatrixError, match="not an importance matrix"):
        predict(f16_model, QuantizeOptions("IQ2_XS", imatrix=junk))
    with pytest.raises(ImatrixError, match="not an importance matrix"):
        predict(f16_model, QuantizeOptions("IQ2_XS", imatrix=f16_model))
    other = write_tiny_model(tmp_path / "wide.gguf", n_embd=512, n_ff=512, quant="F16")
    wrong = tmp_path / "wrong.imatrix.gguf"
    _write_gguf_imatrix(other, wrong)
    with pytest.raises(ImatrixError, match="does not match this model"):
        quantize(f16_model, tmp_path / "x.gguf", QuantizeOptions("IQ2_XS", imatrix=wrong))


def test_cancel_midway_leaves_no_file(tmp_path: Path) -> None:
    source = write_tiny_model(
        tmp_path / "big-F16.gguf", n_embd=512, n_ff=1536, n_layer=6, quant="F16"
    )
    out = tmp_path / "big-IQ4_XS.gguf"
    cancel = threading.Event()
    part_seen: list[bool] = []

    def on_progress(p: QuantizeProgress) -> None:
        part_seen.append(part_path(out).exists())
        cancel.set()

    with pytest.raises(QuantizeCancelled):
        quantize(source, out, QuantizeOptions("IQ4_XS", threads=1), on_progress=on_progress,
                 cancel=cancel)  # fmt: skip
    assert part_seen and part_seen[0]  # it really was writing when cancelled
    assert not out.exists() and not part_path(out).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big-F16.gguf"]


def test_malformed_sources_give_clear_errors(f16_model: Path, tmp_path: Path) -> None:
    truncated = tmp_path / "truncated.gguf"
    truncated.write_bytes(f16_model.read_bytes()[: f16_model.stat().st_size // 2])
    with pytest.raises(QuantizeError, match="past the end of the file"):
        predict(truncated, QuantizeOptions("Q4_0"))
    text = tmp_path / "notes.gguf"
    text.write_text("hello, not a model\n" * 20)
    with pytest.raises(QuantizeError, match="cannot be quantized"):
        predict(text, QuantizeOptions("Q4_0"))
    with pytest.raises(QuantizeError, match="not a quantization type"):
        predict(f16_model, QuantizeOptions("Q9_X"))
    taken = tmp_path / "taken.gguf"
    taken.write_bytes(b"keep me")
    with pytest.raises(QuantizeError, match="already exists"):
        quantize(f16_model, taken, QuantizeOptions("F16"))
    assert taken.read_bytes() == b"keep me"


def test_native_abort_while_quantizing_is_an_error_not_a_crash(tmp_path: Path) -> None:
    bad = write_model_that_aborts_llama(tmp_path / "bad.gguf")
    with pytest.raises(QuantizeError, match="aborted"):
        quantize(bad, tmp_path / "out.gguf", QuantizeOptions("Q8_0"))
    assert not (tmp_path / "out.gguf").exists() and not part_path(tmp_path / "out.gguf").exists()


def test_names_and_defaults() -> None:
    assert target_name("q4_k") == "Q4_K_M" and target_name("fp16") == "F16"
    assert default_output(Path("/m/llama-3-8b-F16.gguf"), "q4_k_m").name == "llama-3-8b-Q4_K_M.gguf"
    assert default_output(Path("/m/model.bf16.gguf"), "Q8_0").name == "model-Q8_0.gguf"
    assert default_output(Path("/m/model.gguf"), "Q8_0").name == "model-Q8_0.gguf"
    assert len(QUANT_TARGETS) >= 34 and "IQ1_S" in QUANT_TARGETS and "TQ2_0" in QUANT_TARGETS


def test_cli_quantize_json_and_dry_run(f16_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "cli-Q5_K_S.gguf"
    cmd = [sys.executable, "-m", "quantdesk", "quantize", str(f16_model), "--type", "Q5_K_S",
           "--out", str(out), "--threads", "1", "--json"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["size_bytes"] == out.stat().st_size == report["predicted_bytes"]
    dry = subprocess.run(
        [sys.executable, "-m", "quantdesk", "quantize", str(f16_model), "--type", "IQ1_S",
         "--dry-run", "--json"], capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout)["requires_imatrix"] is True
    refused = subprocess.run(
        [sys.executable, "-m", "quantdesk", "quantize", str(f16_model), "--type", "IQ1_S"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert refused.returncode == 2 and "importance matrix" in refused.stderr


def test_starter_model_requantized_to_f16_then_quantized(
    starter_model: Path, tmp_path: Path
) -> None:
    """The real-size case: Gemma 3 270M Q4_K_M -> F16 (allow requantize) -> Q8_0 and Q4_K_M."""
    f16 = quantize(
        starter_model, tmp_path / "gemma-F16.gguf", QuantizeOptions("F16", allow_requantize=True)
    )
    assert f16.size_bytes == f16.predicted_bytes
    assert not inspect_source(f16.output).is_quantized
    for target in ("Q8_0", "Q4_K_M"):
        result = quantize(f16.output, tmp_path / f"gemma-{target}.gguf", QuantizeOptions(target))
        assert result.size_bytes == result.predicted_bytes
        assert len(_generate(result.output)) > 0


def test_cli_computes_imatrix_from_text_then_quantizes(tmp_path: Path) -> None:
    source = write_tiny_model(tmp_path / "m-F16.gguf", n_embd=256, n_ff=512, quant="F16")
    text = tmp_path / "notes.txt"
    text.write_text("The quick brown fox jumps over the lazy dog. " * 400)
    proc = subprocess.run(
        [sys.executable, "-m", "quantdesk", "quantize", str(source), "--type", "IQ2_XS",
         "--imatrix-from", str(text), "--threads", "1", "--json"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    meta = read_header_from_file(Path(report["output"])).metadata
    assert meta["quantize.imatrix.file"] == str(tmp_path / "m-F16.imatrix.gguf")
    assert meta["quantize.imatrix.dataset"] == "notes.txt"
    missing = subprocess.run(
        [sys.executable, "-m", "quantdesk", "quantize", str(source), "--type", "IQ2_XS",
         "--imatrix-from", str(tmp_path / "nope.txt")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert missing.returncode == 2 and "does not exist" in missing.stderr
