"""A reply's thinking apart from its answer.

Reasoning models write their thinking before the answer, marked in one of two ways:

* **tags** (DeepSeek-R1 and its distills, Qwen3, QwQ): ``<think>…</think>`` then the answer.
  Some templates open the block in the generation prompt (``<｜Assistant｜><think>\\n``), so the
  reply starts inside it and only ``</think>`` comes. Qwen3's template reads ``enable_thinking``:
  false writes an empty block into the prompt, and the model answers at once.
* **harmony** (gpt-oss): messages on channels, ``<|channel|>analysis<|message|>…<|end|>`` for the
  thinking and ``<|start|>assistant<|channel|>final<|message|>…`` for the answer. These markers
  are control tokens, so the detokenizer must let them through (:attr:`ReasoningStyle.markers`).

:func:`reasoning_style` reads which from the template and the rendered prompt;
:class:`ReplySplitter` splits the reply as it streams, whatever the pieces' boundaries.
"""

from __future__ import annotations

from dataclasses import dataclass

THINKING = "thinking"
ANSWER = "answer"

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
CHANNEL, MESSAGE, END, START = "<|channel|>", "<|message|>", "<|end|>", "<|start|>"
RETURN, CALL = "<|return|>", "<|call|>"

STYLE_TAGS = "tags"
STYLE_HARMONY = "harmony"

#: A harmony channel's name -> where its text goes (tool calls on "commentary" come later).
_CHANNELS = {"analysis": THINKING, "final": ANSWER, "commentary": ANSWER}


@dataclass(frozen=True)
class ReasoningStyle:
    """How a model's replies mark their thinking."""

    style: str = STYLE_TAGS
    opens_thinking: bool = False  # the generation prompt opened the block: the reply starts in it
    switchable: bool = False  # the template reads ``enable_thinking`` (thinking can be off)

    @property
    def markers(self) -> frozenset[str]:
        """Token texts the splitter must see even where they are control tokens."""
        if self.style == STYLE_HARMONY:
            return frozenset({CHANNEL, MESSAGE, END, START, RETURN, CALL})
        return frozenset({THINK_OPEN, THINK_CLOSE})


def reasoning_style(template: str | None, prompt: str) -> ReasoningStyle:
    """The style of a model with chat ``template`` whose rendered ``prompt`` (generation prompt
    included) is about to be answered. A model without a template may still start its reply
    with ``<think>`` (the splitter treats that as thinking)."""
    template = template or ""
    if CHANNEL in template:
        return ReasoningStyle(STYLE_HARMONY)
    opens = prompt.rstrip().endswith(THINK_OPEN)
    return ReasoningStyle(STYLE_TAGS, opens_thinking=opens,
                          switchable="enable_thinking" in template)  # fmt: skip


def held_back(text: str, markers: frozenset[str]) -> int:
    """How many characters at the end of ``text`` could be the start of a marker."""
    longest = 0
    for marker in markers:
        for n in range(min(len(marker) - 1, len(text)), longest, -1):
            if marker.startswith(text[-n:]):
                longest = n
                break
    return longest


