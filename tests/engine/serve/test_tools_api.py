"""Tool calls through the OpenAI-compatible server and the official ``openai`` client: tiny
models with the templates and special tokens of the Hermes/Qwen, Llama 3 and Mistral families
call a tool, streamed and not; ``tool_choice`` "required" forces a well-formed call on a model
that would rather answer in words; bad tools are a 400. With the instruct starter (a template
without tools: the generic format), 20 requests with ``tool_choice: "required"`` all yield a
valid call of the given function, and an agent loop (call, result, final answer) completes."""

from __future__ import annotations

import json

import jsonschema
import pytest

openai = pytest.importorskip("openai")

from tests.support.serving import served, served_starter  # noqa: E402
from tests.support.tool_templates import write_tool_models  # noqa: E402

CITY = {"type": "string", "minLength": 1, "maxLength": 24}
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "The current weather in a city",
    "parameters": {"type": "object", "properties": {
        "city": CITY, "unit": {"enum": ["celsius", "fahrenheit"]}},
        "required": ["city", "unit"], "additionalProperties": False}}}  # fmt: skip
TIME = {"type": "function", "function": {
    "name": "get_time", "description": "The time in a city",
    "parameters": {"type": "object", "properties": {"city": CITY}, "required": ["city"]}}}
PARIS_ONLY = {"type": "function", "function": {
    "name": "get_weather", "parameters": {"type": "object", "properties": {"city": CITY},
                                          "required": ["city"]}}}  # fmt: skip
NO_ARGUMENTS = {"type": "function", "function": {"name": "get_time"}}
ASK = [{"role": "user", "content": "What is the weather in Paris?"}]
CITIES = ["Paris", "Rome", "Tokyo", "Oslo", "Lima", "Cairo", "Delhi", "Quito", "Berlin",
          "Madrid"]  # fmt: skip


