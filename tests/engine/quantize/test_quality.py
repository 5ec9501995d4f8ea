"""engine.quality on real llama.cpp with tiny generated models (no mocks)."""

from __future__ import annotations

import math
from pathlib import Path

import llama_cpp
import numpy as np
import pytest

from quantdesk.engine.errors import ModelLoadError, QuantDeskError
from quantdesk.engine.quantize import quality
from quantdesk.engine.quantize.quality import (
    IncomparableModels,
    QualityReport,
    SampleTextMissing,
    TextTooShort,
    measure_quality,
    sample_text,
)
from tests.support.tiny_models import write_tiny_model

N_CTX = 64
SCORED_PER_CHUNK = N_CTX - 1 - N_CTX // 2  # as llama-perplexity: second half, minus the last


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("quality")
    return {
        "f32": write_tiny_model(d / "f32.gguf"),
        "f16": write_tiny_model(d / "f16.gguf", quant="F16"),
        "q8": write_tiny_model(d / "q8.gguf", quant="Q8_0"),
        "other_seed": write_tiny_model(d / "seed1.gguf", seed=1),
        "bigger_vocab": write_tiny_model(d / "vocab330.gguf", n_vocab=330),
        "fewer_merges": write_tiny_model(
            d / "special.gguf", extra_special_tokens=("<|a|>", "<|b|>", "<|c|>", "<|d|>")
        ),
    }


def _measure(source: Path, result: Path, **kwargs) -> QualityReport:
    kwargs.setdefault("n_ctx", N_CTX)
    kwargs.setdefault("max_chunks", 3)
    kwargs.setdefault("threads", 1)  # 2 shared cores: 1 is steadier
    return measure_quality(source, result, **kwargs)


def test_model_against_itself_is_identical(models):
    calls: list[tuple[int, int]] = []
    report = _measure(models["f32"], models["f32"], progress=lambda d, t: calls.append((d, t)))
    assert report.tokens_scored == 3 * SCORED_PER_CHUNK
    assert report.n_ctx == N_CTX
    assert abs(report.kld_mean) < 1e-6
    assert abs(report.kld_p99) < 1e-6
    assert report.top1_agreement == 1.0
    assert report.ppl_source == report.ppl_result
    assert math.isfinite(report.ppl_source) and report.ppl_source > 1.0
    assert report.seconds > 0
    assert calls == [(0, 3), (1, 3), (2, 3), (3, 3)]


def test_perplexity_matches_a_direct_computation(models):
    """Chunks start with BOS and only their second half counts, as in llama-perplexity."""
    path = models["f32"]
    text = sample_text()
    report = _measure(path, path, text=text, max_chunks=2)
    llm = llama_cpp.Llama(
        str(path), n_ctx=N_CTX, n_batch=N_CTX, logits_all=True, verbose=False, n_threads=1
    )
    try:
        tokens = llm.tokenize(text.encode(), add_bos=True)
        nll = []
        for chunk in range(2):
            part = tokens[chunk * N_CTX : (chunk + 1) * N_CTX]
            part[0] = llm.token_bos()
            llm.reset()
            llm.eval(part)
            for pos in range(N_CTX // 2, N_CTX - 1):
                logits = np.asarray(llm.scores[pos], dtype=np.float64)
                logp = logits - logits.max() - np.log(np.exp(logits - logits.max()).sum())
                nll.append(-logp[part[pos + 1]])
    finally:
        llm.close()
    assert len(nll) == report.tokens_scored
    assert report.ppl_source == pytest.approx(math.exp(np.mean(nll)), rel=1e-9)


@pytest.mark.parametrize("other", ["f16", "q8"])
def test_other_weight_type_differs_a_little(models, other):
    report = _measure(models["f32"], models[other])
    assert report.kld_mean > 0
    assert report.kld_p99 >= report.kld_mean
    assert report.ppl_result != report.ppl_source
    assert abs(report.ppl_result / report.ppl_source - 1) < 0.05  # close, not the same
    assert report.top1_agreement > 0.8


def test_coarser_type_drifts_further(models):
    f16 = _measure(models["f32"], models["f16"])
    q8 = _measure(models["f32"], models["q8"])
    assert q8.kld_mean > f16.kld_mean


def test_different_weights_differ_a_lot(models):
    report = _measure(models["f32"], models["other_seed"])
    assert report.kld_mean > 0.1
    assert report.top1_agreement < 0.9
    assert report.ppl_result != report.ppl_source


def test_text_too_short(models):
    with pytest.raises(TextTooShort, match="too short") as info:
        _measure(models["f32"], models["f32"], text="Hello world, a short text.")
    assert f"at least {N_CTX} are needed" in str(info.value)
    assert isinstance(info.value, QuantDeskError)


@pytest.mark.parametrize("other", ["bigger_vocab", "fewer_merges"])
def test_different_vocabularies_are_refused(models, other):
    with pytest.raises(IncomparableModels, match="cannot be compared"):
        _measure(models["f32"], models[other])


def test_unloadable_file_is_a_model_load_error(models, tmp_path):
    bad = tmp_path / "not_a_model.gguf"
    bad.write_bytes(b"this is not a gguf file")
    with pytest.raises(ModelLoadError, match="not_a_model.gguf"):
        _measure(models["f32"], bad)
    with pytest.raises(ModelLoadError, match="does not exist"):
        _measure(tmp_path / "missing.gguf", models["f32"])


def test_sample_text_is_bundled():
    text = sample_text()  # read as strict UTF-8
    assert 2000 < len(text.split()) < 4000
    assert "\ufffd" not in text


def test_missing_sample_text_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setattr(quality, "resource_dirs", lambda: [tmp_path])
    with pytest.raises(SampleTextMissing, match="reinstall"):
        sample_text()


def test_summary_is_one_plain_line():
    report = QualityReport(
        tokens_scored=510,
        n_ctx=512,
        ppl_source=12.31,
        ppl_result=12.58,
        kld_mean=0.0213,
        kld_p99=0.2,
        top1_agreement=0.9514,
        seconds=3.0,
    )
    assert report.summary() == (
        "Perplexity 12.31 -> 12.58 (+2.2 %), KL divergence 0.021, same top token 95.1 %"
    )
    tiny = QualityReport(510, 512, 10.0, 10.0, 2e-6, 1e-5, 1.0, 1.0)
    assert "KL divergence below 0.001" in tiny.summary()
    same = QualityReport(510, 512, 10.0, 10.0, 0.0, 0.0, 1.0, 1.0)
    assert same.summary() == (
        "Perplexity 10.00 -> 10.00 (+0.0 %), KL divergence 0.000, same top token 100.0 %"
    )