class ReplySplitter:
    """Sends each piece of a streaming reply to the thinking or the answer.

    :meth:`feed` takes the reply's text as it comes (markers included, in pieces of any size)
    and returns ``(THINKING or ANSWER, text)`` parts; :meth:`flush` returns what was held back
    at the end. The markers never reach either part.
    """

    def __init__(self, style: ReasoningStyle) -> None:
        self.style = style
        self._buffer = ""
        if style.style == STYLE_HARMONY:
            self._state = "first"  # before any channel: plain text is the answer
        else:
            self._state = THINKING if style.opens_thinking else "start"
        self._channel_name = ""
        # leading whitespace of a thinking block, or of an answer after one, is dropped
        self._trim = self._state == THINKING
        self.thought = style.opens_thinking  # whether the reply had any thinking

    def feed(self, text: str) -> list[tuple[str, str]]:
        """The parts ``text`` completes (a marker's start is held back until it is whole)."""
        self._buffer += text
        if self.style.style == STYLE_HARMONY:
            return self._harmony(final=False)
        return self._tags(final=False)

    def flush(self) -> list[tuple[str, str]]:
        """The parts left at the end of the reply."""
        if self.style.style == STYLE_HARMONY:
            return self._harmony(final=True)
        return self._tags(final=True)

    def _emit(self, parts: list[tuple[str, str]], kind: str, text: str) -> None:
        if self._trim:
            text = text.lstrip()
            self._trim = not text
        if not text:
            return
        if parts and parts[-1][0] == kind:
            parts[-1] = (kind, parts[-1][1] + text)
        else:
            parts.append((kind, text))

    def _switch(self, state: str) -> None:
        self._state, self._trim = state, True

    # -- <think>…</think> ----------------------------------------------------------------------

    def _tags(self, final: bool) -> list[tuple[str, str]]:
        parts: list[tuple[str, str]] = []
        while self._buffer:
            if self._state == "start":  # is the reply's first non-space text <think>?
                head = self._buffer.lstrip()
                if head.startswith(THINK_OPEN):
                    self._buffer = head[len(THINK_OPEN):]
                    self.thought = True
                    self._switch(THINKING)
                elif head and not (THINK_OPEN.startswith(head) and not final):
                    self._state = ANSWER  # no thinking: the reply as it is
                else:
                    break  # only spaces, or the start of "<think>": wait for more
            elif self._state == THINKING:
                end = self._buffer.find(THINK_CLOSE)
                if end >= 0:
                    self._emit(parts, THINKING, self._buffer[:end])
                    self._buffer = self._buffer[end + len(THINK_CLOSE):]
                    self._switch(ANSWER)
                    continue
                keep = 0 if final else held_back(self._buffer, frozenset({THINK_CLOSE}))
                self._emit(parts, THINKING, self._buffer[: len(self._buffer) - keep])
                self._buffer = self._buffer[len(self._buffer) - keep:]
                break
            else:  # the answer: everything, as it is
                self._emit(parts, ANSWER, self._buffer)
                self._buffer = ""
        return parts

    # -- harmony channels ----------------------------------------------------------------------

    def _harmony(self, final: bool) -> list[tuple[str, str]]:
        parts: list[tuple[str, str]] = []
        markers = self.style.markers
        while self._buffer:
            at, marker = min(((self._buffer.find(m), m) for m in markers if m in self._buffer),
                             default=(-1, ""))  # fmt: skip
            if at < 0:
                cut = len(self._buffer) - (0 if final else held_back(self._buffer, markers))
                self._harmony_text(parts, self._buffer[:cut])
                self._buffer = self._buffer[cut:]
                break
            self._harmony_text(parts, self._buffer[:at])
            self._buffer = self._buffer[at + len(marker):]
            self._harmony_marker(marker)
        return parts

    def _harmony_text(self, parts: list[tuple[str, str]], text: str) -> None:
        if not text:
            return
        if self._state == "channel":
            self._channel_name += text
        elif self._state in (THINKING, ANSWER):
            self._emit(parts, self._state, text)
        elif self._state == "first":  # no channel at all: a plain answer
            self._emit(parts, ANSWER, text)
        # "header" (a role, "to=…") and "done" show nothing

    def _harmony_marker(self, marker: str) -> None:
        if marker == CHANNEL:
            self._state, self._channel_name = "channel", ""
        elif marker == MESSAGE:
            name = self._channel_name.split()[0] if self._channel_name.split() else "final"
            kind = _CHANNELS.get(name, ANSWER)
            self.thought = self.thought or kind == THINKING
            self._switch(kind)
        elif marker == START:
            self._state = "header"
        elif marker in (END, RETURN, CALL):
            self._state = "done" if marker != END else "header"
