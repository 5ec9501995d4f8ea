"""Chat templates from GGUF files, rendered in Jinja2's immutable sandbox.

A GGUF's ``tokenizer.chat_template`` is untrusted code shipped by whoever made
the file (CVE-2024-34359 was remote code execution through exactly this), so it
is only ever rendered in :class:`ImmutableSandboxedEnvironment`, with bounded
``range`` sizes and a cap on the output length.

It is bounded in time and memory too: compiling and rendering stop after
:data:`RENDER_TIME_LIMIT_S` (a trace function checks the clock as the template's
code runs, so nested loops of 10^10 steps end in a message), and ``*``, ``**``
and ``%`` refuse results that would be huge (``'a' * 10**9`` took 2 GB;
``9 ** (9 ** 9)`` froze the compiler, which folds constants unless the sandbox
intercepts the operator).
"""

from __future__ import annotations

import datetime
import json
import math
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from jinja2 import TemplateError as JinjaTemplateError
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from quantdesk.engine.errors import TemplateError

MAX_TEMPLATE_CHARS = 200_000
MAX_OUTPUT_CHARS = 4_000_000
MAX_RANGE = 10_000
MAX_INT_BITS = 4_096  # larger integers than this no chat template needs
RENDER_TIME_LIMIT_S = 1.0
"""A real template renders a long conversation in milliseconds."""
_WIDTH = re.compile(r"%[-+ #0]*(\d+)(?:\.(\d+))?")
T = TypeVar("T")


class _TookTooLong(Exception):
    """Raised inside the template's code when its time is up."""


@dataclass(frozen=True)
class Message:
    """One chat turn: role is "system", "user", "assistant" or "tool"; an assistant's
    ``reasoning`` is the thinking that came before its answer ``content`` (empty when it did not
    think), its ``tool_calls`` the calls it made (``{"id", "name", "arguments"}``, the arguments
    as JSON text); a tool's turn is the result of call ``tool_call_id`` of function ``name``."""

    role: str
    content: str
    reasoning: str = ""
    tool_calls: tuple[dict[str, str], ...] = ()
    tool_call_id: str = ""
    name: str = ""

    def template_turn(self) -> dict[str, Any]:
        """The turn as chat templates read it. Thinking goes where templates look for it:
        ``reasoning_content`` (Qwen3 and others) and ``thinking`` (gpt-oss); templates that
        read neither drop it, as their models expect. Calls are OpenAI's ``tool_calls``, their
        arguments an object (templates turn it to JSON)."""
        turn: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.reasoning:
            turn["reasoning_content"] = turn["thinking"] = self.reasoning
        if self.tool_calls:
            turn["tool_calls"] = [
                {"id": c["id"], "type": "function",
                 "function": {"name": c["name"], "arguments": arguments_object(c["arguments"])}}
                for c in self.tool_calls]  # fmt: skip
        if self.role == "tool":
            turn["tool_call_id"] = self.tool_call_id
            if self.name:
                turn["name"] = self.name
        return turn


def arguments_object(arguments: str) -> Any:
    """A call's arguments (JSON text) as templates render them: an object, which they turn
    to JSON themselves (the text as it is if it is not JSON)."""
    try:
        return json.loads(arguments)
    except (TypeError, ValueError):
        return arguments


def _tojson(value: Any, indent: int | None = None, separators: Any = None,
            sort_keys: bool = False, ensure_ascii: bool = False) -> str:  # fmt: skip
    """Jinja's ``tojson`` as Hugging Face's templates expect it: plain JSON (Jinja's own
    escapes ``<``, ``>``, ``&`` and ``'`` for HTML, which would reach the prompt)."""
    return json.dumps(value, indent=indent, separators=tuple(separators) if separators else None,
                      sort_keys=sort_keys, ensure_ascii=ensure_ascii)  # fmt: skip


def _too_big(what: str) -> SecurityError:
    return SecurityError(f"{what} would be too large")


def _bounded_range(*args: int) -> range:
    """``range()`` for templates: at most MAX_RANGE items (Jinja's own cap is 100,000)."""
    rng = range(*args)
    if len(rng) > MAX_RANGE:
        raise _too_big(f"range() of {len(rng):,} items")
    return rng


def _bits(value: Any) -> int:
    return abs(value).bit_length() if isinstance(value, int) and not isinstance(value, bool) else 0


