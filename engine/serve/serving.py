"""One model served over the OpenAI-compatible API until a signal stops it: what
``quantdesk serve`` runs, and the split-model server the Cluster page starts as a child process
(``python -m quantdesk.engine.serve.serving MODEL SETTINGS_JSON --port N --api-key KEY ...``).

Lines on standard output, in order: ``Split: …`` (a model split across RPC workers: where its
layers went), then ``Serving ID at URL (Ctrl-C stops)``; crash notices go to standard error.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from quantdesk.engine.params import LoadSettings


def serve_until_stopped(
    path: Path,
    load: LoadSettings,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    api_key: str | None = None,
    origins: Sequence[str] = (),
    probe_cache: Path | None = None,
) -> int:
    """Test-load ``path`` in a child process, load it in its model host and serve it on
    ``host:port`` until SIGINT or SIGTERM; returns the exit status (0)."""
    from quantdesk.engine.estimate.load_plan import load_settings_for
    from quantdesk.engine.run.model_host import ModelHost
    from quantdesk.engine.run.probe import ProbeCache, probe_load, raise_for_probe
    from quantdesk.engine.serve.openai_server import OpenAIServer, RunningServer, check_bind

    check_bind(host, api_key)  # before spending time on the model
    load = load_settings_for(path, load)
    raise_for_probe(probe_load(path, load, cache=ProbeCache(probe_cache)))
    model = ModelHost(path, load,  # llama.cpp runs (and may crash) in its host process
                      notice=lambda text: print(text, file=sys.stderr, flush=True))  # fmt: skip
    model_id = path.stem
    used = model.session.settings
    if used.rpc_workers:  # before the "Serving" line: what the cluster page shows
        total = (model.session.report.block_count or 0) + 1
        layers = min(max(used.n_gpu_layers, 0), total)
        print(f"Split: {layers} of {total} layers on {len(used.rpc_workers)} RPC worker(s), "
              "the rest here", flush=True)  # fmt: skip
    server = OpenAIServer(model, model_id, api_key, allowed_origins=tuple(origins))
    running = RunningServer(server, host, port)
    print(f"Serving {model_id} at {running.url} (Ctrl-C stops)", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    running.stop()
    model.close()
    print("Stopped.", file=sys.stderr)
    return 0


def main(argv: Sequence[str]) -> int:
    """The child's entry: MODEL SETTINGS_JSON [--port N] [--api-key KEY] [--parent-pid PID]
    [--probe-cache FILE]; loopback only."""
    from quantdesk.engine.child_process import exit_with_parent
    from quantdesk.engine.errors import QuantDeskError

    parser = argparse.ArgumentParser(prog="quantdesk.engine.serve.serving")
    parser.add_argument("model", type=Path)
    parser.add_argument("settings", help="the LoadSettings, as JSON")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--api-key")
    parser.add_argument("--parent-pid", type=int)
    parser.add_argument("--probe-cache", type=Path)
    args = parser.parse_args(list(argv))
    if args.parent_pid:  # started by the app: never outlive it
        exit_with_parent(args.parent_pid)
    try:
        return serve_until_stopped(args.model, LoadSettings(**json.loads(args.settings)),
                                   port=args.port, api_key=args.api_key,
                                   probe_cache=args.probe_cache)  # fmt: skip
    except QuantDeskError as exc:
        print(f"{args.model.name}: {exc.message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
