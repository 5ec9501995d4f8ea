"""Tool calls: a reply that calls functions the client defined (OpenAI's ``tools``), and those
calls read back out of the reply as it streams.

Each model family writes its calls its own way, and its chat template says which
(:func:`tool_format`):

* **hermes** (Hermes 2 Pro, Qwen 2.5, Qwen3): ``<tool_call>{"name": …, "arguments": {…}}
  </tool_call>``, one block per call, after any text.
* **llama3** (Llama 3.1–3.3): the whole reply is ``{"name": …, "parameters": {…}}``, at times
  after ``<|python_tag|>``.
* **mistral** (Mistral Nemo, Small): ``[TOOL_CALLS][{"name": …, "arguments": {…}, "id": …}]``;
  its template wants call ids of 9 letters and digits.
* **generic** (any other template, as llama-server falls back): the tools and a JSON answer
  are described in a system message and a grammar holds the whole reply to
  ``{"tool_call": {"name": …, "arguments": {…}}}`` or ``{"response": "…"}``; earlier calls and
  tool results are given back to the template as JSON in assistant and user turns.

``tool_choice`` "required" or a named function adds a grammar (:func:`tool_grammar`) that
forces a well-formed call of one of the tools (of that one), whatever the model would rather
write; "none" renders no tools and reads no calls.
"""

from __future__ import annotations

import json
import re
import secrets
import string
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from quantdesk.engine.chat.reasoning import held_back
from quantdesk.engine.chat.structured import SchemaError, grammar_for_schema
from quantdesk.engine.chat.templates import Message, arguments_object
from quantdesk.engine.errors import ToolError
from quantdesk.engine.events import ToolCall

FORMAT_HERMES, FORMAT_LLAMA3, FORMAT_MISTRAL, FORMAT_GENERIC = (
    "hermes", "llama3", "mistral", "generic")  # fmt: skip
CHOICE_AUTO, CHOICE_NONE, CHOICE_REQUIRED = "auto", "none", "required"

HERMES_OPEN, HERMES_CLOSE = "<tool_call>", "</tool_call>"
MISTRAL_CALLS = "[TOOL_CALLS]"
PYTHON_TAG = "<|python_tag|>"
#: Token texts the detokenizer must let through (some families make them control tokens).
TOOL_MARKERS = frozenset({HERMES_OPEN, HERMES_CLOSE, MISTRAL_CALLS, PYTHON_TAG})

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # OpenAI's rule for function names
_NO_PARAMETERS = {"type": "object", "properties": {}}


@dataclass(frozen=True)
class ToolRequest:
    """The tools a reply may call and how it must choose: ``choice`` is "auto", "none",
    "required" or the name of the one function to call."""

    tools: tuple[dict, ...]  # OpenAI tool definitions, as :func:`tool_request` checked them
    choice: str = CHOICE_AUTO

    @property
    def forced(self) -> bool:
        """The reply must be a call ("required" or a named function)."""
        return self.choice not in (CHOICE_AUTO, CHOICE_NONE)

    @property
    def names(self) -> tuple[str, ...]:
        """The functions' names."""
        return tuple(t["function"]["name"] for t in self.tools)

    def callable_names(self) -> tuple[str, ...]:
        """The functions the reply may call: the named one, or all."""
        if self.choice in self.names:
            return (self.choice,)
        return () if self.choice == CHOICE_NONE else self.names

    def parameters(self, name: str) -> dict:
        """The JSON Schema of function ``name``'s arguments."""
        for tool in self.tools:
            if tool["function"]["name"] == name:
                return tool["function"].get("parameters") or _NO_PARAMETERS
        raise KeyError(name)


