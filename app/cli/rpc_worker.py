"""``quantdesk rpc-worker [--host H] [--port N] [--threads N] [--cache]``: lend this computer's
CPU and memory to a model split across machines, with llama.cpp's own RPC server."""

from __future__ import annotations

import argparse
import sys

NAME = "rpc-worker"

UNPROTECTED = (
    "warning: llama.cpp's RPC protocol has no authentication and no encryption. Anyone who can "
    "reach {endpoint} can use this computer's memory and CPU through it. Listen on another "
    "address than 127.0.0.1 only on a network you trust."
)


def register(sub: argparse._SubParsersAction) -> None:
    """Add the sub-command's parser."""
    parser = sub.add_parser(
        NAME, help="Lend this computer to a model split across machines (llama.cpp RPC)."
    )
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1: this computer only; "
                        "RPC is unauthenticated: see the warning for other addresses)")  # fmt: skip
    parser.add_argument("--port", type=int, default=50052, help="port (default 50052)")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0 = physical cores)")
    parser.add_argument("--cache", action="store_true",
                        help="keep received tensors in a local cache, so that a model loads "
                        "faster the next time")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    """Serve until the process is stopped (Ctrl-C)."""
    from quantdesk.config.paths import resolve_paths
    from quantdesk.engine.cluster.rpc import (
        is_loopback,
        parse_endpoint,
        rpc_available,
        serve_worker,
    )
    from quantdesk.engine.params import default_threads

    endpoint = parse_endpoint(f"{args.host}:{args.port}")
    if not rpc_available():
        print("This llama.cpp build has no RPC backend (GGML_RPC=ON): run scripts/setup_env.sh "
              "again.", file=sys.stderr)  # fmt: skip
        return 1
    if not is_loopback(args.host):
        print(UNPROTECTED.format(endpoint=endpoint), file=sys.stderr)
    threads = args.threads if args.threads > 0 else default_threads()
    cache = resolve_paths().cache_dir / "rpc" if args.cache else None
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
    print(f"RPC worker listening on {endpoint} with {threads} threads (Ctrl-C stops)", flush=True)
    serve_worker(args.host, args.port, threads, cache)
    return 0
