"""The lean generation path: llama.cpp's own API, driven from Python with no per-token waste.

llama-cpp-python's ``Llama.generate`` rebuilds a batch in Python for every token, keeps a NumPy
copy of the tokens and removes KV-cache cells before each step. Here each step is four C calls:
sample with llama.cpp's native sampler chain (``llama_sampler_*``: penalties, top-k, top-p,
min-p, temperature, distribution — the same chain the high-level path builds, so greedy output
is identical), ask whether the token ends generation, turn it into bytes, decode it. The prompt
is decoded in ``n_batch`` chunks; only the last position's logits are computed; nothing copies
the vocabulary's logits.

The KV cache is reused across turns: :class:`TokenCache` remembers which tokens it holds and a
new prompt only evaluates what follows the longest common prefix (a chat's second turn
evaluates the new message, not the whole history again).

Everything here runs on the thread that owns the model.
"""

from __future__ import annotations

import codecs
import ctypes
import re
from collections.abc import Callable, Sequence

import numpy as np

from quantdesk.engine.errors import GenerationError
from quantdesk.engine.params import SamplingSettings

try:  # the per-token sampling step in C (engine/_sampling.c), built where a compiler was found
    from quantdesk.engine import _sampling as _native_sampling
except ImportError:  # not built: the same step in NumPy (SamplerChain.candidates)
    _native_sampling = None

#: Tokens the repeat penalty looks back over: llama-cpp-python's ``last_n_tokens_size``.
PENALTY_LAST_N = 64


def sampling_step() -> str:
    """Which sampling step this installation runs: "C" (engine/_sampling.c was built when the
    package was installed) or "NumPy" (the fallback: no C compiler or Python headers then)."""
    return "C" if _native_sampling is not None else "NumPy"


def _llama_cpp():  # noqa: ANN202 - the ctypes bindings, imported where the model lives
    import llama_cpp

    return llama_cpp


def end_of_generation(vocab: object) -> Callable[[int], bool]:
    """A test for tokens that end generation (EOS, end-of-turn...) in ``vocab``."""
    is_eog = _llama_cpp().llama_vocab_is_eog
    return lambda token: bool(is_eog(vocab, token))


#: llama.cpp's token attributes (llama.h, enum llama_token_attr).
_ATTR_UNUSED, _ATTR_CONTROL, _ATTR_USER_DEFINED = 1 << 1, 1 << 3, 1 << 4
#: User-defined tokens that are a model's markers, not text: image and audio placeholders
#: (Gemma 3's ``<start_of_image>``, ``[multimodal]``), ``<|...|>`` markers, unused slots.
#: Other user-defined tokens are text (Gemma's ``<table>``, runs of spaces and newlines).
_MARKER = re.compile(
    rb"<\|[^|<>\s]+\|>|<(?:start|end)_of_\w+>|<\w*(?:image|audio|video)\w*>|\[multimodal\]"
    rb"|<unused\d+>|<mask>|<pad>"
)


