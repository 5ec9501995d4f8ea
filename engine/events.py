"""Events streamed by a generation: text as it arrives, then the final stats."""

from __future__ import annotations

from dataclasses import dataclass, replace

STOP_EOS = "eos"
STOP_LENGTH = "length"
STOP_USER = "stopped"
STOP_CONTEXT_FULL = "context_full"


@dataclass(frozen=True)
class TokenText:
    """A piece of generated text (one or more tokens, always whole UTF-8 characters)."""

    text: str


@dataclass(frozen=True)
class ThinkingText:
    """A piece of the reply's thinking (a reasoning model's, before its answer); only replies
    asked for with their thinking apart stream it (see ``chat.reasoning``)."""

    text: str


@dataclass(frozen=True)
class ToolCall:
    """A call the reply makes to one of the tools it was given (see ``chat.tools``):
    ``arguments`` is the JSON text of an object, as OpenAI's API gives it."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class PromptReady:
    """The prompt is in the context and the reply begins: how many tokens it takes of how many."""

    prompt_tokens: int
    context_size: int


@dataclass(frozen=True)
class LiveFigures:
    """A reply's figures while it streams: tokens so far, their speed, the context in use."""

    tokens: int
    tokens_per_s: float
    context_used: int
    context_size: int


@dataclass(frozen=True)
class GenerationStats:
    """What a finished (or stopped) generation cost."""

    prompt_tokens: int
    completion_tokens: int
    time_to_first_token_s: float
    total_s: float
    decode_tokens_per_s: float
    stop_reason: str
    context_used: int
    context_size: int
    dropped_messages: int = 0  # old messages left out so the prompt fits the context
    prompt_tokens_evaluated: int = 0  # prompt tokens computed; the rest came from the KV cache
    thinking_s: float = 0.0  # how long a reasoning model thought before its answer

    def summary(self) -> str:
        """One line for a status bar or a message footer."""
        reason = {
            STOP_USER: " · stopped",
            STOP_LENGTH: " · max tokens reached",
            STOP_CONTEXT_FULL: " · context full",
        }.get(self.stop_reason, "")
        dropped = (
            f" · {self.dropped_messages} oldest messages left out to fit the context"
            if self.dropped_messages
            else ""
        )
        return (
            f"{self.completion_tokens} tokens · {self.decode_tokens_per_s:.1f} tok/s · "
            f"{self.total_s:.1f} s{reason}{dropped}"
        )


def continued_stats(before: dict, more: GenerationStats) -> GenerationStats:
    """The statistics of a whole reply that was continued: ``before`` (as saved) and the
    continued part ``more`` together (tokens and times add up, speed over both)."""
    try:
        first = GenerationStats(**before)
    except TypeError:  # nothing saved (a reply cut off by a crash): only the new part is known
        return more
    tokens = first.completion_tokens + more.completion_tokens
    decode_s = sum(s.completion_tokens / s.decode_tokens_per_s
                   for s in (first, more) if s.decode_tokens_per_s > 0)  # fmt: skip
    return replace(
        more,
        completion_tokens=tokens,
        time_to_first_token_s=first.time_to_first_token_s,
        total_s=first.total_s + more.total_s,
        decode_tokens_per_s=tokens / decode_s if decode_s > 0 else more.decode_tokens_per_s,
    )


def saved_stats_summary(stats: dict) -> str:
    """The summary line of statistics saved as a dict ("" when they do not fit these fields)."""
    try:
        return GenerationStats(**stats).summary()
    except TypeError:  # none saved, or saved by another version
        return ""


GenerationEvent = TokenText | ThinkingText | ToolCall | PromptReady | GenerationStats
