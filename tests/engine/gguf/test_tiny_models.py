"""The tiny GGUF models written by tests/support/tiny_models.py work with REAL llama.cpp.

Every model is written at test time (no network). The bad models are only ever loaded
in child processes: one of them aborts the process that loads it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("gguf")
import llama_cpp
from gguf import GGUFReader

from tests.support.tiny_models import (
    write_model_that_aborts_llama,
    write_model_with_runaway_utf8,
    write_tiny_model,
    write_tiny_model_with_bad_metadata,
)

CHILD_TIMEOUT_S = 60

# Loads the model given as argv[1] in a fresh interpreter. Exit 0: loaded; exit 3: the
# polite failure (ValueError); anything else (e.g. -SIGABRT): llama.cpp killed us.
_LOAD_IN_CHILD = textwrap.dedent(
    """
    import sys
    import llama_cpp
    try:
        llama_cpp.Llama(model_path=sys.argv[1], n_ctx=64, verbose=False)
    except ValueError as exc:
        print("ValueError:", exc)
        sys.exit(3)
    print("loaded")
    """
)


def _gguf_string(path: Path, key: str) -> str | None:
    field = GGUFReader(path).fields.get(key)
    if field is None:
        return None
    return bytes(field.parts[field.data[0]]).decode("utf-8")


def _load_in_child(model: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, GGML_NO_BACKTRACE="1")  # no gdb backtrace on abort (slow)
    return subprocess.run(
        [sys.executable, "-c", _LOAD_IN_CHILD, str(model)],
        check=False,
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT_S,
        env=env,
    )


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    return write_tiny_model(tmp_path_factory.mktemp("tiny") / "tiny.gguf")


@pytest.fixture(scope="module")
def llm(tiny_model):
    model = llama_cpp.Llama(model_path=str(tiny_model), n_ctx=256, verbose=False)
    yield model
    model.close()


def test_default_model_is_small_and_deterministic(tmp_path, tiny_model):
    again = write_tiny_model(tmp_path / "again.gguf")
    assert tiny_model.stat().st_size < 1_000_000
    assert again.read_bytes() == tiny_model.read_bytes()
    other_seed = write_tiny_model(tmp_path / "seed1.gguf", seed=1)
    assert other_seed.read_bytes() != tiny_model.read_bytes()


def test_loads_with_expected_hparams(llm):
    assert llm.n_vocab() == 320
    assert llm.n_embd() == 64
    assert llm.n_ctx() == 256
    assert llm.metadata["general.architecture"] == "llama"
    assert llm.metadata["general.name"] == "tiny-test-llama"


@pytest.mark.parametrize(
    "text",
    ["Hello world", "Hello", "the cat sat, on the mat!\n\tx = 42 # ok?", "héllo wörld ✓ 日本語 🙂"],
)
def test_tokenize_round_trip(llm, text):
    tokens = llm.tokenize(text.encode("utf-8"), add_bos=True)
    assert tokens[0] == llm.token_bos()
    assert llm.token_eos() not in tokens
    assert llm.detokenize(tokens).decode("utf-8") == text
    no_bos = llm.tokenize(text.encode("utf-8"), add_bos=False)
    assert no_bos == tokens[1:]


def test_merges_are_used(llm):
    # "Hello" and " world" are single merged tokens, not bytes.
    assert len(llm.tokenize(b"Hello world", add_bos=False)) == 2


def test_greedy_generation_runs_to_max_tokens(llm):
    out = llm.create_completion("Hello", max_tokens=16, temperature=0)
    assert out["usage"]["completion_tokens"] >= 8
    # printable_output (default) keeps </s> and stray bytes out of the generation:
    assert out["usage"]["completion_tokens"] == 16
    assert out["choices"][0]["finish_reason"] == "length"
    text = out["choices"][0]["text"]
    assert text and all(c == "\n" or 32 <= ord(c) < 127 for c in text)
    again = llm.create_completion("Hello", max_tokens=16, temperature=0)
    assert again["choices"][0]["text"] == text


def test_sampled_generation_stays_printable(llm):
    out = llm.create_completion("Hello", max_tokens=32, temperature=1.5, seed=7)
    assert out["usage"]["completion_tokens"] == 32
    assert all(c == "\n" or 32 <= ord(c) < 127 for c in out["choices"][0]["text"])


def test_logit_bias_on_eos_stops_generation(llm):
    # +100 is not enough: printable_output builds a ~-155 bias against </s> into the weights.
    out = llm.create_completion(
        "Hello", max_tokens=16, temperature=0, logit_bias={llm.token_eos(): 1000.0}
    )
    assert out["choices"][0]["finish_reason"] == "stop"
    assert out["usage"]["completion_tokens"] == 0


def test_streaming_yields_tokens(llm):
    chunks = list(llm.create_completion("Hello", max_tokens=8, temperature=0, stream=True))
    text = "".join(c["choices"][0]["text"] for c in chunks)
    assert text == llm.create_completion("Hello", max_tokens=8, temperature=0)["choices"][0]["text"]
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"


def test_runaway_utf8_model_ignores_max_tokens(tmp_path):
    """Documents a llama-cpp-python 0.3.36 bug (see write_model_with_runaway_utf8)."""
    path = write_model_with_runaway_utf8(tmp_path / "runaway.gguf")
    model = llama_cpp.Llama(model_path=str(path), n_ctx=64, verbose=False)
    try:
        assert model.detokenize(model.tokenize(b"Hello")) == b"Hello"
        with pytest.raises(RuntimeError, match="llama_decode returned 1"):
            model.create_completion("Hello", max_tokens=4, temperature=0)
    finally:
        model.close()


@pytest.mark.parametrize("quant", ["F16", "Q8_0"])
def test_quantized_variants_generate(tmp_path, quant):
    path = write_tiny_model(tmp_path / f"tiny-{quant}.gguf", quant=quant, seed=3)
    model = llama_cpp.Llama(model_path=str(path), n_ctx=128, verbose=False)
    try:
        out = model.create_completion("Hello", max_tokens=8, temperature=0)
        assert out["usage"]["completion_tokens"] == 8
        assert model.metadata["general.file_type"] == {"F16": "1", "Q8_0": "7"}[quant]
    finally:
        model.close()


def test_chat_template_is_stored(tmp_path):
    template = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
        "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    path = write_tiny_model(
        tmp_path / "chat.gguf",
        chat_template=template,
        extra_special_tokens=["<|im_start|>", "<|im_end|>"],
    )
    assert _gguf_string(path, "tokenizer.chat_template") == template

    model = llama_cpp.Llama(model_path=str(path), n_ctx=128, verbose=False)
    try:
        assert model.metadata["tokenizer.chat_template"] == template
        im_end = model.tokenize(b"<|im_end|>", add_bos=False, special=True)
        assert len(im_end) == 1
        out = model.create_chat_completion(
            messages=[{"role": "user", "content": "Hello"}], max_tokens=8, temperature=0
        )
        assert out["usage"]["completion_tokens"] == 8
    finally:
        model.close()


def test_no_chat_template_by_default(tiny_model):
    assert _gguf_string(tiny_model, "tokenizer.chat_template") is None
    assert _gguf_string(tiny_model, "tokenizer.ggml.model") == "gpt2"


@pytest.mark.parametrize("kind", ["wrong_shape", "missing_tensor", "bad_rope_dims"])
def test_bad_metadata_is_rejected_politely(tmp_path, kind):
    path = write_tiny_model_with_bad_metadata(tmp_path / f"bad-{kind}.gguf", kind=kind)
    child = _load_in_child(path)
    assert child.returncode == 3, (child.returncode, child.stdout, child.stderr)
    assert "Failed to load model" in child.stdout


@pytest.mark.parametrize("kind", ["rope_scaling_type", "expert_used_count"])
def test_model_that_aborts_llama_kills_the_loading_process(tmp_path, kind):
    path = write_model_that_aborts_llama(tmp_path / f"abort-{kind}.gguf", kind=kind)
    child = _load_in_child(path)
    assert child.returncode == -signal.SIGABRT, (child.returncode, child.stdout, child.stderr)
    assert "loaded" not in child.stdout
