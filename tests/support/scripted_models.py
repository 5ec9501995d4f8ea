"""Tiny models that always write the same reply, for tests of what the app does with a reply
(thinking apart from the answer, channels, markers) through real llama.cpp.

The model is a chain: no layer adds anything to the residual stream (attention and feed-forward
outputs are zero), so the next token depends on the current one alone. Each token of the chain
has a channel of its own in the embeddings, and the output matrix maps it to the next token of
the chain with a logit of about 80 (every other logit is 0): greedy or sampled, the reply is
the script. Each token may stand once in the chain: a reply of gpt-oss that uses a channel
marker twice is two scripts (llama.cpp refuses a vocabulary with a text twice).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tests.support.tiny_models import _TOKEN_CONTROL, _bytes_to_unicode, _default_plan, _write

_TOKEN_USER_DEFINED = 4
_LOGIT = 10.0  # times ~8 after the RMS norm of a one-hot embedding of 64 channels


def write_scripted_model(
    path: Path,
    *,
    chat_template: str,
    trigger: str,
    script: Sequence[str],
    control: Sequence[str] = (),
    name: str = "scripted",
) -> Path:
    """Write a model whose reply to a prompt ending in the token ``trigger`` is ``script``
    (token texts, each one token), then ``</s>``.

    ``control`` names the template's control tokens (and the script's: gpt-oss's channel
    markers are control tokens); every other text of the script, and ``trigger`` unless it is
    a byte (``"\\n"``), is a user-defined token, as ``<think>`` is in DeepSeek-R1's and Qwen3's
    vocabularies.
    """
    byte_trigger = trigger if len(trigger.encode("utf-8")) == 1 else None
    chain_texts = [trigger, *script]
    if len(set(chain_texts)) != len(chain_texts):
        raise ValueError("each token may stand once in the chain (llama.cpp refuses a "
                         "vocabulary with a text twice, and the next token depends on "
                         "the current one alone)")
    own = list(dict.fromkeys(control))  # the template's control tokens
    places = [t for t in chain_texts if t not in own and t != byte_trigger]  # user-defined
    kv, tensors = _default_plan(chat_template=chat_template, printable_output=False,
                                extra_special_tokens=(), name=name)  # fmt: skip
    tokens = list(kv["tokenizer.ggml.tokens"][1])
    types = list(kv["tokenizer.ggml.token_type"][1])
    n_vocab, n_embd = len(tokens), tensors["token_embd.weight"].shape[1]
    first = n_vocab - 2 - len(own) - len(places)  # ids before <s> and </s> make room
    if first <= 256 or len(places) + 2 > n_embd:
        raise ValueError("the script is too long for the tiny model")
    kept = set(tokens[:first])
    merges = kv["tokenizer.ggml.merges"][1]
    kv["tokenizer.ggml.merges"] = ("str[]", [m for m in merges if m.replace(" ", "") in kept])
    for offset, text in enumerate(own + places):
        tokens[first + offset] = text
        types[first + offset] = _TOKEN_CONTROL if text in control else _TOKEN_USER_DEFINED
    kv["tokenizer.ggml.tokens"] = ("str[]", tokens)
    kv["tokenizer.ggml.token_type"] = ("i32[]", types)
    byte = _bytes_to_unicode()[ord(byte_trigger)] if byte_trigger else None
    chain = [tokens.index(byte if t == byte_trigger else t) for t in chain_texts]
    chain.append(tokens.index("</s>"))
    embed = np.zeros((n_vocab, n_embd), dtype=np.float32)
    embed[:, 0] = 1.0  # every token off the chain: channel 0, which leads nowhere in particular
    output = np.zeros((n_vocab, n_embd), dtype=np.float32)
    for place, (token, following) in enumerate(zip(chain, chain[1:], strict=False)):
        embed[token] = 0.0
        embed[token, place + 1] = 1.0
        output[following, place + 1] = _LOGIT
    tensors["token_embd.weight"] = embed
    tensors["output.weight"] = output
    for tname in tensors:
        if tname.endswith(("attn_output.weight", "ffn_down.weight")):
            tensors[tname] = np.zeros_like(tensors[tname])
    return _write(path, (kv, tensors), "F32")
