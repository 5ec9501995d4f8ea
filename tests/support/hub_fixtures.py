"""Repositories for the fake hub (the fixtures that serve them: tests/support/conftest_hub.py).

The GGUF files are real GGUF files: the small ones are loadable models from
:func:`tests.support.tiny_models.write_tiny_model`; the others carry the header of a llama-style
model quantized like llama.cpp does (Q4_K_M keeps ``attn_v`` and some ``ffn_down`` in Q6_K,
``output`` in Q6_K...) over a sparse, all-zero data section of exactly the declared size -
estimates only read headers. Split models are laid out as llama.cpp's gguf-split writes them:
all metadata in the first part, ``split.no`` / ``split.count`` / ``split.tensors.count`` in every
part.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from tests.support.fake_hub import META_FILE
from tests.support.gguf_fixtures import QT, VT, build_gguf, nbytes
from tests.support.tiny_models import write_tiny_model

MINI = "qd-test/TinyLlama-Mini-GGUF"
TINY = "qd-test/tiny-real-GGUF"
BIG_HEADER = "qd-test/big-vocab-GGUF"
GATED = "qd-test/gated-tiny-GGUF"
README_ONLY = "qd-test/readme-only"
CHAT = "other-org/Tiny-Llama-Chat-GGUF"
SAFETENSORS = "qd-test/TinyLlama-Mini"
STARTER = "qd-test/gemma-3-270m-GGUF"

# Mini repo files: path -> (quant, number of parts).
MINI_FILES = {
    "TinyLlama-Mini-F16": ("F16", 3),
    "TinyLlama-Mini-Q8_0.gguf": ("Q8_0", 1),
    "TinyLlama-Mini.Q6_K.gguf": ("Q6_K", 1),
    "Q5_K_M/TinyLlama-Mini-Q5_K_M": ("Q5_K_M", 2),
    "TinyLlama-Mini-Q4_K_M.gguf": ("Q4_K_M", 1),
    "TinyLlama-Mini-UD-Q4_K_XL.gguf": ("UD-Q4_K_XL", 1),
    "tinyllama-mini-iq4_xs.gguf": ("IQ4_XS", 1),
    "TinyLlama-Mini-Q2_K.gguf": ("Q2_K", 1),
}
MMPROJ = "mmproj-TinyLlama-Mini-F16.gguf"


@dataclass(frozen=True)
class Dims:
    """Shape of a llama-style model (the tensor sizes follow from it)."""

    n_vocab: int = 4096
    n_embd: int = 512
    n_ff: int = 1536
    n_layer: int = 8
    n_head: int = 8
    n_head_kv: int = 2
    n_ctx: int = 8192


# quant -> (llama file type, main tensor type, overrides for attn_v / ffn_down / output / embd)
_MIXES: dict[str, tuple[int, str, dict[str, str]]] = {
    "F16": (1, "F16", {"output": "F16"}),
    "BF16": (32, "BF16", {"output": "BF16"}),
    "Q8_0": (7, "Q8_0", {"output": "Q8_0"}),
    "Q6_K": (18, "Q6_K", {}),
    "Q5_K_M": (17, "Q5_K", {"attn_v": "Q6_K", "ffn_down": "Q6_K"}),
    "Q4_K_M": (15, "Q4_K", {"attn_v": "Q6_K", "ffn_down": "Q6_K"}),
    "UD-Q4_K_XL": (15, "Q4_K", {"attn_v": "Q8_0", "ffn_down": "Q6_K", "embd": "Q6_K"}),
    "IQ4_XS": (30, "IQ4_XS", {"attn_v": "Q4_K"}),
    "Q4_0": (2, "Q4_0", {}),
    "Q2_K": (10, "Q2_K", {"attn_v": "Q3_K", "ffn_down": "Q3_K"}),
}


def _more_bits(layer: int, n_layer: int) -> bool:
    """llama.cpp's use_more_bits(): the layers whose ffn_down gets the bigger type."""
    return layer < n_layer // 8 or layer >= 7 * n_layer // 8 or (layer - n_layer // 8) % 3 == 2


