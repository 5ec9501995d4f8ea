"""Model index rescan: 1 000 GGUF headers indexed cold, then rescanned warm.

    .venv/bin/python bench/rescan.py [--count 1000] [--runs 5] [--dir DIR]

Writes ``--count`` distinct tiny GGUF models (real llama-architecture files from
tests/support/tiny_models.py, 131 kB each; only their headers matter here) into a temp folder
spread over 20 subfolders, then times, as the app runs them:

* discovery: walking the watched folder (``discover_models(watched=[...])``, with an empty fake
  home so no other tool's store is scanned);
* cold refresh: an empty index, every header read and summarised, one transaction;
* warm refresh (``--runs`` times): nothing changed, one ``stat`` per file, one transaction;
* an incremental refresh after 10 files were rewritten and 5 deleted.

The files were just written, so the cold figure reads headers from the page cache: it measures
parsing and SQLite, not a cold disk. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from quantdesk.engine.library._model_index import ModelIndex  # noqa: E402
from quantdesk.engine.library.discovery import discover_models  # noqa: E402
from tests.support.tiny_models import write_tiny_model  # noqa: E402


def write_models(folder: Path, count: int) -> list[Path]:
    """``count`` distinct tiny models (own seed and name each) under ``folder``."""
    paths = []
    for i in range(count):
        path = folder / f"group-{i % 20:02d}" / f"model-{i:04d}.Q8_0.gguf"
        path.parent.mkdir(parents=True, exist_ok=True)
        paths.append(write_tiny_model(path, seed=i, name=f"bench-{i:04d}", quant="Q8_0"))
    return paths


def timed_scan(index: ModelIndex, home: Path, folder: Path) -> tuple[float, float, object]:
    """(discovery seconds, refresh seconds, refresh report)."""
    t0 = time.perf_counter()
    found = discover_models(home=home, env={}, watched=[folder])
    t1 = time.perf_counter()
    report = index.refresh(found)
    return t1 - t0, time.perf_counter() - t1, report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--dir", type=Path, help="Work folder (default: a temp folder).")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        root = Path(tmp)
        home, folder = root / "home", root / "models"
        home.mkdir()
        t = time.perf_counter()
        paths = write_models(folder, args.count)
        written = time.perf_counter() - t
        size = sum(p.stat().st_size for p in paths)
        index = ModelIndex(root / "index.sqlite3")

        d_cold, r_cold, cold = timed_scan(index, home, folder)
        assert len(cold.added) == args.count and cold.headers_read == args.count, cold
        warm = []
        for _ in range(args.runs):
            d, r, rep = timed_scan(index, home, folder)
            assert rep.unchanged == args.count and rep.headers_read == 0, rep
            warm.append((d, r))

        for p in paths[:10]:
            st = p.stat()
            os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
        for p in paths[10:15]:
            p.unlink()
        d_inc, r_inc, inc = timed_scan(index, home, folder)
        assert (len(inc.changed), len(inc.removed), inc.headers_read) == (10, 5, 10), inc
        index.close()

    warm_total = [d + r for d, r in warm]
    print(f"{args.count} files, {size / 1e6:.0f} MB written in {written:.1f} s; "
          f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs\n")  # fmt: skip
    print("| scan | discovery (walk) | index refresh | total |")
    print("|---|---:|---:|---:|")
    print(f"| cold, {args.count} headers read | {d_cold * 1e3:.0f} ms | {r_cold * 1e3:.0f} ms "
          f"| {(d_cold + r_cold) * 1e3:.0f} ms |")  # fmt: skip
    print(f"| warm, median of {args.runs} | {statistics.median(d for d, _ in warm) * 1e3:.0f} ms "
          f"| {statistics.median(r for _, r in warm) * 1e3:.0f} ms "
          f"| {statistics.median(warm_total) * 1e3:.0f} ms |")  # fmt: skip
    print(f"| warm, slowest of {args.runs} | | | {max(warm_total) * 1e3:.0f} ms |")
    print(f"| 10 changed + 5 removed | {d_inc * 1e3:.0f} ms | {r_inc * 1e3:.0f} ms "
          f"| {(d_inc + r_inc) * 1e3:.0f} ms |")  # fmt: skip
    ok = max(warm_total) < 1.0
    print(f"\nwarm rescan under 1 s: {'yes' if ok else 'NO'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
