"""Run the quality check (``quality.measure_quality``) in a child process.

Loading two models could still abort llama.cpp on a damaged file, so the measurement runs
beside the app, never inside it. Child usage:
``python -m quantdesk.engine.quantize.quality_run JOB``.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from quantdesk.engine.child_process import progress_event, run_child_job, serve_job
from quantdesk.engine.quantize.quality import QualityReport, measure_quality

MODULE = "quantdesk.engine.quantize.quality_run"


def run_quality_check(
    source: str | Path,
    result: str | Path,
    *,
    text: str | None = None,
    threads: int = 0,
    n_ctx: int = 512,
    max_chunks: int | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    cancel: threading.Event | None = None,
) -> QualityReport:
    """Perplexity of both models and KL divergence of the result against the source, on
    ``text`` (None: the bundled sample)."""
    job = {
        "source": str(source),
        "result": str(result),
        "text": text,
        "threads": threads,
        "n_ctx": n_ctx,
        "max_chunks": max_chunks,
    }
    final = run_child_job(
        MODULE, job, what="The quality check", on_progress=on_progress, cancel=cancel
    )
    return QualityReport(**final["report"])


def _measure(job: dict) -> dict:
    report = measure_quality(
        Path(job["source"]),
        Path(job["result"]),
        text=job["text"],
        n_ctx=job["n_ctx"],
        threads=job["threads"],
        max_chunks=job["max_chunks"],
        progress=progress_event,
    )
    return {"report": asdict(report)}


def main(argv: list[str]) -> int:
    """Child entry point."""
    return serve_job(_measure, "The quality check")


if __name__ == "__main__":
    sys.exit(main(sys.argv))