class Detokenizer:
    """Token ids to text, one token at a time, never splitting a UTF-8 character.

    A character spread over several tokens (emoji, CJK in byte-level vocabularies) is held back
    until its last byte arrives; invalid bytes become U+FFFD, as llama.cpp's own tools show them.
    Control tokens, unused ones and user-defined markers (:data:`_MARKER`) are never text.
    """

    def __init__(self, vocab: object, markers: frozenset[str] = frozenset()) -> None:
        """``markers``: token texts written out as they are even where they are control tokens
        (the thinking's and the channels' markers, for ``chat.reasoning`` to split on)."""
        self._vocab = vocab
        self._markers = {m.encode("utf-8") for m in markers}
        self._marker_ids: dict[int, bytes | None] = {}
        self._size = 256
        self._buffer = (ctypes.c_char * self._size)()
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        cpp = _llama_cpp()
        self._to_piece = cpp.llama_token_to_piece
        self._attr = cpp.llama_vocab_get_attr
        self._token_text = cpp.llama_vocab_get_text
        self._hidden: dict[int, bool] = {}

    def hidden(self, token: int) -> bool:
        """True for a token that is a marker of the model, never shown as text."""
        found = self._hidden.get(token)
        if found is None:
            attr = int(self._attr(self._vocab, token))
            found = bool(attr & (_ATTR_CONTROL | _ATTR_UNUSED)) or bool(
                attr & _ATTR_USER_DEFINED
                and _MARKER.fullmatch(self._token_text(self._vocab, token) or b"")
            )
            self._hidden[token] = found
        return found

    def _marker(self, token: int) -> bytes | None:
        """The text of ``token`` when it is one of the markers asked for, else None."""
        if token not in self._marker_ids:
            text = self._token_text(self._vocab, token) or b""
            self._marker_ids[token] = text if text in self._markers else None
        return self._marker_ids[token]

    def piece(self, token: int) -> bytes:
        """The bytes of one token, as llama.cpp writes them; nothing for a marker token."""
        if self._markers and (marker := self._marker(token)) is not None:
            return marker
        if self.hidden(token):
            return b""
        n = self._to_piece(self._vocab, token, self._buffer, self._size, 0, False)
        if n < 0:  # the piece is longer than the buffer: grow it once and ask again
            self._size = -n
            self._buffer = (ctypes.c_char * self._size)()
            n = self._to_piece(self._vocab, token, self._buffer, self._size, 0, False)
        return self._buffer.raw[:n]

    def feed(self, token: int) -> str:
        """The text completed by ``token`` ("" while a character is still incomplete)."""
        return self._decoder.decode(self.piece(token))

    def flush(self) -> str:
        """Whatever is held back at the end (an unfinished character becomes U+FFFD)."""
        return self._decoder.decode(b"", final=True)


def _address(pointer: object) -> int:
    """The address a ctypes pointer or function holds (0 for None)."""
    if pointer is None:
        return 0
    return ctypes.cast(pointer, ctypes.c_void_p).value or 0


#: NumPy's view of llama.cpp's ``llama_token_data`` (int32 id, float logit, float p).
_TOKEN_DATA = np.dtype([("id", np.int32), ("logit", np.float32), ("p", np.float32)])


