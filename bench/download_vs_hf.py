"""Download throughput on loopback: QuantDesk's transfer vs huggingface_hub's hf_hub_download.

    .venv/bin/python bench/download_vs_hf.py [--mb 256] [--runs 3]

Serves one random file of --mb MB from the fake hub (tests/support/fake_hub.py), downloads it with
both, alternating, and prints MB/s (medians) and the ratio. Ours includes what hf_hub_download
does not do: streaming sha256 (on its own thread) and the check before the atomic rename.
A benchmark, not a test: no asserts. Results: docs/benchmarks.md, "Downloads".
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from huggingface_hub import __version__ as hf_version  # noqa: E402
from huggingface_hub import hf_hub_download  # noqa: E402

from quantdesk.engine.downloads._transfer import download_file  # noqa: E402
from quantdesk.engine.hub.client import HubClient  # noqa: E402
from tests.support.fake_hub import FakeHub  # noqa: E402
from tests.support.gguf_fixtures import VT, build_gguf  # noqa: E402

REPO = "bench/big-file"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=256)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="qd-dl-bench-"))
    payload = work / "big.gguf"
    with payload.open("wb") as f:
        # a valid (tensor-less) GGUF header, so the fake hub can describe the file, then noise
        f.write(build_gguf([("general.architecture", VT.STRING, "llama")]))
        for _ in range(args.mb):
            f.write(os.urandom(1 << 20))
    size = payload.stat().st_size
    ours, theirs = [], []
    with FakeHub() as hub:
        hub.add_repo(REPO, {"big.gguf": payload})
        os.environ["HF_ENDPOINT"] = hub.endpoint
        for run in range(args.runs):
            dest = work / f"ours-{run}"
            started = time.perf_counter()
            download_file(HubClient(endpoint=hub.endpoint), REPO, "big.gguf", dest)
            ours.append(size / (time.perf_counter() - started) / 1e6)
            shutil.rmtree(dest)
            cache = work / f"hf-{run}"
            started = time.perf_counter()
            hf_hub_download(REPO, "big.gguf", cache_dir=cache, endpoint=hub.endpoint)
            theirs.append(size / (time.perf_counter() - started) / 1e6)
            shutil.rmtree(cache)
    shutil.rmtree(work)
    o, t = statistics.median(ours), statistics.median(theirs)
    print(f"machine: {_cpu_name()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(f"huggingface_hub {hf_version}, fake hub and both clients in one process on loopback")
    print(f"file: {args.mb} MB, runs: {args.runs}")
    print(f"QuantDesk download_file: {o:.0f} MB/s (runs {', '.join(f'{x:.0f}' for x in ours)})")
    print(f"hf_hub_download:         {t:.0f} MB/s (runs {', '.join(f'{x:.0f}' for x in theirs)})")
    print(f"ratio: {o / t:.2f}x")


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


if __name__ == "__main__":
    main()