def llama_tensors(dims: Dims, quant: str) -> list[tuple[str, list[int], str]]:
    """(name, ggml dims, type name) of every tensor, in llama.cpp's order."""
    _, main, over = _MIXES[quant]
    kv_dim = dims.n_embd // dims.n_head * dims.n_head_kv
    e, f = dims.n_embd, dims.n_ff
    out = [("token_embd.weight", [e, dims.n_vocab], over.get("embd", main))]
    for i in range(dims.n_layer):
        down = over.get("ffn_down", main) if _more_bits(i, dims.n_layer) else main
        out += [
            (f"blk.{i}.attn_norm.weight", [e], "F32"),
            (f"blk.{i}.attn_q.weight", [e, e], main),
            (f"blk.{i}.attn_k.weight", [e, kv_dim], main),
            (f"blk.{i}.attn_v.weight", [e, kv_dim], over.get("attn_v", main)),
            (f"blk.{i}.attn_output.weight", [e, e], main),
            (f"blk.{i}.ffn_norm.weight", [e], "F32"),
            (f"blk.{i}.ffn_gate.weight", [e, f], main),
            (f"blk.{i}.ffn_up.weight", [e, f], main),
            (f"blk.{i}.ffn_down.weight", [f, e], down),
        ]
    out += [
        ("output_norm.weight", [e], "F32"),
        ("output.weight", [e, dims.n_vocab], over.get("output", "Q6_K")),
    ]
    return out


