"""A remote OpenAI-compatible endpoint (a second QuantDesk server on loopback stands in for
llama-server, Ollama or LM Studio): its models, a streamed chat, a wrong key, no server."""

from __future__ import annotations

import json
import socket
import threading

import pytest

from quantdesk.engine.chat.templates import Message
from quantdesk.engine.events import STOP_USER, GenerationStats, TokenText
from quantdesk.engine.params import LoadSettings, SamplingSettings
from quantdesk.engine.remote.models import Endpoint, RemoteError
from quantdesk.engine.run.model_host import ModelHost
from quantdesk.engine.serve.openai_server import OpenAIServer, RunningServer
from tests.support.tiny_models import write_tiny_chat_model

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


class _CutStream:
    """A real HTTP server whose chat stream stops mid-reply: two chunks, then the connection
    is closed without the final chunk or [DONE] (a dropped link, a crashed server)."""

    def __init__(self, *, abrupt: bool) -> None:
        import http.server

        abrupt_close = abrupt

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_args: object) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's API
                self.rfile.read(int(self.headers["Content-Length"]))
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                if abrupt_close:  # chunked, cut before its last chunk: a protocol error
                    self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for word in ("Hello", " there"):
                    event = json.dumps({"choices": [{"delta": {"content": word}}]})
                    data = f"data: {event}\n\n".encode()
                    if abrupt_close:
                        data = f"{len(data):x}\r\n".encode() + data + b"\r\n"
                    self.wfile.write(data)
                    self.wfile.flush()
                self.close_connection = True

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("abrupt", [True, False], ids=["connection-dropped", "stream-unended"])
def test_a_reply_cut_off_mid_stream_is_an_error_not_a_finished_reply(abrupt: bool) -> None:
    """Issue 20, item 11: a dropped connection was reported as a normal end ("eos")."""
    from quantdesk.engine.remote.models import RemoteStreamCut

    server = _CutStream(abrupt=abrupt)
    try:
        events = Endpoint(server.url).stream_chat(
            "m", [Message("user", "Hi")], GREEDY, threading.Event())
        texts: list[str] = []
        with pytest.raises(RemoteStreamCut, match="kept, marked unfinished"):
            for event in events:
                assert not isinstance(event, GenerationStats), "passed for a whole reply"
                texts.append(event.text)
        assert "".join(texts) == "Hello there"  # what arrived is not lost
    finally:
        server.close()
