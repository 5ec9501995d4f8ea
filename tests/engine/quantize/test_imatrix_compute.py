"""Importance matrices computed with real llama.cpp on a tiny generated F16 model."""

from __future__ import annotations

import ctypes
import threading
from pathlib import Path

import numpy as np
import pytest

from quantdesk.engine.child_process import run_child
from quantdesk.engine.errors import ImatrixError, ModelLoadError
from quantdesk.engine.gguf.reader import read_header_from_file
from quantdesk.engine.llama.ggml_ctypes import GgmlTensor, ggml_base
from quantdesk.engine.quantize._imatrix import load_imatrix
from quantdesk.engine.quantize.imatrix_compute import (
    ImatrixCancelled,
    ImatrixSummary,
    ImatrixTextTooShort,
    compute_imatrix,
)
from quantdesk.engine.quantize.options import QuantizeOptions
from quantdesk.engine.quantize.quality import sample_text
from quantdesk.engine.quantize.quantizer import part_path, quantize
from tests.support.tiny_models import write_tiny_model

N_CTX = 256
CHUNKS = 3


@pytest.fixture(scope="module")
def f16_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("imatrix")
    return write_tiny_model(folder / "tiny-F16.gguf", n_embd=256, n_ff=512, quant="F16")


@pytest.fixture(scope="module")
def computed(f16_model: Path) -> tuple[ImatrixSummary, list[tuple[int, int]]]:
    seen: list[tuple[int, int]] = []
    summary = compute_imatrix(
        f16_model,
        sample_text(),
        f16_model.with_name("tiny.imatrix.gguf"),
        n_ctx=N_CTX,
        threads=2,
        max_chunks=CHUNKS,
        progress=lambda done, total: seen.append((done, total)),
        dataset="quality_sample.txt",
    )
    return summary, seen


def _block_weights(model: Path) -> dict[str, tuple[int, ...]]:
    return {
        t.name: t.shape
        for t in read_header_from_file(model).tensors
        if t.name.startswith("blk.") and len(t.shape) == 2
    }


def test_one_entry_per_block_weight_with_its_input_size(f16_model: Path, computed) -> None:
    summary, seen = computed
    assert seen == [(i, CHUNKS) for i in range(CHUNKS + 1)]
    assert (summary.chunks, summary.tokens) == (CHUNKS, CHUNKS * N_CTX)
    weights = _block_weights(f16_model)
    assert summary.entries == len(weights) == 14
    loaded = load_imatrix(summary.output)
    assert loaded.chunk_count == CHUNKS and loaded.datasets == ["quality_sample.txt"]
    assert set(loaded.values) == set(weights)
    for name, shape in weights.items():
        values = loaded.values[name]
        assert values.shape == (shape[0],), name  # ne0: the input columns of the weight
        assert np.all(np.isfinite(values)) and np.all(values > 0), name
    assert not part_path(summary.output).exists()