class SamplerChain:
    """llama.cpp's native sampler chain for one reply; free it with :meth:`close`.

    The chain is the one llama-cpp-python's ``Llama.generate`` builds (repeat penalty, then
    greedy, or top-k, top-p, min-p, temperature and a seeded draw), with one saving that
    changes no result: llama.cpp would hand the chain all ``n_vocab`` logits (262 144 for
    Gemma 3) and look each one up in the penalty table, every token. Only the ``top_k +
    PENALTY_LAST_N`` likeliest tokens can end up among the top ``top_k`` after the penalty
    (a penalty of 1 or more only lowers at most ``PENALTY_LAST_N`` tokens), so the chain is
    applied to the tokens at or above a threshold that at least that many reach
    (:meth:`candidates`: one pass over the logits). With ``top_k`` 0 (no limit) or a penalty
    below 1 (it raises logits) the chain sees the whole vocabulary, as in llama.cpp.

    The whole step (candidates, chain, accept) runs in one C call where engine/_sampling.c was
    built: right after a decode the interpreter's own memory is cold and each NumPy operation
    costs tens of microseconds. Otherwise the same algorithm runs here in NumPy.
    """

    def __init__(self, ctx: object, n_vocab: int, sampling: SamplingSettings, seed: int) -> None:
        lib = _llama_cpp()
        self._lib = lib
        self._ctx = ctx
        self._n_vocab = n_vocab
        self.chain = lib.llama_sampler_chain_init(lib.llama_sampler_chain_default_params())
        add = lambda sampler: lib.llama_sampler_chain_add(self.chain, sampler)  # noqa: E731
        self._grammar = None  # structured output: checked after the chain picks (see sample)
        if sampling.grammar:
            vocab = lib.llama_model_get_vocab(lib.llama_get_model(ctx))
            self._grammar = lib.llama_sampler_init_grammar(
                vocab, sampling.grammar.encode("utf-8"), b"root")  # fmt: skip
            if not self._grammar:
                lib.llama_sampler_free(self.chain)
                self.chain = None
                raise GenerationError("llama.cpp could not use the output format's grammar.")
        add(lib.llama_sampler_init_penalties(
            n_vocab, PENALTY_LAST_N, sampling.repeat_penalty, 0.0, 0.0
        ))  # fmt: skip
        if sampling.temperature == 0.0:
            add(lib.llama_sampler_init_greedy())
            top_k = 1
        else:
            add(lib.llama_sampler_init_top_k(sampling.top_k))
            add(lib.llama_sampler_init_top_p(sampling.top_p, 1))
            add(lib.llama_sampler_init_min_p(sampling.min_p, 1))
            add(lib.llama_sampler_init_temp(sampling.temperature))
            add(lib.llama_sampler_init_dist(seed))
            top_k = sampling.top_k
        self._needed = top_k + PENALTY_LAST_N if 0 < top_k else 0
        if self._needed >= n_vocab or sampling.repeat_penalty < 1.0:
            # a penalty below 1 raises the recent tokens' logits: any token may then win, so
            # the chain sees the whole vocabulary, as in llama.cpp
            self._needed = 0
        self._stride = max(1, n_vocab // 8192)
        self._threshold: float | None = None  # the last one that worked (logits are alike)
        self._logits: tuple[int, np.ndarray] | None = None  # (address, NumPy view of it)
        self._array = lib.llama_token_data_array()
        self._array.data = None
        self._data = np.empty(0, _TOKEN_DATA)
        self._native = None
        if self._needed and _native_sampling is not None and self._grammar is None:
            self._native = _native_sampling.Sampler(
                _address(lib.llama_get_logits_ith), _address(lib.llama_sampler_apply),
                _address(lib.llama_sampler_accept), _address(ctx), _address(self.chain),
                n_vocab, self._needed,
            )  # fmt: skip

    def candidates(self, logits: np.ndarray) -> np.ndarray:
        """Ids of every token whose logit reaches a threshold that at least ``top_k +
        PENALTY_LAST_N`` tokens reach (so they include every token the chain could pick).

        One pass over the logits with the threshold kept from the previous token (consecutive
        logits are alike; it is kept low enough that about eight times as many tokens as
        needed usually reach it); when too few reach it, a new one is guessed from a strided
        sample of the logits and checked on all of them. Either way the answer is exact
        whatever the guess; a surplus is cut down to the likeliest among the tokens found.
        """
        if self._threshold is not None:
            ids = np.flatnonzero(logits >= self._threshold)
            if len(ids) >= self._needed:
                return self._likeliest(logits, ids)
        sample = logits[:: self._stride]
        rank = max(1, -(-self._MARGIN * self._needed // self._stride))
        while rank < len(sample):
            threshold = np.partition(sample, len(sample) - rank)[len(sample) - rank]
            ids = np.flatnonzero(logits >= threshold)
            if len(ids) >= self._needed:
                self._threshold = float(threshold)
                return self._likeliest(logits, ids)
            rank *= 4
        self._threshold = None
        return np.arange(len(logits))

    #: The threshold kept for the next token aims at this many times the tokens needed.
    _MARGIN = 8

    def _likeliest(self, logits: np.ndarray, ids: np.ndarray) -> np.ndarray:
        """``ids`` (every token at or above some threshold, at least ``needed`` of them) cut
        down to those at or above the ``needed``-th largest logit among them, which is the
        ``needed``-th largest of the whole vocabulary. The threshold kept for the next token
        becomes the ``_MARGIN * needed``-th largest, when there are that many."""
        if len(ids) <= 4 * self._needed:
            return ids
        values = logits[ids]
        last = len(values) - 1
        kept = min(last, self._MARGIN * self._needed - 1)
        ranked = np.partition(values, (last - kept, last - (self._needed - 1)))
        self._threshold = float(ranked[last - kept])
        return ids[values >= ranked[last - (self._needed - 1)]]

    def _logits_view(self) -> np.ndarray:
        """The last position's logits as a NumPy array over llama.cpp's own buffer (no copy;
        the view is made again only when llama.cpp moved the buffer)."""
        pointer = self._lib.llama_get_logits_ith(self._ctx, -1)
        address = _address(pointer)
        if self._logits is None or self._logits[0] != address:
            self._logits = (address, np.ctypeslib.as_array(pointer, (self._n_vocab,)))
        return self._logits[1]

    def sample(self) -> int:
        """Pick the next token from the last decoded position's logits (and accept it)."""
        lib = self._lib
        if self._grammar is not None:
            return self._sample_in_grammar()
        if not self._needed:
            return lib.llama_sampler_sample(self.chain, self._ctx, -1)
        if self._native is not None:
            try:
                return self._native.sample()
            except RuntimeError as error:
                raise GenerationError(f"{error}.") from error
        logits = self._logits_view()
        token = self._pick(self.candidates(logits), logits)
        lib.llama_sampler_accept(self.chain, token)
        return token

    def _sample_in_grammar(self) -> int:
        """As llama.cpp's own sampler does it: the chain picks as usual, and only when the
        grammar refuses that token is the grammar applied and the chain asked again; both
        accept the token. The grammar goes over the likeliest tokens first (those the chain
        could pick: top-k, top-p and min-p keep no other), over the whole vocabulary (tens of
        milliseconds with a 49k vocabulary) only when it allows none of them."""
        lib = self._lib
        logits = self._logits_view()
        ids = self.candidates(logits) if self._needed else np.arange(self._n_vocab)
        token = self._pick(ids, logits)
        if not len(self._allowed(np.array([token]), logits)):
            allowed = self._allowed(ids, logits) if len(ids) < self._n_vocab else ids[:0]
            every = allowed if len(allowed) else np.arange(self._n_vocab)
            token = self._pick(every, logits, first=None if len(allowed) else self._grammar)
        lib.llama_sampler_accept(self._grammar, token)
        lib.llama_sampler_accept(self.chain, token)
        return token

    def _allowed(self, ids: np.ndarray, logits: np.ndarray) -> np.ndarray:
        """Those of ``ids`` the grammar allows next."""
        lib = self._lib
        data = np.empty(len(ids), _TOKEN_DATA)
        data["id"], data["logit"], data["p"] = ids, logits[ids], 0.0
        array = lib.llama_token_data_array(
            data.ctypes.data_as(ctypes.POINTER(lib.llama_token_data)), len(ids), -1, False)
        lib.llama_sampler_apply(self._grammar, ctypes.byref(array))
        return data["id"][np.isfinite(data["logit"])]

    def _pick(self, ids: np.ndarray, logits: np.ndarray, first: object = None) -> int:
        """The token the chain selects among ``ids`` (``first`` applied before it), not yet
        accepted."""
        lib = self._lib
        array = self._array
        if len(self._data) < len(ids):
            self._data = np.empty(max(len(ids), 2 * len(self._data)), _TOKEN_DATA)
            array.data = self._data.ctypes.data_as(ctypes.POINTER(lib.llama_token_data))
        data = self._data[: len(ids)]
        data["id"] = ids
        data["logit"] = logits[ids]
        data["p"] = 0.0
        array.size = len(ids)
        array.selected = -1
        array.sorted = False
        if first is not None:
            lib.llama_sampler_apply(first, ctypes.byref(array))
        lib.llama_sampler_apply(self.chain, ctypes.byref(array))
        if not 0 <= array.selected < array.size:
            raise GenerationError("llama.cpp's sampler chain selected no token.")
        return int(array.data[array.selected].id)  # the chain sorts (and may move) the data

    def close(self) -> None:
        """Free the chain and its samplers."""
        if self.chain is not None:
            self._lib.llama_sampler_free(self.chain)
            self.chain = None
        if self._grammar is not None:
            self._lib.llama_sampler_free(self._grammar)
            self._grammar = None


class TokenCache:
    """Decodes token sequences into one llama.cpp context, remembering what its KV cache holds.

    ``tokens`` are the tokens whose keys and values are in the cache, in order (sequence 0).
    """

    def __init__(self, ctx: object, n_batch: int) -> None:
        lib = _llama_cpp()
        self._lib = lib
        self._ctx = ctx
        self._memory = lib.llama_get_memory(ctx)
        self._n_swa = max(0, lib.llama_model_n_swa(lib.llama_get_model(ctx)))
        self._n_batch = max(1, n_batch)
        self._one = (lib.llama_token * 1)()
        self._one_batch = lib.llama_batch_get_one(self._one, 1)  # points at _one: built once
        self.tokens: list[int] = []

    def forget(self) -> None:
        """Empty the KV cache (another user of the context changed it)."""
        self._lib.llama_memory_clear(self._memory, True)
        self.tokens = []

    def prefill(self, prompt: Sequence[int]) -> int:
        """Make the cache hold ``prompt`` with logits for its last token; returns how many
        prompt tokens had to be evaluated (the rest were already cached)."""
        if not prompt:
            raise GenerationError("The prompt is empty.")
        keep = 0
        for cached, wanted in zip(self.tokens, prompt, strict=False):
            if cached != wanted:
                break
            keep += 1
        keep = min(keep, len(prompt) - 1)  # the last token is evaluated again for its logits
        if keep and not self._window_reaches(keep):
            keep = 0  # sliding-window layers no longer hold what the token at `keep` attends to
        if not self._lib.llama_memory_seq_rm(self._memory, -1, keep, -1):
            self.forget()  # this cache type cannot drop a tail (recurrent models): start over
            keep = 0
        self.tokens = self.tokens[:keep]
        todo = list(prompt[keep:])
        for start in range(0, len(todo), self._n_batch):
            self._decode(todo[start : start + self._n_batch])
        return len(todo)

    def _window_reaches(self, keep: int) -> bool:
        """Whether the cache still holds every position a token at ``keep`` attends to.

        A sliding-window cache that is not full-size drops positions older than its window as
        generation goes on (llama-server's test: the oldest position held must be at most
        ``keep - n_swa``); caches without a window hold everything.
        """
        if self._n_swa <= 0:
            return True
        oldest = self._lib.llama_memory_seq_pos_min(self._memory, 0)
        return 0 <= oldest <= max(0, keep - self._n_swa)

    def append(self, token: int) -> None:
        """Evaluate one generated token."""
        self._one[0] = token
        self._check(self._lib.llama_decode(self._ctx, self._one_batch))
        self.tokens.append(token)

    def _decode(self, chunk: list[int]) -> None:
        array = (self._lib.llama_token * len(chunk))(*chunk)
        code = self._lib.llama_decode(self._ctx, self._lib.llama_batch_get_one(array, len(chunk)))
        self._check(code)
        self.tokens.extend(chunk)

    def _check(self, code: int) -> None:
        if code == 0:
            return
        self.forget()  # a failed decode leaves the cache in an unknown state
        if code == 1:
            raise GenerationError(
                "llama.cpp found no room in the context for this reply. Start a new chat or "
                "load the model with a longer context."
            )
        raise GenerationError(f"llama.cpp could not evaluate the text (llama_decode {code}).")
