"""Issue 20, item 8: web pages cannot drive the local API (curl with a foreign Origin, with
text/plain, with a foreign Host: all refused), allowed origins get CORS, the official client
on 127.0.0.1 still works, and bad requests are 400s in OpenAI's format, not 500s."""

from __future__ import annotations

import json
import socket
import subprocess
import time

import pytest

from quantdesk.engine.events import STOP_USER, GenerationStats
from quantdesk.engine.params import LoadSettings
from quantdesk.engine.run.model_host import ModelHost
from quantdesk.engine.serve._api_guard import RequestPolicy, host_name
from quantdesk.engine.serve.openai_server import OpenAIServer, RunningServer
from tests.support.tiny_models import write_tiny_chat_model

ALLOWED = "http://app.example:3000"
CHAT = {"model": "tiny-chat", "messages": [{"role": "user", "content": "Hello"}],
        "max_tokens": 4}  # fmt: skip


class _KeptJobs(ModelHost):
    """The real host, keeping each job's final figures (to see how it ended)."""

    def submit(self, messages, sampling, *, raw=False, thinking_apart=False,  # noqa: ANN001, ANN201
               events=None, tools=None):  # noqa: ANN001
        ended: list = []
        self.jobs.append(ended)

        class Watch:
            def put(self, item: object) -> None:
                if isinstance(item, GenerationStats):
                    ended.append(item)
                events.put(item)

        return super().submit(messages, sampling, raw=raw, thinking_apart=thinking_apart,
                              tools=tools,
                              events=Watch())


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    path = write_tiny_chat_model(tmp_path_factory.mktemp("guard") / "chat.gguf",
                                 n_ctx_train=16384)  # fmt: skip
    host = _KeptJobs(path, LoadSettings(n_ctx=16384, n_threads=1, n_gpu_layers=0))
    host.jobs = []
    running = RunningServer(OpenAIServer(host, "tiny-chat", allowed_origins=(ALLOWED,)))
    yield running, host
    running.stop()
    host.close()


def _curl(url: str, *args: str, body: str | None = None) -> tuple[int, dict, str]:
    """(status, headers, body) of one request with the real curl."""
    cmd = ["curl", "-s", "-i", "--max-time", "60", url, *args]
    if body is not None:
        cmd += ["--data-binary", "@-"]  # from stdin: a 200 KB body is too long for argv
    out = subprocess.run(cmd, input=body, capture_output=True, text=True, timeout=90).stdout
    head, _, text = out.replace("\r\n", "\n").partition("\n\n")
    lines = head.splitlines()
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, text


def test_foreign_origin_text_plain_and_foreign_host_are_refused(served) -> None:
    running, host = served
    url = running.url + "/chat/completions"
    before = len(host.jobs)
    status, _, text = _curl(url, "-H", "Origin: http://evil.example",
                            "-H", "Content-Type: application/json", body=json.dumps(CHAT))
    assert status == 403 and json.loads(text)["error"]["code"] == "origin_not_allowed"
    status, _, text = _curl(url, "-H", "Content-Type: text/plain", body=json.dumps(CHAT))
    assert status == 415 and "application/json" in json.loads(text)["error"]["message"]
    status, _, text = _curl(url, "-H", f"Host: evil.example:{running.port}",
                            "-H", "Content-Type: application/json", body=json.dumps(CHAT))
    assert status == 400 and json.loads(text)["error"]["code"] == "invalid_host"
    assert len(host.jobs) == before  # none of them reached the model


def test_an_allowed_origin_gets_cors_and_others_no_preflight(served) -> None:
    running, _host = served
    url = running.url + "/chat/completions"
    preflight = ("-X", "OPTIONS", "-H", "Access-Control-Request-Method: POST")
    status, headers, _ = _curl(url, *preflight, "-H", f"Origin: {ALLOWED}")
    assert status == 204 and headers["access-control-allow-origin"] == ALLOWED
    status, headers, _ = _curl(url, *preflight, "-H", "Origin: http://evil.example")
    assert status == 403 and "access-control-allow-origin" not in headers
    status, headers, text = _curl(url, "-H", f"Origin: {ALLOWED}",
                                  "-H", "Content-Type: application/json", body=json.dumps(CHAT))
    assert status == 200 and headers["access-control-allow-origin"] == ALLOWED
    assert json.loads(text)["choices"][0]["message"]["content"] is not None


