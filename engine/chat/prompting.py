"""Turning a conversation into the text a model is given.

Models with a chat template get the conversation rendered through it (in the
sandbox of :mod:`templates`). Base models without one (the starter model is
such a model) get *completion mode*: the latest user message is the prompt
and the model continues it; the UI explains this instead of showing nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from quantdesk.engine.chat.reasoning import ReasoningStyle, reasoning_style
from quantdesk.engine.chat.templates import Message, render_chat
from quantdesk.engine.chat.tools import (
    ToolRequest,
    prepare_for_template,
    tool_format,
    uses_tools,
)
from quantdesk.engine.errors import GenerationError, ToolError

COMPLETION_MODE_NOTICE = (
    "This is a base model: it continues your text. It has no chat template, so each "
    "message you send is a prompt it carries on writing from; it does not follow instructions."
)


@dataclass(frozen=True)
class PromptPlan:
    """The prompt text for one generation and how to tokenize it."""

    text: str
    mode: str  # "chat" or "completion"
    has_bos_text: bool  # the text already starts with the BOS token's text
    parse_special: bool  # special-token text in ``text`` maps to special tokens
    prefill: str = ""  # the reply so far (Continue): plain text, never parsed for special tokens
    reasoning: ReasoningStyle = ReasoningStyle()  # how the reply will mark its thinking
    tool_format: str = ""  # how the reply writes tool calls (chat.tools); "" for no tools


def plan_prompt(
    messages: Sequence[Message],
    *,
    chat_template: str | None,
    bos_token: str = "",
    eos_token: str = "",
    prefill: str = "",
    enable_thinking: bool | None = None,
    tools: ToolRequest | None = None,
) -> PromptPlan:
    """Build the prompt for ``messages`` (the last one from the user, or a tool's result).

    ``prefill`` is the start of the reply, already written (Continue): the model carries on
    from it instead of starting its reply afresh. ``enable_thinking`` False asks a template
    that can (Qwen3's) for an answer without thinking. ``tools``: the functions the reply may
    call, rendered the way the template's model family expects (``chat.tools``).
    """
    if not messages or messages[-1].role not in ("user", "tool"):
        raise GenerationError("There is no user message to reply to.")
    fmt = ""
    if chat_template:
        rendered_tools = None
        if uses_tools(messages, tools):
            fmt = tool_format(chat_template)
            messages, rendered_tools = prepare_for_template(messages, tools, fmt)
        text = render_chat(chat_template, messages, bos_token=bos_token, eos_token=eos_token,
                           enable_thinking=enable_thinking, tools=rendered_tools)  # fmt: skip
        has_bos = bool(bos_token) and text.startswith(bos_token)
        style = reasoning_style(chat_template, text)
        if prefill:  # the reply goes on from its answer: the thinking was written before
            style = ReasoningStyle(style.style, switchable=style.switchable)
        return PromptPlan(text=text, mode="chat", has_bos_text=has_bos, parse_special=True,
                          prefill=prefill, reasoning=style,
                          tool_format=fmt if tools is not None else "")  # fmt: skip
    if uses_tools(messages, tools):
        raise ToolError("This model has no chat template, so it cannot be given tools: it "
                        "continues text (a base model). Use an instruct model.")  # fmt: skip
    return PromptPlan(
        text=messages[-1].content,
        mode="completion",
        has_bos_text=False,
        parse_special=False,
        prefill=prefill,
    )


def oldest_turns(messages: Sequence[Message]) -> list[tuple[int, ...]]:
    """The exchanges that may be left out to fit the context, oldest first, as indices into
    ``messages``: a user message with the reply that follows it, or a lone message. System
    messages and the final message always stay."""
    turns: list[tuple[int, ...]] = []
    last = len(messages) - 1
    i = 0
    while i < last:
        if messages[i].role == "system":
            i += 1
            continue
        pair = messages[i].role == "user" and i + 1 < last and messages[i + 1].role == "assistant"
        turns.append((i, i + 1) if pair else (i,))
        i += 2 if pair else 1
    return turns


def without_turns(messages: Sequence[Message], turns: Sequence[tuple[int, ...]]) -> list[Message]:
    """``messages`` less the exchanges ``turns`` (from :func:`oldest_turns`)."""
    gone = {i for turn in turns for i in turn}
    return [m for i, m in enumerate(messages) if i not in gone]
