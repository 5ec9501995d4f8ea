"""The OpenAI-compatible server with the official ``openai`` client, on loopback, over a real
(tiny) model: models, streamed and plain completions, errors, stop sequences, 8 clients at once."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

openai = pytest.importorskip("openai")

from quantdesk.engine.errors import QuantDeskError  # noqa: E402
from quantdesk.engine.params import LoadSettings  # noqa: E402
from quantdesk.engine.run.model_host import ModelHost  # noqa: E402
from quantdesk.engine.serve.openai_server import OpenAIServer, RunningServer, StopMatcher  # noqa: E402
from tests.support.tiny_models import write_tiny_chat_model, write_tiny_model  # noqa: E402


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    path = write_tiny_chat_model(tmp_path_factory.mktemp("srv") / "chat.gguf")
    host = ModelHost(path, LoadSettings(n_ctx=1024, n_threads=1, n_gpu_layers=0))
    running = RunningServer(OpenAIServer(host, "tiny-chat", api_key="sk-test"))
    yield running
    running.stop()
    host.close()


def _client(server: RunningServer, key: str = "sk-test"):
    return openai.OpenAI(base_url=server.url, api_key=key, max_retries=0, timeout=60)


def test_models_and_a_plain_chat_completion(server) -> None:
    client = _client(server)
    assert [m.id for m in client.models.list()] == ["tiny-chat"]
    reply = client.chat.completions.create(
        model="tiny-chat", messages=[{"role": "user", "content": "Hello"}], max_tokens=12,
        temperature=0, seed=1)  # fmt: skip
    assert reply.choices[0].message.role == "assistant" and reply.choices[0].message.content
    assert reply.choices[0].finish_reason in ("length", "stop")
    assert reply.usage.completion_tokens <= 12 and reply.usage.prompt_tokens > 0
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens


def test_streamed_chat_equals_the_plain_one(server) -> None:
    client = _client(server)
    ask = {"model": "tiny-chat", "messages": [{"role": "user", "content": "Tell me"}],
           "max_tokens": 16, "temperature": 0}  # fmt: skip
    plain = client.chat.completions.create(**ask).choices[0].message.content
    chunks = list(client.chat.completions.create(**ask, stream=True,
                                                 stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == plain
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 16
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "length" and all(f is None for f in finishes[:-1])


def test_text_completion_and_stop_sequences(server) -> None:
    client = _client(server)
    full = client.completions.create(model="tiny-chat", prompt="Once", max_tokens=24,
                                     temperature=0).choices[0].text  # fmt: skip
    assert full
    stop = full[len(full) // 2 : len(full) // 2 + 2]
    cut = client.completions.create(model="tiny-chat", prompt="Once", max_tokens=24,
                                    temperature=0, stop=[stop])  # fmt: skip
    assert cut.choices[0].text == full[: full.index(stop)]
    assert cut.choices[0].finish_reason == "stop"


def test_bad_requests_get_openai_errors(server) -> None:
    client = _client(server)
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(model="tiny-chat", messages=[], max_tokens=4)
    assert "'messages' must be a non-empty list" in str(bad.value)
    with pytest.raises(openai.BadRequestError, match="temperature"):
        client.chat.completions.create(model="tiny-chat", temperature=9,
                                       messages=[{"role": "user", "content": "x"}])  # fmt: skip
    with pytest.raises(openai.AuthenticationError):
        _client(server, key="wrong").models.list()


def test_eight_clients_at_once_all_get_whole_answers(server) -> None:
    answers: dict[int, str] = {}
    errors: list[BaseException] = []

    def ask(i: int) -> None:
        try:
            reply = _client(server).chat.completions.create(
                model="tiny-chat", messages=[{"role": "user", "content": f"Question {i}"}],
                max_tokens=20, temperature=0)  # fmt: skip
            assert reply.usage.completion_tokens == 20 or reply.choices[0].finish_reason == "stop"
            answers[i] = reply.choices[0].message.content
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors and len(answers) == 8 and all(answers.values())
    alone = _client(server).chat.completions.create(
        model="tiny-chat", messages=[{"role": "user", "content": "Question 3"}], max_tokens=20,
        temperature=0).choices[0].message.content  # fmt: skip
    assert answers[3] == alone  # queued requests do not disturb each other's context


def test_stop_matcher_holds_back_a_partial_stop() -> None:
    m = StopMatcher(["END"])
    assert m.feed("abc E") == "abc " and m.feed("N") == "" and m.feed("Dxyz") == ""
    assert m.stopped
    m = StopMatcher(["END"])
    assert m.feed("EN") == "" and m.feed("x") == "ENx" and m.flush() == ""


def test_listening_beyond_this_computer_needs_a_key(tmp_path: Path) -> None:
    from quantdesk.engine.serve.openai_server import check_bind

    check_bind("127.0.0.1", None)
    check_bind("::1", None)
    with pytest.raises(QuantDeskError, match="API key"):
        check_bind("0.0.0.0", None)
    check_bind("0.0.0.0", "secret")


def test_quantdesk_serve_from_the_command_line(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys

    model = write_tiny_model(tmp_path / "cli-model.gguf")
    env = {**os.environ, "QUANTDESK_DATA_DIR": str(tmp_path / "data")}
    refused = subprocess.run([sys.executable, "-m", "quantdesk", "serve", str(model), "--host",
                              "0.0.0.0"], env=env, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and "API key" in refused.stderr  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-m", "quantdesk", "serve", str(model), "--port", "0",
                             "--ctx", "512"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        line = proc.stdout.readline()
        assert line.startswith("Serving cli-model at http://127.0.0.1:"), line
        url = line.split(" at ")[1].split(" ")[0]
        client = openai.OpenAI(base_url=url, api_key="none", max_retries=0, timeout=60)
        assert [m.id for m in client.models.list()] == ["cli-model"]
        text = client.completions.create(model="cli-model", prompt="Hello", max_tokens=8)
        assert text.usage.completion_tokens <= 8 and text.choices[0].text is not None
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0