def test_the_official_client_on_loopback_still_works(served) -> None:
    openai = pytest.importorskip("openai")
    running, _host = served
    client = openai.OpenAI(base_url=running.url, api_key="none", max_retries=0, timeout=60)
    reply = client.chat.completions.create(**CHAT)
    assert reply.choices[0].message.role == "assistant"
    local = running.url.replace("127.0.0.1", "localhost")  # the name, not the number
    assert openai.OpenAI(base_url=local, api_key="x", max_retries=0).models.list().data


def test_deep_json_and_a_prompt_past_the_context_are_400s_in_json(served) -> None:
    running, _host = served
    url = running.url + "/chat/completions"
    deep = "[" * 100_000 + "]" * 100_000
    status, headers, text = _curl(url, "-H", "Content-Type: application/json", body=deep)
    assert status == 400 and headers["content-type"].startswith("application/json")
    assert "nested too deeply" in json.loads(text)["error"]["message"]
    long = {**CHAT, "messages": [{"role": "user", "content": "Hello there " * 20_000}]}
    status, _, text = _curl(url, "-H", "Content-Type: application/json", body=json.dumps(long))
    assert status == 400 and json.loads(text)["error"]["code"] == "context_length_exceeded"


def test_a_client_that_disconnects_stops_its_generation(served) -> None:
    """A non-streamed request whose client went away kept the model busy to its end (10 such
    clients blocked it for ~80 s)."""
    running, host = served
    wanted = 16_000
    body = json.dumps({**CHAT, "max_tokens": wanted}).encode()
    request = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:{running.port}\r\n"
               f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    before = len(host.jobs)
    with socket.create_connection(("127.0.0.1", running.port)) as conn:
        conn.sendall(request + body)
        deadline = time.monotonic() + 30
        while len(host.jobs) == before:  # the job was queued: the client leaves
            assert time.monotonic() < deadline
            time.sleep(0.005)
    ended = host.jobs[before]
    deadline = time.monotonic() + 120
    while not ended:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert ended[0].stop_reason == STOP_USER, ended[0]  # stopped, not run to its end
    assert ended[0].completion_tokens < wanted


@pytest.mark.parametrize(("bind", "host", "ok"), [
    ("127.0.0.1", "127.0.0.1:8080", True), ("127.0.0.1", "localhost:8080", True),
    ("127.0.0.1", "[::1]:8080", True), ("127.0.0.1", "evil.example:8080", False),
    ("127.0.0.1", "127.0.0.1.evil.example", False), ("0.0.0.0", "192.168.1.5:8080", True),
    ("192.168.1.5", "192.168.1.5:8080", True), ("192.168.1.5", "evil.example", False),
])  # fmt: skip
def test_host_names_the_server_accepts(bind: str, host: str, ok: bool) -> None:
    assert RequestPolicy.of(bind).host_allowed(host) is ok
    assert host_name("[::1]:80") == "::1" and host_name("Example.COM") == "example.com"


def test_origins_from_the_setting_and_the_wildcard() -> None:
    policy = RequestPolicy.of("127.0.0.1", [" https://App.example/ ", ""])
    assert policy.origin_allowed("https://app.example")
    assert not policy.origin_allowed("https://app.example.evil")
    assert RequestPolicy.of("127.0.0.1", ["*"]).origin_allowed("http://anything")
    assert not RequestPolicy.of("127.0.0.1").origin_allowed("null")


def test_quantdesk_serve_takes_allowed_origins() -> None:
    import sys

    done = subprocess.run([sys.executable, "-m", "quantdesk", "serve", "--help"],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0 and "--allow-origin" in done.stdout


def test_a_connection_that_never_finishes_its_headers_is_closed(tmp_path) -> None:  # noqa: ANN001
    """Half-open connections were held for ever (1,000 of them): they are closed once idle."""
    path = write_tiny_chat_model(tmp_path / "chat.gguf")
    host = ModelHost(path, LoadSettings(n_ctx=256, n_threads=1, n_gpu_layers=0))
    running = RunningServer(OpenAIServer(host, "tiny-chat"), idle_timeout_s=1.0)
    try:
        held = []
        for _ in range(50):
            conn = socket.create_connection(("127.0.0.1", running.port))
            conn.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # no end
            held.append(conn)
        for conn in held:
            conn.settimeout(30)
            assert conn.recv(1024) == b""  # the server closed it
            conn.close()
        status, _, _ = _curl(running.url + "/models")
        assert status == 200  # and it still serves
    finally:
        running.stop()
        host.close()
