"""Chat templates run in the immutable sandbox; base models get completion mode."""

from __future__ import annotations

import pytest

from quantdesk.engine.errors import GenerationError, TemplateError
from quantdesk.engine.prompting import plan_prompt
from quantdesk.engine.templates import Message, render_chat

USER = [Message("user", "Hi")]


def test_renders_a_typical_template_with_bos() -> None:
    template = "{{ bos_token }}{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}"
    assert render_chat(template, USER, bos_token="<s>") == "<s>[user] Hi\n"


def test_raise_exception_in_template_is_a_template_error() -> None:
    with pytest.raises(TemplateError, match="refused the conversation: roles must alternate"):
        render_chat("{{ raise_exception('roles must alternate') }}", USER)


@pytest.mark.parametrize(
    "evil",
    [
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
        "{% set x = messages.append(1) %}",
        "{{ range(10**9) | list }}",
    ],
)
def test_sandbox_refuses_escapes_mutation_and_huge_ranges(evil: str) -> None:
    with pytest.raises(TemplateError):
        render_chat(evil, USER)


def test_syntax_error_is_readable() -> None:
    with pytest.raises(TemplateError, match="could not be rendered"):
        render_chat("{% for m in messages %}", USER)


def test_without_template_the_last_user_message_is_continued() -> None:
    plan = plan_prompt(
        [Message("user", "a"), Message("assistant", "b"), Message("user", "The")],
        chat_template=None,
    )
    assert plan.mode == "completion" and plan.text == "The" and not plan.parse_special


def test_a_conversation_must_end_with_the_user() -> None:
    with pytest.raises(GenerationError):
        plan_prompt([Message("assistant", "x")], chat_template=None)
