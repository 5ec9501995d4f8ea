"""The thinking apart from the answer, whatever the pieces a reply streams in."""

from __future__ import annotations

import pytest

from quantdesk.engine.chat.reasoning import (
    ANSWER,
    STYLE_HARMONY,
    STYLE_TAGS,
    THINKING,
    ReasoningStyle,
    ReplySplitter,
    reasoning_style,
)

OPENED = ReasoningStyle(STYLE_TAGS, opens_thinking=True)
TAGS = ReasoningStyle(STYLE_TAGS)
HARMONY = ReasoningStyle(STYLE_HARMONY)


def split(style: ReasoningStyle, reply: str, size: int) -> tuple[str, str]:
    """The reply fed ``size`` characters at a time: (thinking, answer)."""
    splitter = ReplySplitter(style)
    parts = []
    for at in range(0, len(reply), size):
        parts += splitter.feed(reply[at : at + size])
    parts += splitter.flush()
    return ("".join(t for k, t in parts if k == THINKING),
            "".join(t for k, t in parts if k == ANSWER))  # fmt: skip


CASES = [
    # DeepSeek-R1: the generation prompt opened <think>, the reply only closes it
    (OPENED, "Okay, 2 + 2.\nThat is 4.\n</think>\n\nThe answer is **4**.",
     "Okay, 2 + 2.\nThat is 4.\n", "The answer is **4**."),
    # Qwen3 / QwQ: the model opens the block itself
    (TAGS, "<think>\nThe user greets me.\n</think>\n\nHello! How can I help?",
     "The user greets me.\n", "Hello! How can I help?"),
    # a model that does not think: the reply as it is, a later <think> is only text
    (TAGS, " Use <think> tags </think> like this.", "", " Use <think> tags </think> like this."),
    # gpt-oss: the analysis channel, then the final one
    (HARMONY, "<|channel|>analysis<|message|>User asks the time. Cannot know.<|end|>"
     "<|start|>assistant<|channel|>final<|message|>I cannot see a clock.<|return|>",
     "User asks the time. Cannot know.", "I cannot see a clock."),
    # gpt-oss answering at once, and a reply with no channel at all
    (HARMONY, "<|channel|>final<|message|>Hi.", "", "Hi."),
    (HARMONY, "Plain text.", "", "Plain text."),
    # thinking cut off (max tokens, Stop): all of it is thinking, no answer
    (OPENED, "Let me count: 1, 2, 3", "Let me count: 1, 2, 3", ""),
]


@pytest.mark.parametrize(("style", "reply", "thinking", "answer"), CASES)
def test_every_split_of_the_stream_gives_the_same_thinking_and_answer(
    style: ReasoningStyle, reply: str, thinking: str, answer: str
) -> None:
    for size in range(1, len(reply) + 1):
        assert split(style, reply, size) == (thinking, answer), f"pieces of {size}"


def test_a_marker_split_over_two_pieces_is_held_back_not_shown() -> None:
    splitter = ReplySplitter(OPENED)
    assert splitter.feed("so 4</th") == [(THINKING, "so 4")]
    assert splitter.feed("ink>\n\nFour.") == [(ANSWER, "Four.")]
    assert splitter.flush() == []


def test_the_splitter_says_whether_the_reply_thought() -> None:
    for style, reply, thought in ((TAGS, "<think>x</think>y", True), (TAGS, "y", False),
                                  (HARMONY, "<|channel|>analysis<|message|>x", True),
                                  (HARMONY, "<|channel|>final<|message|>y", False)):  # fmt: skip
        splitter = ReplySplitter(style)
        splitter.feed(reply)
        splitter.flush()
        assert splitter.thought is thought, reply


def test_the_style_is_read_from_the_template_and_the_prompt() -> None:
    r1 = "{% if add_generation_prompt %}{{'<｜Assistant｜><think>\\n'}}{% endif %}"
    assert reasoning_style(r1, "<｜User｜>Hi<｜Assistant｜><think>\n") == OPENED
    qwen3 = "{%- if enable_thinking is defined and enable_thinking is false %}<think>\n\n</think>"
    assert reasoning_style(qwen3, "<|im_start|>assistant\n") == ReasoningStyle(
        STYLE_TAGS, switchable=True)
    off = reasoning_style(qwen3, "<|im_start|>assistant\n<think>\n\n</think>\n\n")
    assert not off.opens_thinking  # thinking switched off: the block is closed already
    assert reasoning_style("<|start|>{{ m }}<|channel|>final", "<|start|>assistant") == HARMONY
    assert reasoning_style(None, "Once upon a time") == TAGS
    assert HARMONY.markers >= {"<|channel|>", "<|message|>", "<|end|>"}
    assert TAGS.markers == {"<think>", "</think>"}


def test_earlier_thinking_goes_back_to_each_template_as_it_expects() -> None:
    from quantdesk.engine.chat.templates import Message, render_chat
    from tests.support.reasoning_templates import HARMONY_STYLE, QWEN3_STYLE, R1_STYLE

    history = [Message("user", "2+2?"), Message("assistant", "4.", reasoning="Two and two."),
               Message("user", "And 3+3?")]  # fmt: skip
    r1 = render_chat(R1_STYLE, history)
    assert r1 == ("<｜User｜>2+2?<｜Assistant｜>4.<｜end▁of▁sentence｜>"
                  "<｜User｜>And 3+3?<｜Assistant｜><think>\n")
    assert reasoning_style(R1_STYLE, r1).opens_thinking
    harmony = render_chat(HARMONY_STYLE, history)
    assert "Two and two" not in harmony and harmony.endswith("<|start|>assistant")
    qwen = render_chat(QWEN3_STYLE, history)
    assert "Two and two" not in qwen  # a reply before the last question: its answer only
    tool_turn = [*history[:2]]  # the reply after the last question keeps its reasoning_content
    assert "<think>\nTwo and two.\n</think>\n\n4." in render_chat(
        QWEN3_STYLE, tool_turn, add_generation_prompt=False)
    off = render_chat(QWEN3_STYLE, history, enable_thinking=False)
    assert off.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")
    assert render_chat(QWEN3_STYLE, history).endswith("<|im_start|>assistant\n")
