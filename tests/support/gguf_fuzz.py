"""Mutated GGUF headers for fuzzing the header reader (shared by the test and bench/fuzz_gguf.py).

Seeds are real GGUF files written by tests/support/tiny_models.py (plain, with a chat template
and extra special tokens, quantized, with bad metadata values). Each input is one whole seed
file with a few mutations chosen by Hypothesis, placed in its header (or just past it): bit
flips, bytes overwritten, integer fields replaced by extreme values (the counts and lengths a
crafted file would lie about), bytes inserted or deleted, and truncation.

:func:`check` is the property: the reader returns a header or raises ``InvalidGGUF``, nothing
else, within a time bound; and a header it accepts can be summarised without an exception.
"""

from __future__ import annotations

import signal
import struct
from collections.abc import Callable
from pathlib import Path

from hypothesis import strategies as st

from quantdesk.engine.errors import InvalidGGUF
from quantdesk.engine.gguf.model_info import summarize
from quantdesk.engine.gguf.reader import read_header
from tests.support.tiny_models import (
    write_tiny_chat_model,
    write_tiny_model,
    write_tiny_model_with_bad_metadata,
)

#: Extreme values a crafted header may put into a count, length, type or offset field.
EXTREMES = (0, 1, 2, 3, 7, 0xFF, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 2**32, 2**40,
            2**62, 2**63 - 1, 2**63, 2**64 - 1)  # fmt: skip
TIME_LIMIT_S = 2.0


class Hang(Exception):
    """The reader took longer than the time limit on one input."""


def write_seeds(folder: Path) -> list[tuple[bytes, int]]:
    """The seed files' bytes and where their tensor data starts."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [
        write_tiny_model(folder / "plain.gguf"),
        write_tiny_chat_model(folder / "chat.gguf"),
        write_tiny_model(folder / "q8.gguf", quant="Q8_0", n_layer=1),
        write_tiny_model_with_bad_metadata(folder / "bad.gguf"),
    ]
    return [(data, read_header(data).data_offset) for data in (p.read_bytes() for p in paths)]


def mutations(seed_count: int) -> st.SearchStrategy[tuple[int, list[tuple]]]:
    """(seed index, list of mutations) for Hypothesis."""
    position = st.integers(min_value=0, max_value=1 << 20)
    one = st.one_of(
        st.tuples(st.just("flip"), position, st.integers(0, 7)),
        st.tuples(st.just("byte"), position, st.integers(0, 255)),
        st.tuples(st.just("u32"), position, st.sampled_from([v & 0xFFFFFFFF for v in EXTREMES])),
        st.tuples(st.just("u64"), position, st.sampled_from(EXTREMES)),
        st.tuples(st.just("insert"), position, st.binary(min_size=1, max_size=16)),
        st.tuples(st.just("delete"), position, st.integers(1, 16)),
        st.tuples(st.just("truncate"), position, st.just(0)),
    )
    return st.tuples(st.integers(0, seed_count - 1), st.lists(one, min_size=1, max_size=4))


def mutate(seed: tuple[bytes, int], steps: list[tuple]) -> bytes:
    """Apply ``steps`` (from :func:`mutations`) to a seed; positions wrap around its header
    (and the first bytes after it), where a crafted file would lie."""
    data, header_end = bytearray(seed[0]), seed[1] + 64
    for kind, pos, arg in steps:
        if not data:
            break
        at = pos % min(len(data), header_end)
        if kind == "flip":
            data[at] ^= 1 << arg
        elif kind == "byte":
            data[at] = arg
        elif kind == "u32" and at + 4 <= len(data):
            data[at : at + 4] = struct.pack("<I", arg)
        elif kind == "u64" and at + 8 <= len(data):
            data[at : at + 8] = struct.pack("<Q", arg)
        elif kind == "insert":
            data[at:at] = arg
        elif kind == "delete":
            del data[at : at + arg]
        elif kind == "truncate":
            del data[at:]
    return bytes(data)


def _alarm(_signum: int, _frame: object) -> None:
    raise Hang(f"no answer within {TIME_LIMIT_S} s")


def check(data: bytes, on_result: Callable[[str], None] | None = None) -> None:
    """The property: a header or InvalidGGUF, within the time limit; an accepted header can be
    summarised. Anything else propagates (a crash of the reader, or :class:`Hang`)."""
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, TIME_LIMIT_S)
    try:
        try:
            header = read_header(data)
        except InvalidGGUF:
            outcome = "invalid"
        else:
            summarize(header)
            outcome = "accepted"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    if on_result is not None:
        on_result(outcome)