class _BoundedSandbox(ImmutableSandboxedEnvironment):
    """Sandbox whose operators refuse to build huge values (and so are never folded at
    compile time, where a huge one froze the compiler)."""

    intercepted_binops = frozenset({"*", "**", "%"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        """Check ``left operator right`` will be of a sane size, then compute it."""
        if operator == "**" and isinstance(left, int) and isinstance(right, int):
            if right > 0 and _bits(left) > 1 and right * math.log2(abs(left)) > MAX_INT_BITS:
                raise _too_big(f"{left} ** {right}")
        elif operator == "*":
            for seq, count in ((left, right), (right, left)):
                if isinstance(seq, (str, list, tuple)) and isinstance(count, int):
                    if len(seq) * max(count, 0) > MAX_OUTPUT_CHARS:
                        raise _too_big(f"repeating {len(seq):,} items {count:,} times")
            if _bits(left) + _bits(right) > MAX_INT_BITS:
                raise _too_big("the product")
        elif operator == "%" and isinstance(left, str):
            for width, precision in _WIDTH.findall(left):
                if int(width) > MAX_OUTPUT_CHARS or int(precision or 0) > MAX_OUTPUT_CHARS:
                    raise _too_big(f"a {width}-wide field")
        return super().call_binop(context, operator, left, right)


def _within_time(seconds: float, work: Callable[[], T]) -> T:
    """Run ``work`` (compiling or rendering a template) for at most ``seconds``: a trace
    function checks the clock every 256 lines of Python the template runs."""
    deadline = time.monotonic() + seconds
    count = 0

    def line(_frame: Any, _event: str, _arg: Any) -> Any:
        nonlocal count
        count += 1
        if not count & 255 and time.monotonic() > deadline:
            raise _TookTooLong()
        return line

    def call(_frame: Any, _event: str, _arg: Any) -> Any:
        return line

    previous = sys.gettrace()
    sys.settrace(call)
    try:
        return work()
    finally:
        sys.settrace(previous)


def _raise_exception(message: str) -> None:
    raise TemplateError(f"The model's chat template refused the conversation: {message}")


def _strftime_now(fmt: str) -> str:
    return datetime.datetime.now().strftime(fmt)


def _environment() -> ImmutableSandboxedEnvironment:
    env = _BoundedSandbox(trim_blocks=True, lstrip_blocks=True, autoescape=False)
    env.globals["range"] = _bounded_range
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = _strftime_now
    env.filters["tojson"] = _tojson
    return env


def render_chat(
    template: str,
    messages: Sequence[Message],
    *,
    bos_token: str = "",
    eos_token: str = "",
    add_generation_prompt: bool = True,
    enable_thinking: bool | None = None,
    tools: Sequence[dict] | None = None,
) -> str:
    """Render ``messages`` with a GGUF chat template into the prompt text.

    ``enable_thinking`` False asks a template that reads it (Qwen3) for a reply without
    thinking; None leaves the template's own default. ``tools``: OpenAI tool definitions, for
    a template that renders them (``chat.tools``).

    Raises :class:`TemplateError` with a readable message when the template is
    malformed, tries something the sandbox forbids, or produces absurd output.
    """
    if len(template) > MAX_TEMPLATE_CHARS:
        raise TemplateError(
            f"The model's chat template is {len(template):,} characters long; "
            f"templates over {MAX_TEMPLATE_CHARS:,} are refused."
        )
    turns = [m.template_turn() for m in messages]
    context: dict[str, Any] = {"messages": turns, "bos_token": bos_token,
                               "eos_token": eos_token,
                               "add_generation_prompt": add_generation_prompt}  # fmt: skip
    if enable_thinking is not None:
        context["enable_thinking"] = enable_thinking
    if tools:
        context["tools"] = list(tools)
    try:
        text = _within_time(
            RENDER_TIME_LIMIT_S, lambda: _environment().from_string(template).render(**context)
        )
    except TemplateError:
        raise
    except _TookTooLong:
        raise TemplateError(
            f"This model's chat template took too long (over {RENDER_TIME_LIMIT_S:g} s) to "
            "format the conversation, so it was stopped. The file's template is faulty or "
            "hostile; the model can still be used in plain completion mode.",
        ) from None
    except JinjaTemplateError as exc:
        raise TemplateError(
            "The model's chat template could not be rendered; the model can still be used "
            "in plain completion mode.",
            details=f"{type(exc).__name__}: {exc}",
        ) from exc
    except (OverflowError, MemoryError, RecursionError, TypeError, ValueError) as exc:
        raise TemplateError(
            "The model's chat template failed while formatting the conversation.",
            details=f"{type(exc).__name__}: {exc}",
        ) from exc
    if len(text) > MAX_OUTPUT_CHARS:
        raise TemplateError("The model's chat template produced an absurdly long prompt; refused.")
    return text
