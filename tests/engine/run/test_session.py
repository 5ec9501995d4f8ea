"""The inference session on real llama.cpp, with tiny generated models."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from quantdesk.engine.chat.templates import Message
from quantdesk.engine.errors import GenerationError, InvalidGGUF, ModelLoadError
from quantdesk.engine.events import (
    STOP_LENGTH,
    STOP_USER,
    GenerationStats,
    TokenText,
)
from quantdesk.engine.params import LoadSettings, SamplingSettings
from quantdesk.engine.run.session import MODE_CHAT, MODE_COMPLETION, InferenceSession
from tests.support.tiny_models import (
    write_model_with_runaway_utf8,
    write_tiny_chat_model,
    write_tiny_model,
    write_tiny_model_with_bad_metadata,
)

GREEDY = SamplingSettings(temperature=0.0, max_tokens=12, seed=1)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_model(tmp_path_factory.mktemp("m") / "tiny.gguf")


@pytest.fixture
def chat_session(tmp_path: Path):
    """A tiny model with a ChatML template, loaded with a 256-token context."""
    path = write_tiny_chat_model(tmp_path / "chat.gguf")
    s = InferenceSession.load(path, LoadSettings(n_ctx=256, n_threads=1))
    yield s
    s.close()


@pytest.fixture(scope="module")
def session(tiny: Path):
    s = InferenceSession.load(tiny, LoadSettings(n_ctx=256, n_threads=1))
    yield s
    s.close()


def _run(session: InferenceSession, prompt: str, sampling: SamplingSettings, stop=None):
    events = list(session.generate([Message("user", prompt)], sampling, stop or threading.Event()))
    texts = [e.text for e in events if isinstance(e, TokenText)]
    stats = events[-1]
    assert isinstance(stats, GenerationStats)
    return texts, stats


def test_base_model_streams_a_continuation(session: InferenceSession) -> None:
    assert session.mode == MODE_COMPLETION
    texts, stats = _run(session, "Hello", GREEDY)
    assert "".join(texts)
    assert stats.completion_tokens == 12
    assert stats.stop_reason == STOP_LENGTH
    assert stats.prompt_tokens >= 2
    assert stats.context_used == stats.prompt_tokens + 12
    assert stats.context_size == 256


def test_greedy_generation_is_deterministic(session: InferenceSession) -> None:
    assert _run(session, "Hello world", GREEDY)[0] == _run(session, "Hello world", GREEDY)[0]


def test_stop_takes_effect_within_one_token(session: InferenceSession) -> None:
    stop = threading.Event()
    seen = 0
    events = session.generate([Message("user", "Hello")], GREEDY.with_(max_tokens=100), stop)
    for event in events:
        if isinstance(event, TokenText):
            seen += 1
            if seen == 3:
                stop.set()
        else:
            stats = event
    assert stats.stop_reason == STOP_USER
    assert stats.completion_tokens == 3


def test_chat_template_is_used_when_present(chat_session: InferenceSession) -> None:
    s = chat_session
    assert s.mode == MODE_CHAT
    plan = s.plan([Message("system", "Be brief."), Message("user", "Hi")])
    assert plan.text == (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    texts, stats = _run(s, "Hi", GREEDY)
    assert stats.completion_tokens == 12 and "".join(texts)


def test_prompt_longer_than_context_is_a_clear_error(session: InferenceSession) -> None:
    with pytest.raises(GenerationError, match="context holds 256"):
        _run(session, "word " * 400, GREEDY)


def test_max_tokens_holds_even_when_utf8_never_completes(tmp_path: Path) -> None:
    path = write_model_with_runaway_utf8(tmp_path / "runaway.gguf")
    s = InferenceSession.load(path, LoadSettings(n_ctx=128, n_threads=1))
    try:
        texts, stats = _run(s, "Hello", GREEDY.with_(max_tokens=20))
        assert stats.completion_tokens == 20
        assert "\ufffd" in "".join(texts)  # the dangling bytes are shown, not swallowed
    finally:
        s.close()


def test_malformed_file_is_rejected_before_llama_sees_it(tmp_path: Path) -> None:
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + b"\x03\x00\x00\x00" + b"\xff" * 8)
    with pytest.raises(InvalidGGUF):
        InferenceSession.load(bad, LoadSettings(n_ctx=128))


def test_llama_refusal_becomes_model_load_error(tmp_path: Path) -> None:
    path = write_tiny_model_with_bad_metadata(tmp_path / "shape.gguf")
    with pytest.raises(ModelLoadError, match="could not load"):
        InferenceSession.load(path, LoadSettings(n_ctx=128))


def test_a_long_chat_leaves_out_its_oldest_turns_instead_of_failing(
    chat_session: InferenceSession,
) -> None:
    s = chat_session
    history = [Message("system", "Be brief.")]
    for i in range(20):
        history += [Message("user", f"question {i} " * 4), Message("assistant", "answer " * 6)]
    history.append(Message("user", "last question"))
    events = list(s.generate(history, GREEDY, threading.Event()))
    stats = events[-1]
    assert isinstance(stats, GenerationStats)
    assert stats.dropped_messages > 0 and stats.dropped_messages % 2 == 0
    assert stats.completion_tokens == 12
    assert stats.prompt_tokens + 12 <= 256
    assert "left out" in stats.summary()


def test_a_chat_of_thousands_of_messages_is_rendered_a_few_times_not_once_per_turn(
    chat_session: InferenceSession, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """Leaving one turn out at a time rendered a 2,000-message chat a thousand times: the
    reply took minutes to start. Bisection renders it about a dozen times, and still leaves
    out the fewest turns: one turn fewer would not fit."""
    s = chat_session
    history = [Message("system", "Be brief.")]
    for i in range(1000):
        history += [Message("user", f"question {i}"), Message("assistant", f"answer {i}")]
    history.append(Message("user", "last question"))
    renders = []
    real_plan = s.plan
    monkeypatch.setattr(s, "plan", lambda *a: renders.append(len(a[0])) or real_plan(*a))
    stats = list(s.generate(history, GREEDY, threading.Event()))[-1]
    assert stats.dropped_messages > 1900 and len(renders) <= 14
    kept = len(history) - stats.dropped_messages
    one_more = [history[0], *history[len(history) - kept - 1:]]  # the turn before, given back
    room = min(GREEDY.max_tokens, max(16, 256 // 4))
    assert len(s.prompt_tokens(real_plan(one_more))) + room > 256


def test_the_turns_left_out_are_the_oldest_and_never_the_system_or_last_message() -> None:
    from quantdesk.engine.chat.prompting import oldest_turns, without_turns

    msgs = [
        Message("system", "s"),
        Message("user", "u1"),
        Message("assistant", "a1"),
        Message("user", "u2"),
        Message("assistant", "a2"),
        Message("user", "u3"),
    ]
    assert oldest_turns(msgs) == [(1, 2), (3, 4)]
    assert without_turns(msgs, oldest_turns(msgs)[:1]) == [msgs[0], *msgs[3:]]
    assert oldest_turns([Message("system", "s"), Message("user", "u2")]) == []


def test_quantized_kv_cache_with_flash_attention_generates(tmp_path: Path) -> None:
    model = write_tiny_model(tmp_path / "hd32.gguf", n_embd=128)  # head size 32: one q8_0 block
    s = InferenceSession.load(
        model, LoadSettings(n_ctx=256, n_threads=1, kv_type="q8_0", flash_attn=True)
    )
    try:
        texts, stats = _run(s, "Hello", GREEDY)
        assert stats.completion_tokens == 12 and "".join(texts)
    finally:
        s.close()


def test_llama_cpp_reason_reaches_the_user(tiny: Path) -> None:
    with pytest.raises(ModelLoadError, match="does not divide"):
        InferenceSession.load(tiny, LoadSettings(n_ctx=256, kv_type="q8_0", flash_attn=True))


def test_a_conversation_longer_than_a_rounded_up_context_drops_turns(tmp_path: Path) -> None:
    """n_ctx 128 is rounded up by llama.cpp (256) while llama-cpp-python's token buffer stays
    at 128: the conversation must fit the smaller, dropping old turns, never overflow."""
    path = write_tiny_chat_model(tmp_path / "chat.gguf")
    s = InferenceSession.load(path, LoadSettings(n_ctx=128, n_threads=1))
    try:
        assert s.context_size <= 128
        messages: list[Message] = []
        dropped = []
        for i in range(6):
            messages.append(Message("user", f"{i} hello there friend"))
            events = list(s.generate(messages, SamplingSettings(max_tokens=24), threading.Event()))
            stats = events[-1]
            assert stats.context_used <= s.context_size
            dropped.append(stats.dropped_messages)
            reply = "".join(e.text for e in events if isinstance(e, TokenText))
            messages.append(Message("assistant", reply))
        assert dropped[0] == 0 and dropped[-1] > 0
    finally:
        s.close()


def test_continue_carries_on_from_the_reply_so_far(chat_session: InferenceSession) -> None:
    """Continue = the same prompt plus the reply so far: under greedy decoding, 12 tokens and
    then 12 more give the same text as 24 at once; only the new text is streamed."""
    s = chat_session
    history = [Message("user", "Hi")]
    whole = "".join(_run(s, "Hi", GREEDY.with_(max_tokens=24))[0])
    first = "".join(_run(s, "Hi", GREEDY)[0])
    events = list(s.generate(history, GREEDY, threading.Event(), prefill=first))
    more = "".join(e.text for e in events if isinstance(e, TokenText))
    stats = events[-1]
    assert more and first + more == whole
    base = s.prompt_tokens(s.plan(history))
    assert stats.prompt_tokens == len(base) + s.count_tokens(first)


def test_continue_never_reads_special_tokens_from_the_reply(chat_session: InferenceSession) -> None:
    s = chat_session
    plan = s.plan([Message("user", "Hi")], prefill="<|im_end|>")
    tokens = s.prompt_tokens(plan)
    end = s.prompt_tokens(s.plan([Message("user", "Hi")]))
    assert tokens[: len(end)] == end and len(tokens) > len(end) + 1  # spelled out, not one token