def tool_request(tools: Any, tool_choice: Any = None) -> ToolRequest | None:
    """Check OpenAI's ``tools`` and ``tool_choice`` (ToolError says what is wrong); None when
    no tools are given."""
    if tools is None or tools == []:
        if tool_choice not in (None, CHOICE_NONE, CHOICE_AUTO):
            raise ToolError("'tool_choice' needs 'tools' to choose from.")
        return None
    if not isinstance(tools, list):
        raise ToolError("'tools' must be a list of {\"type\": \"function\", \"function\": {…}}.")
    checked = []
    for i, tool in enumerate(tools):
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(function, dict) or tool.get("type", "function") != "function":
            raise ToolError(f"tools[{i}] must be {{\"type\": \"function\", \"function\": "
                            "{\"name\": …, \"parameters\": {…}}}.")  # fmt: skip
        name = function.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            raise ToolError(f"tools[{i}].function.name must be 1 to 64 letters, digits, "
                            "underscores or dashes.")  # fmt: skip
        parameters = function.get("parameters", _NO_PARAMETERS)
        try:
            grammar_for_schema(parameters)  # a schema the grammar can hold the arguments to
        except SchemaError as exc:
            raise ToolError(f"tools[{i}].function.parameters: {exc.message}") from None
        described = {"description": str(function["description"])} if function.get(
            "description") else {}  # fmt: skip
        checked.append({"type": "function", "function": {
            "name": name, **described, "parameters": parameters}})  # fmt: skip
    names = [t["function"]["name"] for t in checked]
    if len(set(names)) != len(names):
        raise ToolError("Two tools have the same name.")
    return ToolRequest(tuple(checked), _choice(tool_choice, names))


def _choice(tool_choice: Any, names: list[str]) -> str:
    if tool_choice is None:
        return CHOICE_AUTO
    if tool_choice in (CHOICE_AUTO, CHOICE_NONE, CHOICE_REQUIRED):
        return tool_choice
    if isinstance(tool_choice, dict) and tool_choice.get("type") == "function":
        name = (tool_choice.get("function") or {}).get("name")
        if name in names:
            return name
        raise ToolError(f"'tool_choice' names the function {name!r}, which is not among the "
                        "tools.")  # fmt: skip
    raise ToolError("'tool_choice' must be \"auto\", \"none\", \"required\" or "
                    "{\"type\": \"function\", \"function\": {\"name\": …}}.")  # fmt: skip


def tool_format(template: str | None) -> str:
    """How the model of chat ``template`` writes its calls (the module's docstring)."""
    template = template or ""
    if "tools" in template and MISTRAL_CALLS in template:
        return FORMAT_MISTRAL
    if "tools" in template and HERMES_OPEN in template:
        return FORMAT_HERMES
    if "tools" in template and "<|start_header_id|>" in template and "ipython" in template:
        return FORMAT_LLAMA3
    return FORMAT_GENERIC


def uses_tools(messages: Sequence[Message], request: ToolRequest | None) -> bool:
    """Whether the conversation involves tools (tools given, or earlier calls and results)."""
    return request is not None or any(m.tool_calls or m.role == "tool" for m in messages)


def prepare_for_template(
    messages: Sequence[Message], request: ToolRequest | None, fmt: str
) -> tuple[list[Message], list[dict] | None]:
    """The conversation and the ``tools`` the template is given. A template of its own format
    renders both; for the generic one, the tools and the answer's JSON are described in the
    system message, and earlier calls and results become JSON in assistant and user turns."""
    offered = request is not None and request.choice != CHOICE_NONE
    if fmt != FORMAT_GENERIC:
        return list(messages), list(request.tools) if offered else None
    calls = {c["id"]: c["name"] for m in messages for c in m.tool_calls}
    turns = [_generic_turn(m, calls) for m in messages]
    if offered:
        assert request is not None
        guide = _generic_guide(request)
        if turns and turns[0].role == "system":
            turns[0] = replace(turns[0], content=f"{turns[0].content}\n\n{guide}")
        else:
            turns.insert(0, Message("system", guide))
    return turns, None


def _generic_turn(message: Message, calls: dict[str, str]) -> Message:
    if message.tool_calls:
        written = [{"name": c["name"], "arguments": arguments_object(c["arguments"])}
                   for c in message.tool_calls]  # fmt: skip
        body = ({"tool_call": written[0]} if len(written) == 1 else {"tool_calls": written})
        return Message("assistant", json.dumps(body, ensure_ascii=False))
    if message.role == "tool":
        name = message.name or calls.get(message.tool_call_id, "")
        return Message("user", f"The tool {name} answered: {message.content}")
    return message


