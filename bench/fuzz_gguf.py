"""Fuzz the GGUF header reader: mutated real headers, counted outcomes, crashes, hangs, memory.

    .venv/bin/python bench/fuzz_gguf.py [--inputs 10000] [--seed 0]

Hypothesis generates ``--inputs`` mutated headers from real GGUF files (tests/support/gguf_fuzz.py:
bit flips, overwritten bytes, extreme counts/lengths/offsets, insertions, deletions,
truncations). Each goes through the reader the app uses on every file it meets
(``read_header``, then ``summarize`` when accepted) under a time limit. Prints how many inputs
were read and refused, crashes (any exception but InvalidGGUF) and hangs (over the limit), the
slowest input, the largest allocation one input caused (tracemalloc) and the peak resident
memory of the process. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hypothesis import HealthCheck, Phase, given, seed, settings  # noqa: E402

from tests.support.gguf_fuzz import TIME_LIMIT_S, Hang, check, mutate, mutations, write_seeds  # noqa: E402


def main(argv: list[str]) -> int:
    """Run the fuzzer and print the tally."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inputs", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    seeds = write_seeds(Path(tempfile.mkdtemp(prefix="quantdesk-fuzz-")))
    tally: Counter = Counter()
    crashes: list[str] = []
    slowest = [0.0]
    biggest = [0]  # the largest allocation peak one input caused (tracemalloc)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    @seed(args.seed)
    @settings(max_examples=args.inputs, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(mutations(len(seeds)))
    def one(case: tuple) -> None:
        data = mutate(seeds[case[0]], case[1])
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        started = time.perf_counter()
        try:
            check(data, lambda outcome: tally.update([outcome]))
        except Hang:
            tally["hang"] += 1
        except Exception as exc:  # noqa: BLE001 - a crash is what this counts
            tally["crash"] += 1
            crashes.append(f"{type(exc).__name__}: {exc} (seed {case[0]}, steps {case[1]})")
        slowest[0] = max(slowest[0], time.perf_counter() - started)
        biggest[0] = max(biggest[0], tracemalloc.get_traced_memory()[1] - base)

    began = time.perf_counter()
    tracemalloc.start()
    one()
    tracemalloc.stop()
    wall = time.perf_counter() - began
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tried = sum(tally.values())
    print(f"inputs tried: {tried:,} ({len(seeds)} seed files, Hypothesis seed {args.seed})")
    print(f"read as valid headers: {tally['accepted']:,}; refused with InvalidGGUF: "
          f"{tally['invalid']:,}")  # fmt: skip
    print(f"crashes (any other exception): {tally['crash']}; hangs (over {TIME_LIMIT_S} s): "
          f"{tally['hang']}")  # fmt: skip
    print(f"slowest input: {slowest[0] * 1000:.1f} ms; largest allocation for one input: "
          f"{biggest[0] / 2**20:.2f} MiB (inputs up to {max(len(d) for d, _ in seeds) / 1024:.0f}"
          f" KiB); wall: {wall:.1f} s")
    print(f"peak RSS of the process: {peak / 1024:.0f} MiB (before fuzzing: "
          f"{rss_before / 1024:.0f} MiB; Hypothesis keeps its own records)")
    for line in crashes[:10]:
        print("  " + line)
    return 1 if crashes or tally["hang"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
