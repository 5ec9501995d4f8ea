"""The C sampling step's candidate search (engine/_sampling.c) on logits made to be hard.

The C code calls llama.cpp through addresses; here the addresses are ctypes callbacks that hand
it NumPy logits and record what reaches the "sampler chain", so the search is checked on
adversarial inputs (ties, flat logits, distributions that move between tokens) that a real model
rarely produces. That replies are identical to llama-cpp-python's own path is in
test_generation.py (real llama.cpp, both the C step and its NumPy fallback).
"""

from __future__ import annotations

import ctypes

import numpy as np
import pytest

from quantdesk.engine.run import generation

_native = pytest.importorskip("quantdesk.engine._sampling")

N_VOCAB = 262_144
NEEDED = 104  # top_k 40 + the repeat penalty's 64


class TokenData(ctypes.Structure):
    _fields_ = [("id", ctypes.c_int32), ("logit", ctypes.c_float), ("p", ctypes.c_float)]


class TokenDataArray(ctypes.Structure):
    _fields_ = [("data", ctypes.POINTER(TokenData)), ("size", ctypes.c_size_t),
                ("selected", ctypes.c_int64), ("sorted", ctypes.c_bool)]  # fmt: skip


GET_LOGITS = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int32)
APPLY = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.POINTER(TokenDataArray))
ACCEPT = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int32)


class FakeLlama:
    """Stands in for llama.cpp's logits and chain; records the candidates the chain is given."""

    def __init__(self) -> None:
        self.logits = np.zeros(N_VOCAB, np.float32)
        self.seen: list[tuple[np.ndarray, np.ndarray]] = []
        self.accepted: list[int] = []
        self._callbacks = (GET_LOGITS(self._get), APPLY(self._apply), ACCEPT(self._accept))
        self.sampler = _native.Sampler(
            *(generation._address(c) for c in self._callbacks), 1, 1, N_VOCAB, NEEDED
        )

    def _get(self, _ctx: int, _i: int) -> int:
        return self.logits.ctypes.data

    def _apply(self, _chain: int, array) -> None:  # noqa: ANN001 - ctypes pointer
        cur = array.contents
        rows = [cur.data[i] for i in range(cur.size)]
        ids = np.array([r.id for r in rows], np.int64)
        self.seen.append((ids, np.array([r.logit for r in rows], np.float32)))
        cur.selected = int(np.argmax([r.logit for r in rows]))  # greedy, as a chain would

    def _accept(self, _chain: int, token: int) -> None:
        self.accepted.append(token)

    def sample(self, logits: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
        self.logits[:] = logits
        token = self.sampler.sample()
        ids, values = self.seen[-1]
        return ids, values, token


def check(logits: np.ndarray, ids: np.ndarray, values: np.ndarray, token: int) -> None:
    """The candidates are every token at or above some threshold, at least NEEDED of them (so
    they hold every token the chain could pick), in id order, with their own logits."""
    assert len(ids) >= NEEDED
    assert np.all(np.diff(ids) > 0)
    np.testing.assert_array_equal(values, logits[ids])
    lowest = values.min()
    assert set(ids.tolist()) == set(np.flatnonzero(logits >= lowest).tolist())
    assert logits[token] == logits.max()


def test_random_logits_in_a_row() -> None:
    rng = np.random.default_rng(1)
    fake = FakeLlama()
    base = rng.normal(0, 3, N_VOCAB).astype(np.float32)
    for step in range(60):  # alike from token to token, sometimes shifted or sharpened
        logits = base + rng.normal(0, 0.5, N_VOCAB).astype(np.float32)
        logits *= 1.0 + (step % 7) * 0.3
        logits += (step % 5 - 2) * 4.0
        ids, values, token = fake.sample(logits)
        check(logits, ids, values, token)
        assert len(ids) <= 4 * NEEDED  # a surplus is cut down before the chain
    assert fake.accepted and len(fake.accepted) == 60


@pytest.mark.parametrize(
    "make",
    [
        lambda rng: np.zeros(N_VOCAB, np.float32),  # all equal: every token is a candidate
        lambda rng: np.round(rng.normal(0, 1, N_VOCAB)).astype(np.float32),  # heavy ties
        lambda rng: np.where(np.arange(N_VOCAB) < 3, 50.0, -50.0).astype(np.float32),
        lambda rng: np.sort(rng.normal(0, 2, N_VOCAB)).astype(np.float32),  # best at the end
        lambda rng: np.where(np.arange(N_VOCAB) % 997 == 0, 1.0, -1e30).astype(np.float32),
        lambda rng: rng.standard_cauchy(N_VOCAB).astype(np.float32),  # extreme outliers
    ],
    ids=["flat", "ties", "three-spikes", "sorted", "sparse", "cauchy"],
)
def test_hard_logits(make) -> None:
    rng = np.random.default_rng(2)
    fake = FakeLlama()
    warm = rng.normal(0, 3, N_VOCAB).astype(np.float32)
    for logits in (warm, make(rng), warm, make(rng) + 100.0, make(rng) - 100.0):
        ids, values, token = fake.sample(logits.astype(np.float32))
        check(logits.astype(np.float32), ids, values, token)


def test_a_chain_that_selects_nothing_is_an_error() -> None:
    fake = FakeLlama()
    fake._apply = lambda _chain, array: None  # selected stays -1
    fake._callbacks = (fake._callbacks[0], APPLY(fake._apply), fake._callbacks[2])
    fake.sampler = _native.Sampler(
        *(generation._address(c) for c in fake._callbacks), 1, 1, N_VOCAB, NEEDED
    )
    fake.logits[:] = np.random.default_rng(3).normal(0, 1, N_VOCAB)
    with pytest.raises(RuntimeError, match="selected no token"):
        fake.sampler.sample()
    assert fake.accepted == []
