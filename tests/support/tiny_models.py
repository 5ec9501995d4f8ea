"""Tiny, randomly initialised GGUF models that real llama.cpp loads in milliseconds.

Written at test time with the ``gguf`` package (no network, nothing downloaded).

* :func:`write_tiny_model` - a valid ``llama`` architecture model with a byte-level
  GPT-2 style BPE tokenizer (all 256 byte tokens through the GPT-2 ``bytes_to_unicode``
  mapping, a few merges, ``<s>``/``</s>``). Any ASCII / UTF-8 text tokenizes and
  detokenizes back to itself, and generation always runs to ``max_tokens``
  with printable ASCII text (see ``printable_output``).
* :func:`write_tiny_model_with_bad_metadata` - a structurally valid GGUF that llama.cpp
  REJECTS politely: ``llama_cpp.Llama(...)`` raises ``ValueError`` and the process lives.
* :func:`write_model_with_runaway_utf8` - a valid model whose greedy output is one
  UTF-8 lead byte forever, which makes llama-cpp-python ignore ``max_tokens``.
* :func:`write_spm_model_without_byte_tokens` - a valid chat model with a SentencePiece
  vocabulary that has no byte tokens: it loads and chats in ASCII, and llama.cpp aborts the
  process (uncaught ``std::out_of_range``) on any character outside its vocabulary ("€").
* :func:`write_model_that_aborts_llama` - a structurally valid GGUF whose bad metadata
  value trips a ``GGML_ASSERT`` inside llama.cpp's hparams loader: the loading process
  is killed by SIGABRT (no Python exception). Only ever load it in a child process.

Behaviour measured with llama-cpp-python 0.3.36 (CPU build) - see the docstrings below.
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

__all__ = [
    "CHATML",
    "ABORT_KINDS",
    "BAD_METADATA_KINDS",
    "MIN_VOCAB",
    "write_model_that_aborts_llama",
    "write_model_with_runaway_utf8",
    "write_spm_model_without_byte_tokens",
    "write_tiny_model",
    "write_tiny_model_with_bad_metadata",
]

ARCH = "llama"
# A ChatML chat template (write_tiny_chat_model pairs it with its special tokens).
CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# llama.cpp token types (gguf.TokenType): NORMAL=1, CONTROL=3, USER_DEFINED=4.
_TOKEN_NORMAL = 1
_TOKEN_CONTROL = 3

# llama_ftype values written as general.file_type.
_FILE_TYPES = {"F32": 0, "F16": 1, "Q8_0": 7}

_SPECIALS = ("<s>", "</s>")

# Merges tried first (so "Hello world" and common English get multi-byte tokens);
# afterwards lowercase letter pairs fill the vocabulary up to n_vocab.
_CURATED_MERGES: tuple[tuple[str, str], ...] = tuple(
    tuple(pair.split("+"))  # type: ignore[misc]
    for pair in [
        "h+e",
        "l+l",
        "o+r",
        "Ġ+t",
        "Ġ+w",
        "Ġ+a",
        "Ġ+s",
        "i+n",
        "e+r",
        "a+n",
        "o+n",
        "r+e",
        "a+t",
        "e+n",
        "H+e",
        "He+ll",
        "Hell+o",
        "Ġw+or",
        "Ġwor+l",
        "Ġworl+d",
        "Ġt+he",
        "i+s",
        "o+u",
        "i+t",
        "e+s",
        "Ġ+i",
        "Ġ+c",
    ]
)

# 2 specials + 256 byte tokens + at least one merge (llama.cpp requires the merges key).
MIN_VOCAB = len(_SPECIALS) + 256 + 1


def _bytes_to_unicode() -> dict[int, str]:
    """The GPT-2 byte -> printable unicode character table (same as tiktoken/HF)."""
    bs = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs, strict=True)}


def _build_vocab(
    n_vocab: int, extra_special_tokens: Sequence[str]
) -> tuple[list[str], list[int], list[str], dict[str, int]]:
    """Return (tokens, token_types, merges, special ids) for exactly ``n_vocab`` tokens.

    Layout: ids 0..255 are the byte tokens, then merged tokens, then the specials
    (``<s>``, ``</s>``, then ``extra_special_tokens``) at the very end.
    """
    specials = list(_SPECIALS) + [t for t in extra_special_tokens if t not in _SPECIALS]
    n_merges = n_vocab - 256 - len(specials)
    if n_merges < 1:
        raise ValueError(
            f"n_vocab={n_vocab} is too small: need at least {256 + len(specials) + 1} "
            f"(256 byte tokens + {len(specials)} special tokens + 1 merge)"
        )

    tokens = list(_bytes_to_unicode().values())
    known = set(tokens)
    merges: list[str] = []

    def candidates():
        yield from _CURATED_MERGES
        letters = "abcdefghijklmnopqrstuvwxyz"
        for a in letters:
            for b in letters:
                yield a, b
        for a in letters:  # "Ġa".."Ġz" style word starts with a second letter
            for b in letters:
                yield "Ġ" + a, b

    for left, right in candidates():
        if len(merges) == n_merges:
            break
        merged = left + right
        if left not in known or right not in known or merged in known:
            continue
        merges.append(f"{left} {right}")
        tokens.append(merged)
        known.add(merged)
    if len(merges) < n_merges:
        raise ValueError(f"n_vocab={n_vocab} is too large for the tiny tokenizer")

    types = [_TOKEN_NORMAL] * len(tokens)
    special_ids = {}
    for text in specials:
        special_ids[text] = len(tokens)
        tokens.append(text)
        types.append(_TOKEN_CONTROL)
    assert len(tokens) == n_vocab
    return tokens, types, merges, special_ids


_BIAS_CHANNEL = 8.0
_UNICODE_TO_BYTE = {c: b for b, c in _bytes_to_unicode().items()}
_PRINTABLE_BYTES = set(range(0x20, 0x7F)) | {0x0A}


def _is_printable_token(text: str, token_type: int) -> bool:
    if token_type != _TOKEN_NORMAL:
        return False
    return all(_UNICODE_TO_BYTE[c] in _PRINTABLE_BYTES for c in text)


def _seed_for(seed: int, name: str) -> int:
    """Per-tensor seed, so tensors do not depend on write order or on other tensors."""
    digest = hashlib.sha256(f"{seed}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


# A "plan" is what gets written: ordered metadata (key -> (gguf value type name, value))
# and ordered tensors (name -> float32 array in numpy (rows, cols) order).
_Plan = tuple[dict[str, tuple[str, object]], dict[str, np.ndarray]]


def _plan(
    *,
    chat_template: str | None,
    n_vocab: int,
    n_embd: int,
    n_layer: int,
    n_head: int,
    n_head_kv: int,
    n_ff: int | None,
    n_ctx_train: int,
    seed: int,
    name: str,
    quant: str,
    printable_output: bool,
    extra_special_tokens: Sequence[str],
    forced_token: str | None = None,
) -> _Plan:
    if quant not in _FILE_TYPES:
        raise ValueError(f"quant must be one of {sorted(_FILE_TYPES)}, got {quant!r}")
    if n_embd % n_head:
        raise ValueError(f"n_embd={n_embd} must be a multiple of n_head={n_head}")
    if n_head % n_head_kv:
        raise ValueError(f"n_head={n_head} must be a multiple of n_head_kv={n_head_kv}")
    head_dim = n_embd // n_head
    if head_dim % 2:
        raise ValueError(f"head dimension {head_dim} must be even (RoPE)")
    if n_ff is None:
        n_ff = 2 * n_embd
    if quant == "Q8_0" and (n_embd % 32 or n_ff % 32):
        raise ValueError("Q8_0 needs n_embd and the feed-forward length to be multiples of 32")

    tokens, types, merges, special_ids = _build_vocab(n_vocab, extra_special_tokens)

    kv: dict[str, tuple[str, object]] = {
        "general.name": ("str", name),
        "general.file_type": ("u32", _FILE_TYPES[quant]),
        "general.quantization_version": ("u32", 2),
        f"{ARCH}.vocab_size": ("u32", n_vocab),
        f"{ARCH}.context_length": ("u32", n_ctx_train),
        f"{ARCH}.embedding_length": ("u32", n_embd),
        f"{ARCH}.block_count": ("u32", n_layer),
        f"{ARCH}.feed_forward_length": ("u32", n_ff),
        f"{ARCH}.attention.head_count": ("u32", n_head),
        f"{ARCH}.attention.head_count_kv": ("u32", n_head_kv),
        f"{ARCH}.rope.dimension_count": ("u32", head_dim),
        f"{ARCH}.rope.freq_base": ("f32", 10000.0),
        f"{ARCH}.attention.layer_norm_rms_epsilon": ("f32", 1e-5),
        "tokenizer.ggml.model": ("str", "gpt2"),
        "tokenizer.ggml.pre": ("str", "default"),
        "tokenizer.ggml.tokens": ("str[]", tokens),
        "tokenizer.ggml.token_type": ("i32[]", types),
        "tokenizer.ggml.merges": ("str[]", merges),
        "tokenizer.ggml.bos_token_id": ("u32", special_ids["<s>"]),
        "tokenizer.ggml.eos_token_id": ("u32", special_ids["</s>"]),
        "tokenizer.ggml.padding_token_id": ("u32", special_ids["</s>"]),
        "tokenizer.ggml.add_bos_token": ("bool", True),
        "tokenizer.ggml.add_eos_token": ("bool", False),
    }
    if chat_template is not None:
        kv["tokenizer.chat_template"] = ("str", chat_template)

    def rand(tname: str, shape: tuple[int, ...], std: float) -> np.ndarray:
        rng = np.random.default_rng(_seed_for(seed, tname))
        return (rng.standard_normal(shape) * std).astype(np.float32)

    q_dim = n_head * head_dim
    kv_dim = n_head_kv * head_dim
    tensors: dict[str, np.ndarray] = {}
    # numpy shapes are (rows, cols) = reversed ggml ne; e.g. token_embd ne = {n_embd, n_vocab}.
    token_embd = rand("token_embd.weight", (n_vocab, n_embd), 1.0)
    bias_channel = printable_output or forced_token is not None
    if bias_channel:
        # Channel 0 of the residual stream is a constant "bias" channel: every token
        # embedding has _BIAS_CHANNEL there and no layer writes to it (row 0 of
        # attn_output / ffn_down is zero), so after output_norm it is always ~+5.
        token_embd[:, 0] = _BIAS_CHANNEL
    tensors["token_embd.weight"] = token_embd
    for i in range(n_layer):
        p = f"blk.{i}"
        attn_output = rand(f"{p}.attn_output.weight", (n_embd, q_dim), 0.1)
        ffn_down = rand(f"{p}.ffn_down.weight", (n_embd, n_ff), 0.1)
        if bias_channel:
            attn_output[0] = 0.0  # nothing writes into the bias channel
            ffn_down[0] = 0.0
        tensors[f"{p}.attn_norm.weight"] = np.ones(n_embd, dtype=np.float32)
        tensors[f"{p}.attn_q.weight"] = rand(f"{p}.attn_q.weight", (q_dim, n_embd), 0.1)
        tensors[f"{p}.attn_k.weight"] = rand(f"{p}.attn_k.weight", (kv_dim, n_embd), 0.1)
        tensors[f"{p}.attn_v.weight"] = rand(f"{p}.attn_v.weight", (kv_dim, n_embd), 0.1)
        tensors[f"{p}.attn_output.weight"] = attn_output
        tensors[f"{p}.ffn_norm.weight"] = np.ones(n_embd, dtype=np.float32)
        tensors[f"{p}.ffn_gate.weight"] = rand(f"{p}.ffn_gate.weight", (n_ff, n_embd), 0.1)
        tensors[f"{p}.ffn_up.weight"] = rand(f"{p}.ffn_up.weight", (n_ff, n_embd), 0.1)
        tensors[f"{p}.ffn_down.weight"] = ffn_down
    tensors["output_norm.weight"] = np.ones(n_embd, dtype=np.float32)
    output = rand("output.weight", (n_vocab, n_embd), 1.0)
    if bias_channel:
        # Logit of token t = output[t] . h, and h[0] is always ~+5: output[t, 0] = -32
        # is a bias of about -155 on t (the other logits are ~N(0, 6), max ~+12), zero is
        # no bias, +16 (forced_token) makes t win every time.
        output[:, 0] = 0.0
    if printable_output:
        # Suppressed: all control tokens (</s> included) and every byte token that is
        # not printable ASCII or newline.
        for tid, text in enumerate(tokens):
            if not _is_printable_token(text, types[tid]):
                output[tid, 0] = -4 * _BIAS_CHANNEL
    if forced_token is not None:
        output[tokens.index(forced_token), 0] = 2 * _BIAS_CHANNEL
    tensors["output.weight"] = output
    return kv, tensors


def _write(path: Path, plan: _Plan, quant: str) -> Path:
    import gguf  # imported lazily: only the tests that write models need it

    kv, tensors = plan
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(str(path), ARCH)  # writes general.architecture itself
    adders: dict[str, Callable[[str, object], None]] = {
        "str": writer.add_string,
        "u32": writer.add_uint32,
        "i32": writer.add_int32,
        "f32": writer.add_float32,
        "bool": writer.add_bool,
    }
    for key, (vtype, value) in kv.items():
        if vtype.endswith("[]"):
            sub = {
                "str[]": gguf.GGUFValueType.STRING,
                "i32[]": gguf.GGUFValueType.INT32,
                "f32[]": gguf.GGUFValueType.FLOAT32,
            }[vtype]
            writer.add_key_value(key, list(value), gguf.GGUFValueType.ARRAY, sub_type=sub)
        else:
            adders[vtype](key, value)

    for tname, data in tensors.items():
        if data.ndim == 1 or quant == "F32":  # norms always stay F32
            writer.add_tensor(tname, np.ascontiguousarray(data, dtype=np.float32))
        elif quant == "F16":
            writer.add_tensor(tname, data.astype(np.float16))
        else:
            qtype = gguf.GGMLQuantizationType.Q8_0
            writer.add_tensor(tname, gguf.quants.quantize(data, qtype), raw_dtype=qtype)

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def write_tiny_model(
    path: Path,
    *,
    chat_template: str | None = None,
    n_vocab: int = 320,
    n_embd: int = 64,
    n_layer: int = 2,
    n_head: int = 4,
    n_head_kv: int = 2,
    n_ff: int | None = None,
    n_ctx_train: int = 512,
    seed: int = 0,
    name: str = "tiny-test-llama",
    quant: str = "F32",
    printable_output: bool = True,
    extra_special_tokens: Sequence[str] = (),
) -> Path:
    """Write a tiny random ``llama`` GGUF to ``path`` and return ``path``.

    Defaults: 320-token vocab, 64-dim embeddings, 2 layers, 4 query / 2 KV heads
    (GQA), feed-forward 128 (``n_ff`` defaults to ``2 * n_embd``): 467 kB as F32,
    238 kB as F16, 131 kB as Q8_0.
    ``quant`` is ``"F32"``, ``"F16"`` or ``"Q8_0"`` (2-D weights; norms stay F32;
    Q8_0 needs ``n_embd`` and ``n_ff`` to be multiples of 32).

    Tokenizer: ``tokenizer.ggml.model = "gpt2"``, ``tokenizer.ggml.pre = "default"``;
    ids 0..255 are the 256 byte tokens (GPT-2 ``bytes_to_unicode``), then
    ``n_vocab - 258 - len(extra_special_tokens)`` merged tokens (e.g. "Hello", " world"),
    then the CONTROL tokens ``<s>`` (bos, added automatically) and ``</s>`` (eos, also
    used as pad), then ``extra_special_tokens`` (CONTROL too; llama.cpp itself marks
    well-known end tokens such as ``<|im_end|>`` or ``<end_of_turn>`` as end-of-generation).
    Any UTF-8 text round-trips through tokenize/detokenize.

    ``printable_output`` (default True): the model can only ever generate printable
    ASCII and newline tokens - never ``</s>``/``<s>``/``extra_special_tokens``, never
    control or non-ASCII byte tokens - at any sane temperature (a logit bias of about
    -155 built into the weights; see ``_plan``). So a completion always returns exactly
    ``max_tokens`` tokens of valid
    text with ``finish_reason == "length"``; to end one early pass e.g.
    ``logit_bias={llm.token_eos(): 1000.0}`` (-> finish_reason "stop"; +100 is not
    enough) or a stop string.
    With ``False`` all output rows are plain random: greedy generation then ends with
    ``</s>`` before 16 tokens for ~2 seeds in 40 (seeds 5 and 19 with the defaults),
    and emits stray byte tokens, which trip llama-cpp-python's UTF-8 handling (see
    :func:`write_model_with_runaway_utf8`).

    The same arguments (including ``seed``) always produce byte-identical files.
    ``chat_template``, when given, is stored as ``tokenizer.chat_template``.
    """
    plan = _plan(
        chat_template=chat_template,
        n_vocab=n_vocab,
        n_embd=n_embd,
        n_layer=n_layer,
        n_head=n_head,
        n_head_kv=n_head_kv,
        n_ff=n_ff,
        n_ctx_train=n_ctx_train,
        seed=seed,
        name=name,
        quant=quant,
        printable_output=printable_output,
        extra_special_tokens=extra_special_tokens,
    )
    return _write(path, plan, quant)


def write_tiny_chat_model(path: Path, **kwargs) -> Path:
    """:func:`write_tiny_model` with the ChatML template and its special tokens."""
    tokens = ("<|im_start|>", "<|im_end|>")
    return write_tiny_model(path, chat_template=CHATML, extra_special_tokens=tokens, **kwargs)


def _default_plan(**overrides) -> _Plan:
    """The plan of ``write_tiny_model(path, **overrides)`` (same defaults)."""
    args = {
        name: param.default
        for name, param in inspect.signature(write_tiny_model).parameters.items()
        if param.kind is inspect.Parameter.KEYWORD_ONLY
    }
    args.update(overrides)
    return _plan(**args)


# kind -> function mutating a default plan (kv, tensors) in place
def _bad_ff_length(kv, tensors):
    kv[f"{ARCH}.feed_forward_length"] = ("u32", 2 * kv[f"{ARCH}.feed_forward_length"][1])


def _bad_block_count(kv, tensors):
    kv[f"{ARCH}.block_count"] = ("u32", kv[f"{ARCH}.block_count"][1] + 1)


def _bad_rope_dims(kv, tensors):
    kv[f"{ARCH}.rope.dimension_count"] = ("u32", kv[f"{ARCH}.rope.dimension_count"][1] // 2)


BAD_METADATA_KINDS: dict[str, Callable] = {
    "wrong_shape": _bad_ff_length,
    "missing_tensor": _bad_block_count,
    "bad_rope_dims": _bad_rope_dims,
}


def write_tiny_model_with_bad_metadata(path: Path, *, kind: str = "wrong_shape") -> Path:
    """Write a structurally valid GGUF that llama.cpp rejects POLITELY at load time.

    It is the default tiny model with one metadata value that contradicts the tensors.
    llama-cpp-python 0.3.36 raises ``ValueError("Failed to load model from file:
    <path>")`` from ``llama_cpp.Llama(...)`` within milliseconds and the process carries
    on (checked in a child process). llama.cpp's own log line
    (stderr, only with ``verbose=True``) per ``kind``:

    * ``"wrong_shape"`` (default): ``llama.feed_forward_length`` is twice the real one
      -> ``llama_model_load: error loading model: check_tensor_dims: tensor
      'blk.0.ffn_gate.weight' has wrong shape; expected 64, 256, got 64, 128, 1, 1``
    * ``"missing_tensor"``: ``llama.block_count`` is one more than the layers written
      -> ``... error loading model: check_tensor_dims: tensor 'blk.2.attn_norm.weight'
      not found``
    * ``"bad_rope_dims"``: ``llama.rope.dimension_count`` is half the head size
      -> ``... error loading model: error loading model hyperparameters: invalid n_rot:
      8, expected 16``
    """
    if kind not in BAD_METADATA_KINDS:
        raise ValueError(f"kind must be one of {sorted(BAD_METADATA_KINDS)}, got {kind!r}")
    kv, tensors = _default_plan()
    BAD_METADATA_KINDS[kind](kv, tensors)
    return _write(path, (kv, tensors), "F32")


def _abort_rope_scaling(kv, tensors):
    kv[f"{ARCH}.rope.scaling.type"] = ("str", "bogus")


def _abort_expert_used(kv, tensors):
    kv[f"{ARCH}.expert_used_count"] = ("u32", 2)


ABORT_KINDS: dict[str, Callable] = {
    "rope_scaling_type": _abort_rope_scaling,
    "expert_used_count": _abort_expert_used,
}


def write_model_that_aborts_llama(path: Path, *, kind: str = "rope_scaling_type") -> Path:
    """Write a structurally valid GGUF whose metadata makes llama.cpp ABORT the process.

    It is the default tiny model plus one bad metadata value that llama.cpp checks with
    ``GGML_ASSERT`` (not an exception) while reading hyperparameters, so loading it with
    ``llama_cpp.Llama(...)`` kills the whole process with SIGABRT (exit status -6 from
    ``subprocess``; 134 from a shell). No Python exception, no ``finally`` blocks run.
    NEVER load it in the test process - only in a child process. Set
    ``GGML_NO_BACKTRACE=1`` in the child's environment: otherwise ggml's abort handler
    attaches gdb (when installed) to print a backtrace, which costs seconds.
    The assertion text goes to stderr with ``fprintf`` (not through the log callback)
    but ``llama_cpp.Llama(verbose=False)`` redirects fd 2 to /dev/null while loading,
    so a child using ``verbose=False`` prints nothing at all before dying.

    * ``"rope_scaling_type"`` (default): ``llama.rope.scaling.type = "bogus"`` ->
      ``llama-model.cpp:1420: GGML_ASSERT(hparams.rope_scaling_type_train !=
      LLAMA_ROPE_SCALING_TYPE_UNSPECIFIED) failed``
    * ``"expert_used_count"``: ``llama.expert_used_count = 2`` without any experts ->
      ``llama-model.cpp:1362: GGML_ASSERT(n_expert_used_max <= hparams.n_expert) failed``
    """
    if kind not in ABORT_KINDS:
        raise ValueError(f"kind must be one of {sorted(ABORT_KINDS)}, got {kind!r}")
    kv, tensors = _default_plan()
    ABORT_KINDS[kind](kv, tensors)
    return _write(path, (kv, tensors), "F32")


def write_spm_model_without_byte_tokens(path: Path) -> Path:
    """Write a ChatML chat model whose SentencePiece (``llama``) vocabulary has every printable
    ASCII character, ``▁`` and a newline but no ``<0xNN>`` byte tokens.

    It loads, and greedy replies to ASCII messages work. A message with any other character
    ("€") kills the process that tokenizes it: SentencePiece falls back to byte tokens,
    llama.cpp looks ``<0xE2>`` up with ``unordered_map::at`` and the uncaught
    ``std::out_of_range`` aborts (SIGABRT; stderr: ``terminate called after throwing an
    instance of 'std::out_of_range'`` / ``what():  unordered_map::at``). Measured with
    llama-cpp-python 0.3.36. NEVER tokenize such text with it in the test process.
    """
    specials = ("<|im_start|>", "<|im_end|>")
    kv, tensors = _default_plan(chat_template=CHATML, extra_special_tokens=specials)
    n_vocab = kv[f"{ARCH}.vocab_size"][1]
    tokens = ["<unk>", "<s>", "</s>", *specials]
    types = [2, _TOKEN_CONTROL, _TOKEN_CONTROL, _TOKEN_CONTROL, _TOKEN_CONTROL]  # 2: UNKNOWN
    pieces = [chr(c) for c in range(0x21, 0x7F)] + ["▁", "\n"]
    pieces += ["▁" + c for c in "abcdefghijklmnopqrstuvwxyzHW"]
    pieces += [f"▁w{i}" for i in range(n_vocab - len(tokens) - len(pieces))]
    tokens += pieces
    types += [_TOKEN_NORMAL] * len(pieces)
    for key in ("tokenizer.ggml.pre", "tokenizer.ggml.merges"):
        del kv[key]
    kv.update({
        "general.name": ("str", "no-byte-tokens"),
        "tokenizer.ggml.model": ("str", "llama"),
        "tokenizer.ggml.tokens": ("str[]", tokens),
        "tokenizer.ggml.token_type": ("i32[]", types),
        "tokenizer.ggml.scores": ("f32[]", [-float(i) for i in range(n_vocab)]),
        "tokenizer.ggml.bos_token_id": ("u32", 1),
        "tokenizer.ggml.eos_token_id": ("u32", 2),
        "tokenizer.ggml.padding_token_id": ("u32", 0),
    })  # fmt: skip
    return _write(path, (kv, tensors), "F32")


RUNAWAY_BYTE = 0xF1  # a 4-byte UTF-8 lead byte


def write_model_with_runaway_utf8(path: Path, **kwargs) -> Path:
    """Write a valid tiny model whose generation is the byte 0xF1 over and over.

    0xF1 is a UTF-8 lead byte that is never completed. llama-cpp-python 0.3.36's
    ``_create_completion`` holds back incomplete multi-byte characters with a
    ``continue`` that also skips its ``len(completion_tokens) >= max_tokens`` check,
    so ``create_completion(max_tokens=N)`` does NOT stop after N tokens: it generates
    until the context is full, then llama.cpp logs ``decode: failed to find a memory
    slot for batch of size 1`` and llama-cpp-python raises ``RuntimeError("llama_decode
    returned 1")``; ``stream=True`` yields no chunk before the same error. Random models
    (``printable_output=False``,
    e.g. seed 30) and real ones can fall into such loops too; with merely a trailing
    lead byte the overrun is 1-3 tokens (``usage.completion_tokens`` > ``max_tokens``).

    Keyword arguments go to :func:`write_tiny_model` (``printable_output`` is False).
    """
    kwargs.setdefault("printable_output", False)
    plan = _default_plan(**kwargs, forced_token=_bytes_to_unicode()[RUNAWAY_BYTE])
    return _write(path, plan, kwargs.get("quant", "F32"))


def write_llama_gguf(
    path: Path, shape: dict[str, int], *, seed: int = 0, header_only: bool = False
) -> Path:
    """A llama-architecture GGUF of any ``shape`` (F16 matrices, F32 norms, random weights).

    ``shape`` keys: n_vocab, n_embd, n_layer, n_head, n_head_kv, n_ff, n_ctx_train. The
    tokenizer is the tiny one of :func:`write_tiny_model`, widened with filler tokens.
    ``header_only``: the tensor data is left as a sparse hole (for the estimator, which reads
    headers only; llama.cpp cannot run such a file).
    """
    import gguf

    s = shape
    tokens, types, merges, special = _build_vocab(1000, ())
    fillers = [f"x{i:05d}" for i in range(s["n_vocab"] - len(tokens))]
    tokens, types = tokens + fillers, types + [1] * len(fillers)
    head = s["n_embd"] // s["n_head"]
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_file_type(1)  # mostly F16
    w.add_vocab_size(s["n_vocab"])
    w.add_context_length(s["n_ctx_train"])
    w.add_embedding_length(s["n_embd"])
    w.add_block_count(s["n_layer"])
    w.add_feed_forward_length(s["n_ff"])
    w.add_head_count(s["n_head"])
    w.add_head_count_kv(s["n_head_kv"])
    w.add_rope_dimension_count(head)
    w.add_rope_freq_base(500000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(special["<s>"])
    w.add_eos_token_id(special["</s>"])
    rng = np.random.default_rng(seed)
    total = 0

    def add(name: str, dims: tuple[int, ...], dtype: type) -> None:
        nonlocal total
        if header_only:
            n = int(np.prod(dims)) * np.dtype(dtype).itemsize
            total += n
            w.add_tensor_info(name, dims, np.dtype(dtype), n)
        elif dtype is np.float32:
            w.add_tensor(name, np.ones(dims, dtype=np.float32))
        else:
            w.add_tensor(name, (rng.standard_normal(dims, dtype=np.float32) * 0.02).astype(dtype))

    e, kv, ff = s["n_embd"], s["n_head_kv"] * head, s["n_ff"]
    add("token_embd.weight", (s["n_vocab"], e), np.float16)
    for i in range(s["n_layer"]):
        p = f"blk.{i}."
        add(p + "attn_norm.weight", (e,), np.float32)
        for name, rows, cols in (("attn_q", e, e), ("attn_k", kv, e), ("attn_v", kv, e),
                                 ("attn_output", e, e), ("ffn_gate", ff, e), ("ffn_up", ff, e),
                                 ("ffn_down", e, ff)):  # fmt: skip
            add(p + name + ".weight", (rows, cols), np.float16)
        add(p + "ffn_norm.weight", (e,), np.float32)
    add("output_norm.weight", (e,), np.float32)
    add("output.weight", (s["n_vocab"], e), np.float16)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    if header_only:
        w.write_ti_data_to_file()
        w.close()
        with path.open("r+b") as f:  # sparse, with alignment slack
            f.truncate(path.stat().st_size + total + 64 * 33 + (1 << 20))
    else:
        w.write_tensors_to_file()
        w.close()
    return path


def write_tiny_model_with_metadata(path: Path, values: dict[str, tuple[str, object]]) -> Path:
    """The default tiny model with metadata ``values`` set ({key: (gguf type, value)}, e.g.
    ``{"llama.block_count": ("u32", 50_000_000)}``): headers a crafted file could carry."""
    kv, tensors = _default_plan()
    kv.update(values)
    return _write(path, (kv, tensors), "F32")