def llama_metadata(dims: Dims, quant: str, name: str) -> list[tuple[str, int, object]]:
    """The metadata a llama.cpp conversion writes (SentencePiece-style vocabulary)."""
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    tokens += [f"\u2581w{i}" for i in range(dims.n_vocab - len(tokens))]
    types = [2, 3, 3] + [6] * 256 + [1] * (dims.n_vocab - 259)
    a = "llama"
    return [
        ("general.architecture", VT.STRING, a),
        ("general.name", VT.STRING, name),
        ("general.file_type", VT.UINT32, _MIXES[quant][0]),
        ("general.quantization_version", VT.UINT32, 2),
        (f"{a}.vocab_size", VT.UINT32, dims.n_vocab),
        (f"{a}.context_length", VT.UINT32, dims.n_ctx),
        (f"{a}.embedding_length", VT.UINT32, dims.n_embd),
        (f"{a}.block_count", VT.UINT32, dims.n_layer),
        (f"{a}.feed_forward_length", VT.UINT32, dims.n_ff),
        (f"{a}.attention.head_count", VT.UINT32, dims.n_head),
        (f"{a}.attention.head_count_kv", VT.UINT32, dims.n_head_kv),
        (f"{a}.rope.dimension_count", VT.UINT32, dims.n_embd // dims.n_head),
        (f"{a}.rope.freq_base", VT.FLOAT32, 10000.0),
        (f"{a}.attention.layer_norm_rms_epsilon", VT.FLOAT32, 1e-5),
        ("tokenizer.ggml.model", VT.STRING, "llama"),
        ("tokenizer.ggml.tokens", VT.ARRAY, (VT.STRING, tokens)),
        ("tokenizer.ggml.scores", VT.ARRAY, (VT.FLOAT32, [0.0] * dims.n_vocab)),
        ("tokenizer.ggml.token_type", VT.ARRAY, (VT.INT32, types)),
        ("tokenizer.ggml.bos_token_id", VT.UINT32, 1),
        ("tokenizer.ggml.eos_token_id", VT.UINT32, 2),
        (
            "tokenizer.chat_template",
            VT.STRING,
            "{% for m in messages %}{{ m.content }}{% endfor %}",
        ),
    ]


def write_sparse_gguf(path: Path, kvs: list, tensors: list[tuple[str, list[int], str]]) -> Path:
    """A GGUF whose data section is zeros (a sparse file), exactly as large as declared."""
    table, offset = [], 0
    for name, dims, type_name in tensors:
        table.append((name, dims, int(QT[type_name]), offset))
        offset += -(-nbytes(QT[type_name], dims) // 32) * 32
    head = build_gguf(kvs, table, data_size=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.write(head)
        f.truncate(len(head) + offset)
    return path


def write_quant_model(
    path: Path, quant: str, dims: Dims = Dims(), name: str = "TinyLlama Mini"
) -> Path:
    """One GGUF file with the header of ``dims`` quantized as ``quant``."""
    return write_sparse_gguf(path, llama_metadata(dims, quant, name), llama_tensors(dims, quant))


def write_split_model(
    stem: Path, quant: str, parts: int, dims: Dims = Dims(), name: str = "TinyLlama Mini"
) -> list[Path]:
    """``stem-0000i-of-0000n.gguf`` files as gguf-split writes them; returns them in order."""
    tensors = llama_tensors(dims, quant)
    per_part = math.ceil(len(tensors) / parts)
    paths = []
    for i in range(parts):
        split_kvs = [
            ("split.no", VT.UINT16, i),
            ("split.count", VT.UINT16, parts),
            ("split.tensors.count", VT.INT32, len(tensors)),
        ]
        kvs = (llama_metadata(dims, quant, name) if i == 0 else []) + split_kvs
        path = stem.parent / f"{stem.name}-{i + 1:05d}-of-{parts:05d}.gguf"
        paths.append(write_sparse_gguf(path, kvs, tensors[i * per_part : (i + 1) * per_part]))
    return paths


def write_projector(path: Path) -> Path:
    """A small CLIP vision projector GGUF (an ``mmproj`` file)."""
    kvs = [("general.architecture", VT.STRING, "clip"), ("clip.has_vision_encoder", VT.BOOL, True)]
    tensors = [
        ("v.patch_embd.weight", [14, 14, 3, 1024], "F16"),
        ("mm.0.weight", [1024, 2048], "F16"),
    ]
    return write_sparse_gguf(path, kvs, tensors)


def _repo(root: Path, repo_id: str, **meta: object) -> Path:
    folder = root / repo_id
    folder.mkdir(parents=True, exist_ok=True)
    (folder / META_FILE).write_text(json.dumps(meta))
    (folder / "README.md").write_text(f"# {repo_id}\n\nA repository of QuantDesk's fake hub.\n")
    return folder


def build_demo_repos(root: Path) -> Path:
    """Write the demo repositories under ``root/owner/name/`` (metadata in .fakehub.json)."""
    mini = _repo(
        root,
        MINI,
        downloads=5000,
        likes=10,
        last_modified="2024-03-01T10:00:00.000Z",
        tags=["llama", "text-generation"],
    )
    for path, (quant, parts) in MINI_FILES.items():
        if parts > 1:
            write_split_model(mini / path, quant, parts)
        else:
            write_quant_model(mini / path, quant)
    write_projector(mini / MMPROJ)

    tiny = _repo(root, TINY, downloads=100, likes=50, last_modified="2024-06-01T08:00:00.000Z")
    for quant in ("F32", "F16", "Q8_0"):
        write_tiny_model(tiny / f"tiny-real-{quant}.gguf", quant=quant, name="tiny real")

    big = _repo(root, BIG_HEADER, downloads=50, likes=1, last_modified="2023-11-11T11:11:11.000Z")
    write_quant_model(
        big / "big-vocab-Q4_K_M.gguf",
        "Q4_K_M",
        Dims(n_vocab=60_000, n_embd=256, n_ff=768, n_layer=2, n_head=4),
        name="Big Vocab",
    )

    gated = _repo(
        root, GATED, downloads=10, likes=2, gated=True, last_modified="2024-02-02T02:02:02.000Z"
    )
    write_tiny_model(gated / "gated-tiny-F16.gguf", quant="F16", name="gated tiny")

    chat = _repo(root, CHAT, downloads=800, likes=5, last_modified="2025-01-15T12:00:00.000Z")
    write_quant_model(chat / "Tiny-Llama-Chat-Q4_K_M.gguf", "Q4_K_M", name="Tiny Llama Chat")

    _repo(root, README_ONLY, last_modified="2022-05-05T05:05:05.000Z")
    plain = _repo(
        root,
        SAFETENSORS,
        downloads=9999,
        likes=99,
        tags=["safetensors", "llama"],
        last_modified="2024-01-01T00:00:00.000Z",
    )
    (plain / "config.json").write_text(json.dumps({"model_type": "llama"}))
    return root