def test_llama_cpp_reads_the_file_as_llama_imatrix_writes_it(computed, tmp_path) -> None:
    """llama.cpp's own GGUF reader: keys, types, shapes, the count of every entry; and
    llama.cpp's own GGUF writer, called as imatrix.cpp's save_imatrix calls it, gives the
    same bytes."""
    summary, _ = computed
    lib = ggml_base().lib

    class InitParams(ctypes.Structure):
        _fields_ = [("no_alloc", ctypes.c_bool), ("ctx", ctypes.POINTER(ctypes.c_void_p))]

    vp, i64 = ctypes.c_void_p, ctypes.c_int64
    lib.gguf_init_from_file.restype = vp
    lib.gguf_init_from_file.argtypes = [ctypes.c_char_p, InitParams]
    for fn, res, args in [
        ("gguf_free", None, [vp]),
        ("gguf_find_key", i64, [vp, ctypes.c_char_p]),
        ("gguf_get_val_str", ctypes.c_char_p, [vp, i64]),
        ("gguf_get_val_u32", ctypes.c_uint32, [vp, i64]),
        ("gguf_get_arr_n", ctypes.c_size_t, [vp, i64]),
        ("gguf_get_arr_str", ctypes.c_char_p, [vp, i64, ctypes.c_size_t]),
        ("gguf_get_n_kv", i64, [vp]),
        ("gguf_get_n_tensors", i64, [vp]),
        ("gguf_get_tensor_name", ctypes.c_char_p, [vp, i64]),
        ("gguf_get_tensor_type", ctypes.c_int, [vp, i64]),
        ("ggml_get_tensor", vp, [vp, ctypes.c_char_p]),
        ("gguf_init_empty", vp, []),
        ("gguf_set_val_str", None, [vp, ctypes.c_char_p, ctypes.c_char_p]),
        ("gguf_set_arr_str", None, [vp, ctypes.c_char_p, vp, ctypes.c_size_t]),
        ("gguf_set_val_u32", None, [vp, ctypes.c_char_p, ctypes.c_uint32]),
        ("gguf_add_tensor", None, [vp, vp]),
        ("gguf_write_to_file", ctypes.c_bool, [vp, ctypes.c_char_p, ctypes.c_bool]),
    ]:
        getattr(lib, fn).restype = res
        getattr(lib, fn).argtypes = args
    data_ctx = ctypes.c_void_p()
    gguf = lib.gguf_init_from_file(
        str(summary.output).encode(), InitParams(False, ctypes.pointer(data_ctx))
    )
    assert gguf, "llama.cpp's gguf reader refused the file"
    try:
        assert lib.gguf_get_n_kv(gguf) == 4
        assert lib.gguf_get_val_str(gguf, lib.gguf_find_key(gguf, b"general.type")) == b"imatrix"
        key = lib.gguf_find_key(gguf, b"imatrix.datasets")
        assert lib.gguf_get_arr_n(gguf, key) == 1
        assert lib.gguf_get_arr_str(gguf, key, 0) == b"quality_sample.txt"
        assert lib.gguf_get_val_u32(gguf, lib.gguf_find_key(gguf, b"imatrix.chunk_count")) == 3
        assert lib.gguf_get_val_u32(gguf, lib.gguf_find_key(gguf, b"imatrix.chunk_size")) == N_CTX
        names = [lib.gguf_get_tensor_name(gguf, i) for i in range(lib.gguf_get_n_tensors(gguf))]
        bases = sorted({n.rsplit(b".", 1)[0] for n in names})
        assert names == [b for base in bases for b in (base + b".in_sum2", base + b".counts")]
        assert {lib.gguf_get_tensor_type(gguf, i) for i in range(len(names))} == {0}  # F32
        for base in bases:
            sums = GgmlTensor.from_address(lib.ggml_get_tensor(data_ctx, base + b".in_sum2"))
            counts = GgmlTensor.from_address(lib.ggml_get_tensor(data_ctx, base + b".counts"))
            assert sums.ne[1:] == [1, 1, 1] and sums.ne[0] in (256, 512)
            assert list(counts.ne) == [1, 1, 1, 1]
            count = ctypes.c_float.from_address(counts.data).value
            assert count == CHUNKS * N_CTX  # every row of every chunk, as llama-imatrix counts
        # llama.cpp's writer, fed the same tensors in save_imatrix's order
        again = lib.gguf_init_empty()
        lib.gguf_set_val_str(again, b"general.type", b"imatrix")
        datasets = (ctypes.c_char_p * 1)(b"quality_sample.txt")
        lib.gguf_set_arr_str(again, b"imatrix.datasets", ctypes.cast(datasets, vp), 1)
        lib.gguf_set_val_u32(again, b"imatrix.chunk_count", CHUNKS)
        lib.gguf_set_val_u32(again, b"imatrix.chunk_size", N_CTX)
        for name in names:
            lib.gguf_add_tensor(again, lib.ggml_get_tensor(data_ctx, name))
        assert lib.gguf_write_to_file(again, str(tmp_path / "ref.gguf").encode(), False)
        lib.gguf_free(again)
        assert (tmp_path / "ref.gguf").read_bytes() == summary.output.read_bytes()
    finally:
        lib.gguf_free(gguf)
        lib.ggml_free(data_ctx)


def test_values_match_an_independent_numpy_computation(f16_model: Path, computed) -> None:
    """Layer 0's q/k/v read RMSNorm(token embeddings) * attn_norm: rebuild it in numpy."""
    import gguf
    import llama_cpp

    summary, _ = computed
    reader = gguf.GGUFReader(str(f16_model))
    tensors = {t.name: t for t in reader.tensors}
    embd = np.asarray(tensors["token_embd.weight"].data, dtype=np.float32)  # [n_vocab, n_embd]
    norm_w = np.asarray(tensors["blk.0.attn_norm.weight"].data, dtype=np.float32)
    eps_field = reader.fields["llama.attention.layer_norm_rms_epsilon"]
    eps = float(eps_field.parts[eps_field.data[0]][0])

    vocab = llama_cpp.Llama(str(f16_model), vocab_only=True, verbose=False)
    tokens = vocab.tokenize(sample_text().encode(), add_bos=True, special=False)
    bos = vocab.token_bos()
    vocab.close()
    expected = np.zeros(embd.shape[1], dtype=np.float64)
    for c in range(CHUNKS):
        chunk = [bos, *tokens[c * N_CTX + 1 : (c + 1) * N_CTX]]
        x = embd[chunk]
        rms = np.sqrt(np.mean(x * x, axis=1, keepdims=True) + np.float32(eps))
        y = (x / rms * norm_w).astype(np.float64)
        expected += (y * y).sum(axis=0)
    expected /= CHUNKS * N_CTX

    loaded = load_imatrix(summary.output)
    for name in ("blk.0.attn_q.weight", "blk.0.attn_k.weight", "blk.0.attn_v.weight"):
        np.testing.assert_allclose(loaded.values[name], expected, rtol=1e-5)


