"""``quantdesk serve MODEL [--port N] [--host H] [--api-key KEY]``: an OpenAI-compatible API
over one model (``/v1/models``, ``/v1/chat/completions``, ``/v1/completions``)."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

NAME = "serve"


def register(sub: argparse._SubParsersAction) -> None:
    """Add the sub-command's parser."""
    parser = sub.add_parser(NAME, help="Serve a model with an OpenAI-compatible API.")
    parser.add_argument("file", type=Path, help="the .gguf model to serve")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1: this computer only; any "
                        "other address needs --api-key)")  # fmt: skip
    parser.add_argument("--api-key", help="clients must send 'Authorization: Bearer KEY'")
    parser.add_argument("--ctx", type=int, default=4096, help="context length in tokens")
    parser.add_argument("--threads", type=int, default=0, help="0 = physical cores")
    parser.add_argument("--gpu-layers", type=int, default=-2,
                        help="-2 = as many as fit (default), -1 = all, 0 = none")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    """Load (after a child-process test load), serve until Ctrl-C."""
    from quantdesk.engine.load_plan import load_settings_for
    from quantdesk.engine.model_host import ModelHost
    from quantdesk.engine.openai_server import OpenAIServer, RunningServer, check_bind
    from quantdesk.engine.params import LoadSettings
    from quantdesk.engine.probe import ProbeCache, probe_load, raise_for_probe
    from quantdesk.paths import resolve_paths

    check_bind(args.host, args.api_key)  # before spending time on the model
    load = load_settings_for(args.file, LoadSettings(
        n_ctx=args.ctx, n_threads=args.threads, n_gpu_layers=args.gpu_layers))  # fmt: skip
    raise_for_probe(probe_load(args.file, load, cache=ProbeCache(resolve_paths().probe_cache)))
    host = ModelHost(args.file, load)
    model_id = args.file.stem
    running = RunningServer(OpenAIServer(host, model_id, args.api_key), args.host, args.port)
    print(f"Serving {model_id} at {running.url} (Ctrl-C stops)", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    running.stop()
    host.close()
    print("Stopped.", file=sys.stderr)
    return 0
