"""A remote OpenAI-compatible endpoint (a second QuantDesk server on loopback stands in for
llama-server, Ollama or LM Studio): its models, a streamed chat, a wrong key, no server."""

from __future__ import annotations

import socket
import threading

import pytest

from quantdesk.engine.events import STOP_USER, GenerationStats, TokenText
from quantdesk.engine.model_host import ModelHost
from quantdesk.engine.openai_server import OpenAIServer, RunningServer
from quantdesk.engine.params import LoadSettings, SamplingSettings
from quantdesk.engine.remote import Endpoint, RemoteError
from quantdesk.engine.templates import Message
from tests.tiny_models import write_tiny_chat_model

GREEDY = SamplingSettings(temperature=0.0, max_tokens=16)


@pytest.fixture(scope="module")
def remote(tmp_path_factory: pytest.TempPathFactory):
    path = write_tiny_chat_model(tmp_path_factory.mktemp("remote") / "far.gguf")
    host = ModelHost(path, LoadSettings(n_ctx=1024, n_threads=1, n_gpu_layers=0))
    running = RunningServer(OpenAIServer(host, "far-model", api_key="k"))
    yield running, host
    running.stop()
    host.close()


def test_models_and_a_streamed_chat_match_the_model_there(remote) -> None:
    running, host = remote
    endpoint = Endpoint(running.url, "k")
    assert endpoint.models() == ["far-model"]
    messages = [Message("user", "Hello there")]
    events = list(endpoint.stream_chat("far-model", messages, GREEDY, threading.Event()))
    text = "".join(e.text for e in events if isinstance(e, TokenText))
    stats = events[-1]
    assert isinstance(stats, GenerationStats) and stats.completion_tokens <= 16
    there = list(host.submit(messages, GREEDY).results())
    assert text == "".join(e.text for e in there if isinstance(e, TokenText))
    assert stats.prompt_tokens == there[-1].prompt_tokens


def test_stopping_closes_the_stream(remote) -> None:
    running, _host = remote
    stop = threading.Event()
    seen = 0
    events = Endpoint(running.url, "k").stream_chat(
        "far-model", [Message("user", "Long story")], GREEDY.with_(max_tokens=200), stop)
    for event in events:
        if isinstance(event, TokenText):
            seen += 1
            if seen == 2:
                stop.set()
        else:
            stats = event
    assert stats.stop_reason == STOP_USER and seen <= 3


def test_a_wrong_key_and_no_server_are_clear_errors(remote) -> None:
    running, _host = remote
    with pytest.raises(RemoteError, match="refused the API key"):
        Endpoint(running.url, "wrong").models()
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(RemoteError, match="Could not reach"):
        Endpoint(f"http://127.0.0.1:{port}/v1").models()
    with pytest.raises(RemoteError, match="not an http"):
        Endpoint("ftp://example/v1").models()
