"""Fuzzing the GGUF header reader with Hypothesis: mutated real headers give a header or
InvalidGGUF, nothing else, in bounded time (bench/fuzz_gguf.py runs the 10,000+ input version)."""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from tests.support.gguf_fuzz import check, mutate, mutations, write_seeds

SEEDS = write_seeds(Path(tempfile.mkdtemp(prefix="quantdesk-fuzz-")))  # once per session
OUTCOMES: Counter = Counter()


@settings(max_examples=1500, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])  # fmt: skip
@given(mutations(len(SEEDS)))
def test_mutated_headers_are_read_or_refused_cleanly(case) -> None:
    seed, steps = case
    check(mutate(SEEDS[seed], steps), lambda outcome: OUTCOMES.update([outcome]))


@pytest.mark.parametrize("seed", range(len(SEEDS)))
def test_every_truncation_of_a_header_is_refused_cleanly(seed: int) -> None:
    data, header_end = SEEDS[seed]
    for end in range(0, header_end + 64, max(1, header_end // 300)):
        check(data[:end])


def test_the_fuzzer_reaches_both_outcomes() -> None:
    """Not a vacuous property: some mutations are still valid headers, most are refused."""
    assert OUTCOMES["invalid"] > 100 and OUTCOMES["accepted"] > 10, OUTCOMES
