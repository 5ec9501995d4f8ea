"""Chat templates run in the immutable sandbox; base models get completion mode."""

from __future__ import annotations

import pytest

from quantdesk.engine.chat.prompting import plan_prompt
from quantdesk.engine.chat.templates import Message, render_chat
from quantdesk.engine.errors import GenerationError, TemplateError

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


def test_cve_2024_34359_payloads_run_no_code(tmp_path) -> None:  # noqa: ANN001
    """The payload of CVE-2024-34359 (remote code execution through a GGUF chat template in
    llama-cpp-python) and variants: whatever they render to, no command runs, no file is
    written (each would create its marker file)."""
    markers = [tmp_path / f"pwned{i}" for i in range(5)]
    payloads = [
        # the published proof of concept, pointed at a marker file
        "{% for x in ().__class__.__base__.__subclasses__() %}{% if 'warning' in x.__name__ %}"
        "{{ x()._module.__builtins__['__import__']('os').popen('touch " + str(markers[0]) + "')"
        " }}{% endif %}{% endfor %}",
        "{{ self.__init__.__globals__.__builtins__.open('" + str(markers[1]) + "', 'w').write('x')"
        " }}",
        "{{ lipsum.__globals__['os'].system('touch " + str(markers[2]) + "') }}",
        "{{ cycler.__init__.__globals__.os.popen('touch " + str(markers[3]) + "').read() }}",
        "{{ namespace.__init__.__globals__['__builtins__']['exec']("
        "\"open('" + str(markers[4]) + "', 'w')\") }}",
    ]
    for payload in payloads:
        try:
            render_chat(payload, USER)
        except TemplateError:
            pass
    assert not [m.name for m in markers if m.exists()]
