"""Tool calls (``chat.tools``): tools and tool choices checked, conversations with calls and
results rendered the way each family's template expects, calls read back out of replies that
stream in pieces of any size, and the grammar that forces a call."""

from __future__ import annotations

import json

import pytest

from quantdesk.engine.chat.prompting import plan_prompt
from quantdesk.engine.chat.templates import Message
from quantdesk.engine.chat.tools import (
    FORMAT_GENERIC,
    FORMAT_HERMES,
    FORMAT_LLAMA3,
    FORMAT_MISTRAL,
    ToolCallSplitter,
    ToolError,
    tool_format,
    tool_grammar,
    tool_request,
)
from quantdesk.engine.errors import TemplateError
from quantdesk.engine.events import ToolCall
from tests.support.tool_templates import HERMES_TOOLS, LLAMA3_TOOLS, MISTRAL_TOOLS

CHATML = ("{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n"
          "{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")  # fmt: skip
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}  # fmt: skip
TIME = {"type": "function", "function": {"name": "get_time"}}


def _conversation(call_id: str = "abcDEF123") -> list[Message]:
    call = {"id": call_id, "name": "get_weather", "arguments": '{"city": "Paris"}'}
    return [Message("user", "Weather in Paris?"), Message("assistant", "", tool_calls=(call,)),
            Message("tool", '{"temperature": 18}', tool_call_id=call_id)]  # fmt: skip


def test_tools_and_choices_are_checked_and_bad_ones_say_why() -> None:
    named = {"type": "function", "function": {"name": "get_time"}}
    request = tool_request([WEATHER, TIME], named)
    assert request is not None and request.names == ("get_weather", "get_time")
    assert request.choice == "get_time" and request.forced
    assert request.callable_names() == ("get_time",)
    assert request.parameters("get_time") == {"type": "object", "properties": {}}
    assert tool_request(None) is None and tool_request([], "none") is None
    for tools, choice, words in (
        ("get_weather", None, "must be a list"),
        ([{"type": "function"}], None, r"tools\[0\] must be"),
        ([{"type": "function", "function": {"name": "get weather"}}], None, "1 to 64 letters"),
        ([{"type": "function", "function": {"name": "f", "parameters": {"type": "int"}}}],
         None, r"tools\[0\].function.parameters: The JSON Schema is not valid"),
        ([WEATHER, WEATHER], None, "same name"),
        ([WEATHER], {"type": "function", "function": {"name": "nope"}}, "not among the tools"),
        ([WEATHER], "always", "must be \"auto\""),
        (None, "required", "needs 'tools'"),
    ):  # fmt: skip
        with pytest.raises(ToolError, match=words):
            tool_request(tools, choice)


def test_each_family_is_told_apart_by_its_template() -> None:
    assert tool_format(HERMES_TOOLS) == FORMAT_HERMES
    assert tool_format(LLAMA3_TOOLS) == FORMAT_LLAMA3
    assert tool_format(MISTRAL_TOOLS) == FORMAT_MISTRAL
    assert tool_format(CHATML) == tool_format(None) == FORMAT_GENERIC


def test_calls_and_results_are_rendered_back_as_each_family_expects() -> None:
    request = tool_request([WEATHER])
    hermes = plan_prompt(_conversation(), chat_template=HERMES_TOOLS, tools=request)
    assert hermes.tool_format == FORMAT_HERMES
    assert json.dumps(WEATHER, ensure_ascii=False) in hermes.text  # the tools, as JSON
    assert ('<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n'
            "</tool_call>") in hermes.text  # fmt: skip
    assert '<tool_response>\n{"temperature": 18}\n</tool_response>' in hermes.text

    llama = plan_prompt(_conversation(), chat_template=LLAMA3_TOOLS, tools=request)
    assert '{"name": "get_weather", "parameters": {"city": "Paris"}}<|eom_id|>' in llama.text
    assert '<|start_header_id|>ipython<|end_header_id|>\n\n{"temperature": 18}' in llama.text

    mistral = plan_prompt(_conversation() + [Message("user", "And Rome?")],
                          chat_template=MISTRAL_TOOLS, tools=request)  # fmt: skip
    assert '"id": "abcDEF123"}]' in mistral.text
    assert '[TOOL_RESULTS]{"content": "{\\"temperature\\": 18}", "call_id": "abcDEF123"}' in (
        mistral.text)  # fmt: skip
    assert mistral.text.index("[AVAILABLE_TOOLS]") > mistral.text.index("[TOOL_RESULTS]")
    with pytest.raises(TemplateError, match="length 9"):  # the template's own rule on ids
        plan_prompt(_conversation("call_1"), chat_template=MISTRAL_TOOLS, tools=request)

    generic = plan_prompt(_conversation(), chat_template=CHATML, tools=request)
    assert generic.tool_format == FORMAT_GENERIC
    assert generic.text.startswith("<|im_start|>system\nYou can call these tools")
    assert '{"tool_call": {"name": "get_weather", "arguments": {"city": "Paris"}}}' in (
        generic.text)  # fmt: skip
    assert 'user\nThe tool get_weather answered: {"temperature": 18}' in generic.text
    no_tools = plan_prompt(_conversation(), chat_template=CHATML)  # the final answer's request
    assert "You can call" not in no_tools.text and no_tools.tool_format == ""
    assert "The tool get_weather answered" in no_tools.text