def _generic_guide(request: ToolRequest) -> str:
    listed = "\n".join(json.dumps(t["function"], ensure_ascii=False) for t in request.tools
                       if t["function"]["name"] in request.callable_names())  # fmt: skip
    call = '{"tool_call": {"name": <tool name>, "arguments": {<its arguments>}}}'
    if request.forced:
        how = f"Reply with one JSON object that calls a tool: {call}."
    else:
        how = ('Reply with one JSON object: {"response": "<your answer>"} to answer the user, '
               f"or {call} to call a tool first. Once a tool's response holds what the user "
               'asked for, answer with "response".')  # fmt: skip
    return ("You can call these tools (each one's arguments follow its JSON Schema):\n"
            f"{listed}\n\n{how}")  # fmt: skip


# -- the grammar of a forced call -----------------------------------------------------------------


def tool_grammar(request: ToolRequest | None, fmt: str) -> str:
    """The GBNF the reply is held to: a call of one of the callable functions when the choice
    forces one; for the generic format, a call or an answer in its JSON; "" for free text."""
    if request is None or request.choice == CHOICE_NONE:
        return ""
    key = "parameters" if fmt == FORMAT_LLAMA3 else "arguments"
    calls = [{"type": "object", "properties": {"name": {"const": name},
                                               key: request.parameters(name)},
              "required": ["name", key]} for name in request.callable_names()]  # fmt: skip
    call = calls[0] if len(calls) == 1 else {"anyOf": calls}
    if fmt == FORMAT_GENERIC:
        wrapped: dict = {"type": "object", "properties": {"tool_call": call},
                         "required": ["tool_call"]}  # fmt: skip
        if not request.forced:
            answer = {"type": "object", "properties": {"response": {"type": "string"}},
                      "required": ["response"]}  # fmt: skip
            wrapped = {"anyOf": [wrapped, answer]}
        return _checked(wrapped)
    if not request.forced:
        return ""
    before, after = {FORMAT_HERMES: (f"{HERMES_OPEN}\n", f"\n{HERMES_CLOSE}"),
                     FORMAT_MISTRAL: (f"{MISTRAL_CALLS}[", "]")}.get(fmt, ("", ""))  # fmt: skip
    inner = re.sub(r"(?<![\w-])root(?![\w-])", "call-root", _checked(call))
    parts = [json.dumps(before)] * bool(before) + ["call-root"] + [json.dumps(after)] * bool(after)
    return f"root ::= {' '.join(parts)}\n{inner}"


def _checked(schema: dict) -> str:
    try:
        return grammar_for_schema(schema)
    except SchemaError as exc:
        raise ToolError(f"The tools' schemas cannot be turned into a grammar: {exc.message}"
                        ) from None


# -- reading calls out of the reply ---------------------------------------------------------------


def call_id(fmt: str) -> str:
    """A new call id: 9 letters and digits for Mistral's template (it refuses others)."""
    if fmt == FORMAT_MISTRAL:
        alphabet = string.ascii_letters + string.digits
        return "".join(secrets.choice(alphabet) for _ in range(9))
    return "call_" + uuid.uuid4().hex[:24]


