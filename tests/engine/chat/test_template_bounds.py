"""Issue 20, item 9: a chat template is bounded in time and memory. A runaway loop, a huge
power folded at compile time, a huge repeat or a huge range ends in a message within about a
second, instead of a reply that never ends, a model "Loading…" for 900 s or 2 GB of memory."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from quantdesk.engine.chat.templates import RENDER_TIME_LIMIT_S, Message, render_chat
from quantdesk.engine.errors import TemplateError

HELLO = [Message("user", "Hello")]
HI = [Message("user", "Hi")]
#: Skips its loops for the load test's "Hello", runs 10^10 steps for anything else.
RUNAWAY = ("{% for m in messages %}{% if m.content != 'Hello' %}"
           "{% for a in range(10000) %}{% for b in range(10000) %}{% for c in range(100) %}"
           "{% endfor %}{% endfor %}{% endfor %}{% endif %}{{ m.content }}"
           "{% endfor %}")  # fmt: skip


def _timed(template: str, messages=HI) -> tuple[str | Exception, float]:  # noqa: ANN001
    started = time.monotonic()
    try:
        result: str | Exception = render_chat(template, messages)
    except TemplateError as exc:
        result = exc
    return result, time.monotonic() - started


def test_a_runaway_loop_is_stopped_in_about_a_second() -> None:
    assert _timed(RUNAWAY, HELLO)[0] == "Hello"  # the guarded branch: fine
    result, took = _timed(RUNAWAY)
    assert isinstance(result, TemplateError) and "took too long" in result.message
    assert took < RENDER_TIME_LIMIT_S + 2


@pytest.mark.parametrize("template", [
    "{% if false %}{{ 9 ** (9 ** 9) }}{% endif %}ok",  # folded at compile time before
    "{% if messages %}{% endif %}ok{% if false %}{{ 10 ** 100000000 }}{% endif %}",
])  # fmt: skip
def test_a_huge_constant_is_not_computed_at_compile_time(template: str) -> None:
    result, took = _timed(template)
    assert result == "ok" and took < RENDER_TIME_LIMIT_S + 2


@pytest.mark.parametrize("template", [
    "{{ 'a' * 10 ** 9 }}", "{{ 10 ** 9 * 'a' }}", "{{ [1] * 10 ** 9 }}",
    "{{ 9 ** (9 ** 9) }}", "{{ '%999999999d' % 1 }}", "{% for i in range(50000) %}{% endfor %}",
])  # fmt: skip
def test_huge_values_are_refused_in_words(template: str) -> None:
    result, took = _timed(template)
    assert isinstance(result, TemplateError), result
    assert "too large" in (result.details or "") or "too large" in result.message
    assert took < RENDER_TIME_LIMIT_S + 2


def test_real_templates_still_render() -> None:
    chatml = ("{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n"
              "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
    text = render_chat(chatml, [Message("user", "x" * 5_000)] * 200)  # a long conversation
    assert text.count("<|im_start|>") == 201
    assert render_chat("{{ 3 * 'ab' }}{{ 2 ** 10 }}{{ '%05d' % 7 }}", HI) == "ababab102400007"


def test_a_reply_on_a_model_with_a_runaway_template_ends_in_a_message(tmp_path: Path) -> None:
    from quantdesk.engine.params import LoadSettings, SamplingSettings
    from quantdesk.engine.run.session import InferenceSession
    from tests.support.tiny_models import write_tiny_model

    path = write_tiny_model(tmp_path / "hostile.gguf", chat_template=RUNAWAY)
    session = InferenceSession.load(path, LoadSettings(n_ctx=512, n_threads=1))
    try:
        assert session.mode == "chat"  # the load test's "Hello" passed the guard
        started = time.monotonic()
        with pytest.raises(TemplateError, match="took too long"):
            list(session.generate(HI, SamplingSettings(max_tokens=4), threading.Event()))
        assert time.monotonic() - started < RENDER_TIME_LIMIT_S + 5
    finally:
        session.close()


def test_the_window_says_so_and_stop_and_quit_still_work(qtbot, tmp_path: Path) -> None:
    import argparse

    from quantdesk.gui import build_app
    from tests.support.tiny_models import write_tiny_model

    path = write_tiny_model(tmp_path / "hostile.gguf", chat_template=RUNAWAY)
    window, controller, _ = build_app(argparse.Namespace(data_dir=None, files=[]))
    qtbot.addWidget(window)
    window.show()
    try:
        controller.start([])
        with qtbot.waitSignal(controller.models.modelLoaded, timeout=60_000):
            controller.imports.import_files([path], mode="reference", load_first=True)
        window.chat.input.setPlainText("Hi")
        started = time.monotonic()
        with qtbot.waitSignal(controller.chat.replyFailed, timeout=30_000) as failed:
            window.chat.send.click()
        assert "took too long" in failed.args[0]
        assert time.monotonic() - started < RENDER_TIME_LIMIT_S + 5
        assert "took too long" in window.banner.label.text()
        assert window.chat.send.isEnabled()  # the window is usable again
    finally:
        started = time.monotonic()
        controller.shutdown()  # quit
        assert time.monotonic() - started < 10