def _split(fmt: str, reply: str, step: int, names: tuple = (WEATHER,)) -> list:
    splitter = ToolCallSplitter(fmt, tool_request(list(names)))
    out: list = []
    for at in range(0, len(reply), step):
        out += splitter.feed(reply[at : at + step])
    out += splitter.flush()
    text = "".join(p for p in out if isinstance(p, str))
    return [text] + [(c.name, json.loads(c.arguments)) for c in out if isinstance(c, ToolCall)]


@pytest.mark.parametrize("fmt,reply,expected", [
    (FORMAT_HERMES, 'Looking.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": '
     '"Paris"}}\n</tool_call>\n<tool_call>{"name": "get_weather", "arguments": "{\\"city\\": '
     '\\"Rome\\"}"}</tool_call>', ["Looking.\n", ("get_weather", {"city": "Paris"}),
                                  ("get_weather", {"city": "Rome"})]),
    (FORMAT_LLAMA3, '<|python_tag|>{"name": "get_weather", "parameters": {"city": "Oslo"}}',
     ["", ("get_weather", {"city": "Oslo"})]),
    (FORMAT_LLAMA3, "It is {cold} in Oslo.", ["It is {cold} in Oslo."]),
    (FORMAT_MISTRAL, '[TOOL_CALLS][{"name": "get_weather", "arguments": {"city": "Lima"}, '
     '"id": "abcDEF123"}]', ["", ("get_weather", {"city": "Lima"})]),
    (FORMAT_GENERIC, '{"tool_call": {"name": "get_weather", "arguments": {"city": "Rome"}}}',
     ["", ("get_weather", {"city": "Rome"})]),
    (FORMAT_GENERIC, '{"response": "It is sunny."}', ["It is sunny."]),
    (FORMAT_GENERIC, "Plain words.", ["Plain words."]),
    # not a call: broken JSON, or a function it was not given, stays text
    (FORMAT_HERMES, "<tool_call>{broken</tool_call>", ["<tool_call>{broken</tool_call>"]),
    (FORMAT_MISTRAL, '[TOOL_CALLS][{"name": "rm_rf", "arguments": {}}]',
     ['[TOOL_CALLS][{"name": "rm_rf", "arguments": {}}]']),
])  # fmt: skip
def test_calls_are_read_out_of_a_reply_whatever_its_pieces(fmt: str, reply: str,
                                                           expected: list) -> None:  # fmt: skip
    for step in (1, 3, len(reply)):
        assert _split(fmt, reply, step) == expected


def test_text_before_a_call_streams_before_the_call_is_whole() -> None:
    splitter = ToolCallSplitter(FORMAT_HERMES, tool_request([WEATHER]))
    assert splitter.feed("Let me check. <tool") == ["Let me check. "]  # "<tool" held back
    assert splitter.feed('_call>{"name": "get_weather", "arguments": {}}') == []
    [call] = splitter.feed("</tool_call>")
    assert call.name == "get_weather" and call.id.startswith("call_")
    mistral = ToolCallSplitter(FORMAT_MISTRAL, tool_request([WEATHER]))
    [call] = mistral.feed('[TOOL_CALLS][{"name": "get_weather", "arguments": {}}]') + (
        mistral.flush())  # fmt: skip
    assert len(call.id) == 9 and call.id.isalnum()  # what Mistral's template insists on


def test_a_forced_choice_is_a_grammar_and_auto_is_free_text() -> None:
    required = tool_request([WEATHER, TIME], "required")
    hermes = tool_grammar(required, FORMAT_HERMES)
    assert hermes.startswith('root ::= "<tool_call>\\n" call-root "\\n</tool_call>"\n')
    assert '"\\"get_weather\\""' in hermes and '"\\"get_time\\""' in hermes
    assert tool_grammar(required, FORMAT_MISTRAL).startswith('root ::= "[TOOL_CALLS][" call-root')
    assert '"\\"parameters\\""' in tool_grammar(required, FORMAT_LLAMA3)
    named = tool_grammar(tool_request([WEATHER, TIME], {"type": "function",
                                                        "function": {"name": "get_time"}}),
                         FORMAT_HERMES)  # fmt: skip
    assert '"\\"get_time\\""' in named and "get_weather" not in named
    assert tool_grammar(tool_request([WEATHER]), FORMAT_HERMES) == ""  # auto: the model decides
    assert tool_grammar(tool_request([WEATHER], "none"), FORMAT_GENERIC) == ""
    generic = tool_grammar(tool_request([WEATHER]), FORMAT_GENERIC)
    assert "response" in generic and "tool-call" in generic  # a call, or an answer
    assert "response" not in tool_grammar(required, FORMAT_GENERIC)