class ToolCallSplitter:
    """Splits a reply's answer, as it streams, into text and :class:`ToolCall` s.

    :meth:`feed` takes the text as it comes and returns what is complete (text, and calls
    once whole); :meth:`flush` what is left at the end. Text that could start a call is held
    back until it is known; a call that does not parse, or names no given tool, is text.
    """

    def __init__(self, fmt: str, request: ToolRequest) -> None:
        self.fmt = fmt
        self._names = set(request.callable_names())
        self._buffer = ""
        # what opens the calls where text may come before them (none: the reply is one call)
        self._opener = {FORMAT_HERMES: HERMES_OPEN, FORMAT_MISTRAL: MISTRAL_CALLS}.get(fmt, "")
        self._state = "text" if self._opener else "start"
        self.calls: list[ToolCall] = []

    def feed(self, text: str) -> list[str | ToolCall]:
        """The text and calls ``text`` completes."""
        self._buffer += text
        return self._split(final=False)

    def flush(self) -> list[str | ToolCall]:
        """What is left once the reply has ended."""
        return self._split(final=True)

    def _split(self, final: bool) -> list[str | ToolCall]:
        out: list[str | ToolCall] = []
        while True:
            if self._state == "start":  # llama3 / generic: is the reply JSON?
                head = self._buffer.lstrip()
                if not head and not final:
                    return out
                if self.fmt == FORMAT_GENERIC or head.startswith(("{", PYTHON_TAG)) or (
                        PYTHON_TAG.startswith(head) and head and not final):  # fmt: skip
                    self._state = "whole"
                else:
                    self._state = "text"
            if self._state == "whole":  # the reply is all one document: read it at the end
                if final:
                    out += self._read_whole(self._buffer)
                    self._buffer = ""
                return out
            if self._state == "text":
                opener = self._opener
                at = self._buffer.find(opener) if opener else -1
                if at < 0:
                    keep = held_back(self._buffer, frozenset({opener})) if opener and not (
                        final) else 0  # fmt: skip
                    self._text(out, self._buffer[: len(self._buffer) - keep])
                    self._buffer = self._buffer[len(self._buffer) - keep :]
                    return out
                self._text(out, self._buffer[:at])
                self._buffer = self._buffer[at + len(opener) :]
                self._state = "call" if self.fmt == FORMAT_HERMES else "whole"
                continue
            # "call": inside <tool_call>…</tool_call>
            end = self._buffer.find(HERMES_CLOSE)
            if end < 0 and not final:
                return out
            body = self._buffer if end < 0 else self._buffer[:end]
            self._buffer = "" if end < 0 else self._buffer[end + len(HERMES_CLOSE) :]
            calls = self._calls(_json(body))
            if calls:
                out += calls
            else:
                self._text(out, f"{HERMES_OPEN}{body}{'' if end < 0 else HERMES_CLOSE}")
            self._state = "text"
            if final and not self._buffer:
                return out

    def _text(self, out: list[str | ToolCall], text: str) -> None:
        if self.calls and not text.strip():
            return  # the spaces between calls
        if text:
            out.append(text)

    def _read_whole(self, text: str) -> list[str | ToolCall]:
        body = text.strip()
        if body.startswith(PYTHON_TAG):
            body = body[len(PYTHON_TAG) :]
        document = _json(body)
        if self.fmt == FORMAT_GENERIC and isinstance(document, dict):
            if isinstance(document.get("response"), str) and len(document) == 1:
                return [document["response"]] if document["response"] else []
            document = document.get("tool_calls", document.get("tool_call"))
        calls = self._calls(document)
        if calls:
            return list(calls)
        prefix = MISTRAL_CALLS if self.fmt == FORMAT_MISTRAL else ""
        return [prefix + text] if text else []

    def _calls(self, document: Any) -> list[ToolCall]:
        """The calls ``document`` makes (an object, or a list of them), or [] if any is not a
        well-formed call of a given tool."""
        items = document if isinstance(document, list) else [document]
        calls = []
        for item in items:
            if not isinstance(item, dict) or item.get("name") not in self._names:
                return []
            arguments = item.get("arguments", item.get("parameters", {}))
            if isinstance(arguments, str):
                arguments = _json(arguments)
            if not isinstance(arguments, dict):
                return []
            given = item.get("id")
            ident = given if isinstance(given, str) and given and (
                self.fmt != FORMAT_MISTRAL or re.fullmatch(r"[A-Za-z0-9]{9}", given)) else (
                call_id(self.fmt))  # fmt: skip
            calls.append(ToolCall(ident, item["name"], json.dumps(arguments, ensure_ascii=False)))
        self.calls += calls
        return calls


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None
