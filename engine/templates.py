"""Chat templates from GGUF files, rendered in Jinja2's immutable sandbox.

A GGUF's ``tokenizer.chat_template`` is untrusted code shipped by whoever made
the file (CVE-2024-34359 was remote code execution through exactly this), so it
is only ever rendered in :class:`ImmutableSandboxedEnvironment`, with bounded
``range`` sizes and a cap on the output length.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass

from jinja2 import TemplateError as JinjaTemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from quantdesk.engine.errors import TemplateError

MAX_TEMPLATE_CHARS = 200_000
MAX_OUTPUT_CHARS = 4_000_000


@dataclass(frozen=True)
class Message:
    """One chat turn: role is "system", "user" or "assistant"."""

    role: str
    content: str


class _BoundedSandbox(ImmutableSandboxedEnvironment):
    """Sandbox whose ``range()`` refuses to build huge sequences."""

    MAX_RANGE = 10_000


def _raise_exception(message: str) -> None:
    raise TemplateError(f"The model's chat template refused the conversation: {message}")


def _strftime_now(fmt: str) -> str:
    return datetime.datetime.now().strftime(fmt)


def _environment() -> ImmutableSandboxedEnvironment:
    env = _BoundedSandbox(trim_blocks=True, lstrip_blocks=True, autoescape=False)
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = _strftime_now
    return env


def render_chat(
    template: str,
    messages: Sequence[Message],
    *,
    bos_token: str = "",
    eos_token: str = "",
    add_generation_prompt: bool = True,
) -> str:
    """Render ``messages`` with a GGUF chat template into the prompt text.

    Raises :class:`TemplateError` with a readable message when the template is
    malformed, tries something the sandbox forbids, or produces absurd output.
    """
    if len(template) > MAX_TEMPLATE_CHARS:
        raise TemplateError(
            f"The model's chat template is {len(template):,} characters long; "
            f"templates over {MAX_TEMPLATE_CHARS:,} are refused."
        )
    try:
        compiled = _environment().from_string(template)
        text = compiled.render(
            messages=[{"role": m.role, "content": m.content} for m in messages],
            bos_token=bos_token,
            eos_token=eos_token,
            add_generation_prompt=add_generation_prompt,
        )
    except TemplateError:
        raise
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