def test_iq2_xs_quantizes_with_it_and_generates(f16_model: Path, computed, tmp_path) -> None:
    import llama_cpp

    summary, _ = computed
    options = QuantizeOptions("IQ2_XS", imatrix=summary.output, threads=2)
    result = quantize(f16_model, tmp_path / "tiny-IQ2_XS.gguf", options)
    meta = read_header_from_file(result.output).metadata
    assert meta["quantize.imatrix.chunks_count"] == CHUNKS
    assert meta["quantize.imatrix.dataset"] == "quality_sample.txt"
    types = {t.name: t.type_name for t in read_header_from_file(result.output).tensors}
    assert types["blk.0.attn_q.weight"] == "IQ2_XS"
    llm = llama_cpp.Llama(str(result.output), n_ctx=64, n_threads=1, verbose=False)
    try:
        text = llm.create_completion("Hello world", max_tokens=4, temperature=0.0)
        assert len(text["choices"][0]["text"]) > 0
    finally:
        llm.close()


def test_cancel_between_chunks_leaves_no_file(f16_model: Path, tmp_path: Path) -> None:
    cancel = threading.Event()
    out = tmp_path / "c.imatrix.gguf"

    def on_progress(done: int, _total: int) -> None:
        if done == 1:
            cancel.set()

    with pytest.raises(ImatrixCancelled):
        compute_imatrix(
            f16_model, sample_text(), out, n_ctx=64, progress=on_progress, cancel=cancel
        )
    assert list(tmp_path.iterdir()) == []


def test_short_text_and_bad_arguments_are_explained(f16_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "s.imatrix.gguf"
    with pytest.raises(ImatrixTextTooShort, match="too short.*one chunk needs 512"):
        compute_imatrix(f16_model, "Hello world, a short text.", out)
    with pytest.raises(ImatrixError, match="at least 16"):
        compute_imatrix(f16_model, sample_text(), out, n_ctx=8)
    with pytest.raises(ModelLoadError, match="does not exist"):
        compute_imatrix(tmp_path / "missing.gguf", sample_text(), out)
    assert list(tmp_path.iterdir()) == []


def test_child_entry_streams_progress_and_result(f16_model: Path, tmp_path: Path) -> None:
    text_file = tmp_path / "text.txt"
    text_file.write_text(sample_text(), encoding="utf-8")
    job = {
        "model": str(f16_model),
        "text_file": str(text_file),
        "output": str(tmp_path / "child.imatrix.gguf"),
        "n_ctx": 64,
        "threads": 1,
        "max_chunks": 2,
    }
    events: list[dict] = []
    outcome = run_child("quantdesk.engine.quantize.imatrix_compute", [], events.append, job=job)
    assert outcome.returncode == 0, outcome.output_tail
    assert [e["done"] for e in events if e["type"] == "progress"] == [0, 1, 2]
    result = events[-1]
    assert result["ok"] and result["summary"]["chunks"] == 2 and result["summary"]["entries"] == 14
    assert load_imatrix(job["output"]).datasets == ["text.txt"]


def test_copying_activations_through_the_backend_gives_the_same_file(
    f16_model: Path, computed, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The path a GPU buffer takes (ggml_backend_tensor_get), exercised on CPU buffers."""
    import quantdesk.engine.quantize.imatrix_compute as imatrix_compute

    summary, _ = computed
    monkeypatch.setattr(imatrix_compute, "COPY_HOST_ACTIVATIONS", True)
    out = tmp_path / "copied.imatrix.gguf"
    compute_imatrix(
        f16_model,
        sample_text(),
        out,
        n_ctx=N_CTX,
        threads=2,
        max_chunks=CHUNKS,
        dataset="quality_sample.txt",
    )
    assert out.read_bytes() == summary.output.read_bytes()
