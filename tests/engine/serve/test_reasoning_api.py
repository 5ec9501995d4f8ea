"""A reasoning model's thinking through the OpenAI-compatible server, as llama-server gives it
(``reasoning_content`` beside ``content``), streamed and not, read with the official client
and by QuantDesk's own remote-model client."""

from __future__ import annotations

import threading

import pytest

openai = pytest.importorskip("openai")

from quantdesk.engine.chat.templates import Message  # noqa: E402
from quantdesk.engine.events import ThinkingText, TokenText  # noqa: E402
from quantdesk.engine.params import SamplingSettings  # noqa: E402
from quantdesk.engine.remote.models import Endpoint  # noqa: E402
from quantdesk.engine.serve.openai_server import RunningServer  # noqa: E402
from tests.support.reasoning_templates import write_reasoning_models  # noqa: E402
from tests.support.serving import served  # noqa: E402

ASK = {"model": "r1", "messages": [{"role": "user", "content": "2+2?"}], "max_tokens": 40}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    models = write_reasoning_models(tmp_path_factory.mktemp("reasoning"))
    with served(models["r1"], "r1") as running:
        yield running


def _client(server: RunningServer):
    return openai.OpenAI(base_url=server.url, api_key="none", max_retries=0, timeout=60)


def test_a_reply_gives_its_thinking_as_reasoning_content(server: RunningServer) -> None:
    message = _client(server).chat.completions.create(**ASK).choices[0].message
    assert message.content == "It is 4."
    assert message.model_extra["reasoning_content"] == "Two and two make four."


def test_a_streamed_reply_sends_the_thinking_first_in_its_own_deltas(server) -> None:
    chunks = list(_client(server).chat.completions.create(**ASK, stream=True))
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    thinking = "".join((d.model_extra or {}).get("reasoning_content") or "" for d in deltas)
    content = "".join(d.content or "" for d in deltas)
    assert (thinking, content) == ("Two and two make four.\n", "It is 4.")
    first_content = next(i for i, d in enumerate(deltas) if d.content)
    assert all(not (d.model_extra or {}).get("reasoning_content") for d in deltas[first_content:])


def test_a_plain_completion_is_the_text_as_written(server: RunningServer) -> None:
    prompt = "<｜User｜>2+2?<｜Assistant｜><think>\n"
    reply = _client(server).completions.create(model="r1", prompt=prompt, max_tokens=40)
    assert reply.choices[0].text == "Two and two make four.\n</think>\n\nIt is 4."


def test_a_remote_model_on_such_a_server_streams_its_thinking_apart(server) -> None:
    endpoint = Endpoint(server.url, None)
    events = list(endpoint.stream_chat("r1", [Message("user", "2+2?")],
                                       SamplingSettings(max_tokens=40), threading.Event(),
                                       thinking_apart=True))  # fmt: skip
    assert "".join(e.text for e in events if isinstance(e, ThinkingText)) == (
        "Two and two make four.\n")
    assert "".join(e.text for e in events if isinstance(e, TokenText)) == "It is 4."


def test_thinking_can_be_switched_off_per_request_and_a_bad_switch_is_a_400(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    models = write_reasoning_models(tmp_path_factory.mktemp("qwen3"))
    with served(models["qwen3"], "qwen3") as running:
        client = _client(running)
        ask = {"model": "qwen3", "messages": [{"role": "user", "content": "Hi"}]}
        on = client.chat.completions.create(**ask).choices[0].message
        assert (on.model_extra["reasoning_content"], on.content) == (
            "The user greets me.", "Hello!")
        off = client.chat.completions.create(
            **ask, extra_body={"chat_template_kwargs": {"enable_thinking": False}}
        ).choices[0].message
        assert (off.model_extra.get("reasoning_content"), off.content) == (None, "Hello!")
        with pytest.raises(openai.BadRequestError, match="chat_template_kwargs"):
            client.chat.completions.create(
                **ask, extra_body={"chat_template_kwargs": {"enable_thinking": "no"}})
        events = list(Endpoint(running.url, None).stream_chat(
            "qwen3", [Message("user", "Hi")], SamplingSettings(thinking=False),
            threading.Event(), thinking_apart=True))  # fmt: skip
        assert not any(isinstance(e, ThinkingText) for e in events)  # asked of the server