@pytest.fixture(scope="module")
def tool_models(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return write_tool_models(tmp_path_factory.mktemp("tool-models"))


def _client(running) -> openai.OpenAI:  # noqa: ANN001 - RunningServer
    return openai.OpenAI(base_url=running.url, api_key="unused", max_retries=0)


def _streamed(stream) -> tuple[str, dict, str]:  # noqa: ANN001
    """The text, the calls (index -> [id, name, arguments]) and the finish reason of a
    streamed reply, put together from its deltas as a client does."""
    text, calls, finish = "", {}, ""
    for chunk in stream:
        if not chunk.choices:
            continue
        delta = chunk.choices[0].delta
        text += delta.content or ""
        for part in delta.tool_calls or ():
            call = calls.setdefault(part.index, ["", "", ""])
            call[0] += part.id or ""
            call[1] += (part.function.name or "") if part.function else ""
            call[2] += (part.function.arguments or "") if part.function else ""
        finish = chunk.choices[0].finish_reason or finish
    return text, calls, finish


@pytest.mark.parametrize("family,words", [("hermes", "Let me look that up."), ("llama3", None),
                                          ("mistral", None)])  # fmt: skip
def test_each_family_calls_a_tool_streamed_and_not(tool_models: dict, family: str,
                                                   words: str | None) -> None:  # fmt: skip
    with served(tool_models[family], family, n_ctx=1024) as running:
        client = _client(running)
        reply = client.chat.completions.create(model=family, messages=ASK, tools=[PARIS_ONLY],
                                               max_tokens=40)  # fmt: skip
        choice = reply.choices[0]
        assert choice.finish_reason == "tool_calls"
        assert choice.message.content == words
        [call] = choice.message.tool_calls
        assert call.type == "function" and call.function.name == "get_weather"
        assert json.loads(call.function.arguments) == {"city": "Paris"}
        if family == "mistral":
            assert call.id == "abcDEF123"  # the model's own id, of the length its template needs
        text, calls, finish = _streamed(client.chat.completions.create(
            model=family, messages=ASK, tools=[PARIS_ONLY], max_tokens=40, stream=True))
        assert (text or None, finish) == (words, "tool_calls")
        [(ident, name, arguments)] = calls.values()
        assert ident and name == "get_weather" and json.loads(arguments) == {"city": "Paris"}

        # the result goes back, as the family's template renders it, and is answered
        history = ASK + [choice.message.model_dump(exclude_none=True),
                         {"role": "tool", "tool_call_id": call.id, "content": "18 C, cloudy"}]
        again = client.chat.completions.create(model=family, messages=history,
                                               tools=[PARIS_ONLY], max_tokens=40)  # fmt: skip
        assert again.choices[0].finish_reason in ("tool_calls", "stop", "length")


def test_required_forces_a_well_formed_call_on_a_model_that_would_answer_in_words(
        tool_models: dict) -> None:  # fmt: skip
    with served(tool_models["hermes-chat"], "hermes-chat", n_ctx=1024) as running:
        client = _client(running)
        tools = [NO_ARGUMENTS, PARIS_ONLY]
        free = client.chat.completions.create(model="m", messages=ASK, tools=tools,
                                              max_tokens=40)  # fmt: skip
        assert free.choices[0].message.content == "It is sunny in Paris today."
        assert free.choices[0].message.tool_calls is None
        named = {"type": "function", "function": {"name": "get_weather"}}
        for choice in ("required", named):
            reply = client.chat.completions.create(model="m", messages=ASK, tools=tools,
                                                   tool_choice=choice, max_tokens=120)  # fmt: skip
            assert reply.choices[0].finish_reason == "tool_calls"
            [call] = reply.choices[0].message.tool_calls
            tool = {"get_time": NO_ARGUMENTS, "get_weather": PARIS_ONLY}[call.function.name]
            jsonschema.validate(json.loads(call.function.arguments),
                                tool["function"].get("parameters", {"type": "object"}))
            if choice is named:
                assert call.function.name == "get_weather"
        none = client.chat.completions.create(model="m", messages=ASK, tools=[PARIS_ONLY],
                                              tool_choice="none", max_tokens=40)  # fmt: skip
        assert none.choices[0].message.tool_calls is None


def test_tools_that_cannot_be_used_are_a_400_that_says_why(tool_models: dict) -> None:
    with served(tool_models["hermes"], "hermes", n_ctx=1024) as running:
        client = _client(running)
        for kwargs, words in (
            ({"tools": {"name": "f"}}, "'tools' must be a list"),
            ({"tools": [WEATHER], "tool_choice": {"type": "function",
                                                  "function": {"name": "nope"}}},
             "not among the tools"),
            ({"tools": [{"type": "function", "function": {
                "name": "f", "parameters": {"type": "object", "properties": 3}}}]},
             "not valid at properties"),
            ({"messages": ASK + [{"role": "tool", "content": "18 C"}]}, "tool_call_id"),
        ):  # fmt: skip
            with pytest.raises(openai.BadRequestError, match=words):
                client.chat.completions.create(model="m", **{"messages": ASK, **kwargs})


@pytest.fixture(scope="module")
def starter():
    with served_starter() as running:
        yield running


def test_twenty_required_calls_from_the_instruct_starter_are_all_valid(starter) -> None:
    client = _client(starter)
    valid = 0
    for i in range(20):
        reply = client.chat.completions.create(
            model="smollm2", tools=[TIME, WEATHER], tool_choice="required", max_tokens=120,
            messages=[{"role": "user", "content": f"What is the weather in {CITIES[i % 10]}?"}],
            temperature=0.8, seed=i)  # fmt: skip
        assert reply.choices[0].finish_reason == "tool_calls"
        for call in reply.choices[0].message.tool_calls:
            tool = {"get_time": TIME, "get_weather": WEATHER}[call.function.name]
            jsonschema.validate(json.loads(call.function.arguments),
                                tool["function"]["parameters"])  # fmt: skip
        valid += 1
    assert valid == 20


def test_an_agent_loop_through_the_openai_client_completes(starter) -> None:
    """An agent's loop: ask with the tools, run each call the model makes, send the results,
    and take the answer the model gives once it no longer calls (as the OpenAI cookbook does,
    the last request goes without the tools)."""
    client = _client(starter)
    calls_run = []

    def get_weather(city: str, unit: str) -> str:
        calls_run.append(city)
        return json.dumps({"city": city, "temperature": 18 if unit == "celsius" else 64,
                           "sky": "cloudy"})  # fmt: skip

    messages = [{"role": "user", "content": "What is the weather in Rome?"}]
    reply = client.chat.completions.create(model="smollm2", messages=messages, tools=[WEATHER],
                                           tool_choice="required", max_tokens=120)  # fmt: skip
    while reply.choices[0].message.tool_calls:
        message = reply.choices[0].message
        messages.append(message.model_dump(exclude_none=True))
        for call in message.tool_calls:
            result = get_weather(**json.loads(call.function.arguments))
            messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
        reply = client.chat.completions.create(model="smollm2", messages=messages,
                                               max_tokens=80)  # fmt: skip
    assert len(calls_run) == 1
    answer = reply.choices[0]
    assert answer.finish_reason in ("stop", "length") and answer.message.content.strip()
