"""``quantdesk serve MODEL [--port N] [--host H] [--api-key KEY]``: an OpenAI-compatible API
over one model (``/v1/models``, ``/v1/chat/completions``, ``/v1/completions``)."""

from __future__ import annotations

import argparse
from pathlib import Path

NAME = "serve"


def add_rpc_options(parser: argparse.ArgumentParser) -> None:
    """``--rpc HOST:PORT,...`` and ``--split A,B,...``: a model split across RPC workers."""
    parser.add_argument("--rpc", default="",
                        help="llama.cpp RPC workers (quantdesk rpc-worker) that take the "
                        "offloaded layers, comma-separated HOST:PORT")  # fmt: skip
    parser.add_argument("--split", default="",
                        help="share of the offloaded layers per worker, e.g. 1,1 (default: "
                        "by the memory each reports)")  # fmt: skip


def rpc_settings(args: argparse.Namespace) -> dict:
    """The LoadSettings fields of ``--rpc`` and ``--split``."""
    from quantdesk.engine.cluster.rpc import RPCError, parse_endpoint

    workers = tuple(parse_endpoint(w) for w in args.rpc.split(",") if w.strip())
    try:
        split = tuple(float(x) for x in args.split.split(",") if x.strip())
    except ValueError as exc:
        raise RPCError(f"--split takes numbers such as 1,1, not '{args.split}'.") from exc
    if split and len(split) != len(workers):
        raise RPCError(f"--split has {len(split)} shares for {len(workers)} workers.")
    return {"rpc_workers": workers, "tensor_split": split}


def register(sub: argparse._SubParsersAction) -> None:
    """Add the sub-command's parser."""
    parser = sub.add_parser(NAME, help="Serve a model with an OpenAI-compatible API.")
    parser.add_argument("file", type=Path, help="the .gguf model to serve")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1: this computer only; any "
                        "other address needs --api-key)")  # fmt: skip
    parser.add_argument("--api-key", help="clients must send 'Authorization: Bearer KEY'")
    parser.add_argument("--allow-origin", action="append", default=[], metavar="ORIGIN",
                        help="a web page's origin (https://app.example) that may call the API; "
                        "repeat for more, * for all (default: none, like OLLAMA_ORIGINS)")
    parser.add_argument("--ctx", type=int, default=4096, help="context length in tokens")
    parser.add_argument("--threads", type=int, default=0, help="0 = physical cores")
    parser.add_argument("--gpu-layers", type=int, default=-2,
                        help="-2 = as many as fit (default), -1 = all, 0 = none")  # fmt: skip
    add_rpc_options(parser)


def run(args: argparse.Namespace) -> int:
    """Load (after a child-process test load), serve until Ctrl-C."""
    from quantdesk.config.paths import resolve_paths
    from quantdesk.engine.params import LoadSettings
    from quantdesk.engine.serve.serving import serve_until_stopped

    load = LoadSettings(n_ctx=args.ctx, n_threads=args.threads, n_gpu_layers=args.gpu_layers,
                        **rpc_settings(args))  # fmt: skip
    return serve_until_stopped(args.file, load, host=args.host, port=args.port,
                               api_key=args.api_key, origins=args.allow_origin,
                               probe_cache=resolve_paths().probe_cache)  # fmt: skip
