"""The lean generation path against llama-cpp-python's high-level one, the KV cache reuse across
turns and the streaming detokenizer (real llama.cpp, tiny generated models and the starter)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from quantdesk.engine.chat.templates import Message
from quantdesk.engine.events import GenerationStats, TokenText
from quantdesk.engine.params import LoadSettings, SamplingSettings
from quantdesk.engine.run import generation
from quantdesk.engine.run.generation import Detokenizer
from quantdesk.engine.run.session import InferenceSession
from tests.support import REPO
from tests.support.tiny_models import write_tiny_chat_model

GREEDY = SamplingSettings(temperature=0.0, max_tokens=40, seed=1)
SAMPLED = SamplingSettings(temperature=0.9, top_k=20, top_p=0.9, min_p=0.02, max_tokens=40,
                           seed=1234)  # fmt: skip


def _lean(session: InferenceSession, messages, sampling) -> tuple[str, GenerationStats]:
    events = list(session.generate(messages, sampling, threading.Event()))
    return "".join(e.text for e in events if isinstance(e, TokenText)), events[-1]


def _high_level(session: InferenceSession, messages, sampling: SamplingSettings) -> str:
    """What llama-cpp-python's own Llama.generate produces for the same prompt and settings."""
    import llama_cpp

    llama = session._llama
    tokens = session.prompt_tokens(session.plan(messages))
    session._cache.forget()  # empty KV cache, as for a fresh context
    llama.reset()
    llama.set_seed(sampling.seed)
    out = []
    for token in llama.generate(
        tokens, temp=sampling.temperature, top_p=sampling.top_p, top_k=sampling.top_k,
        min_p=sampling.min_p, repeat_penalty=sampling.repeat_penalty,
    ):  # fmt: skip
        if llama_cpp.llama_vocab_is_eog(llama._model.vocab, token) or len(out) == 40:
            break
        out.append(token)
    session._cache.forget()  # the high-level path used the same KV cache
    return llama.detokenize(out).decode("utf-8", errors="replace")


@pytest.fixture(params=["C", "NumPy"])
def sampling_step(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Runs a test with the C sampling step (engine/_sampling.c) and with its NumPy fallback."""
    if request.param == "NumPy":
        monkeypatch.setattr(generation, "_native_sampling", None)
    assert generation.sampling_step() == request.param
    return request.param


def test_the_c_sampling_step_is_built_here() -> None:
    """setup_env.sh builds engine/_sampling.c (a C compiler and Python's headers are needed);
    without it replies still work, about 1 % slower (the NumPy fallback)."""
    assert generation.sampling_step() == "C", "engine/_sampling.c was not built: see pip's log"


@pytest.fixture(scope="module")
def chat(tmp_path_factory: pytest.TempPathFactory):
    path = write_tiny_chat_model(tmp_path_factory.mktemp("gen") / "chat.gguf")
    s = InferenceSession.load(path, LoadSettings(n_ctx=512, n_threads=1))
    yield s
    s.close()


@pytest.mark.parametrize("sampling", [GREEDY, SAMPLED], ids=["greedy", "seeded"])
def test_same_text_as_the_high_level_path(chat: InferenceSession, sampling, sampling_step) -> None:
    messages = [Message("user", "Hello there, how are you?")]
    expected = _high_level(chat, messages, sampling)
    text, stats = _lean(chat, messages, sampling)
    assert expected and text == expected
    assert stats.completion_tokens == 40


def test_starter_model_matches_the_high_level_path(starter_model: Path, sampling_step) -> None:
    """Gemma's 262 144-token vocabulary: the chain sees only the candidates that can win."""
    s = InferenceSession.load(starter_model, LoadSettings(n_ctx=512, n_threads=2))
    try:
        messages = [Message("user", "The capital of France is")]
        for sampling in (GREEDY, SAMPLED, SAMPLED.with_(seed=7, repeat_penalty=1.5)):
            expected = _high_level(s, messages, sampling)
            text, _ = _lean(s, messages, sampling)
            assert len(expected) > 20 and text == expected, sampling
    finally:
        s.close()


@pytest.mark.parametrize("penalty", [0.5, 1.0, 1.3])
def test_every_repeat_penalty_the_settings_allow_matches_llama_cpp(
    starter_model: Path, sampling_step, penalty: float
) -> None:
    """Issue 20, item 12: below 1 the penalty raises logits, so the candidate pre-filter (which
    assumed it only lowers them) changed greedy replies at 0.5."""
    s = InferenceSession.load(starter_model, LoadSettings(n_ctx=512, n_threads=2))
    try:
        messages = [Message("user", "The capital of France is")]
        for sampling in (GREEDY.with_(repeat_penalty=penalty),
                         SAMPLED.with_(seed=3, repeat_penalty=penalty)):  # fmt: skip
            # llama-cpp-python prints Gemma's <start_of_image> marker; QuantDesk hides it
            expected = _high_level(s, messages, sampling).replace("<start_of_image>", "")
            text, _ = _lean(s, messages, sampling)
            assert len(expected) > 20 and text == expected, sampling
    finally:
        s.close()


def test_a_second_turn_evaluates_only_the_new_tokens(chat: InferenceSession) -> None:
    chat._cache.forget()
    history = [Message("system", "You are terse."), Message("user", "First question here")]
    reply, first = _lean(chat, history, GREEDY)
    assert first.prompt_tokens_evaluated == first.prompt_tokens  # nothing cached yet
    history += [Message("assistant", reply), Message("user", "And a second one")]
    _, second = _lean(chat, history, GREEDY)
    new_part = chat.prompt_tokens(chat.plan(history))[first.prompt_tokens:]
    # the first turn's prompt stays cached; at most the new part is evaluated (less when the
    # reply's tokens were cached as generated)
    assert second.prompt_tokens_evaluated <= len(new_part)
    assert second.prompt_tokens_evaluated < second.prompt_tokens // 2
    _, again = _lean(chat, history, GREEDY)  # the very same prompt: one token for its logits
    assert again.prompt_tokens_evaluated == 1


def test_the_cache_starts_over_when_the_conversation_changes(chat: InferenceSession) -> None:
    chat._cache.forget()
    old, new = [Message("user", "alpha beta gamma")], [Message("user", "different words")]
    _lean(chat, old, GREEDY)
    text, other = _lean(chat, new, GREEDY)
    fresh = _high_level(chat, new, GREEDY)
    assert text == fresh  # nothing of the old conversation leaks into the new one
    a, b = chat.prompt_tokens(chat.plan(old)), chat.prompt_tokens(chat.plan(new))
    shared = next(i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y)
    assert shared > 0 and other.prompt_tokens_evaluated == len(b) - shared  # the template start


TEXTS = ["naïve café 😀 👩\u200d👩\u200d👧 中文字符 日本語 ✓", "🎉🎉🎉", "한국어 텍스트"]


@pytest.mark.parametrize("text", TEXTS)
def test_characters_split_across_tokens_stream_whole(chat: InferenceSession, text: str) -> None:
    """The tiny model's byte-level vocabulary spells emoji and CJK as several byte tokens; the
    streamed pieces are whole characters and join up to the text exactly."""
    llama = chat._llama
    tokens = llama.tokenize(text.encode("utf-8"), add_bos=False, special=False)
    assert len(tokens) > len(text)  # characters really are split over several tokens
    detok = Detokenizer(llama._model.vocab)
    pieces = [detok.feed(t) for t in tokens] + [detok.flush()]
    assert "".join(pieces) == text
    assert "" in pieces[:-1]  # some token completed no character: held back, not mangled
    assert all("\ufffd" not in p for p in pieces)


def test_an_unfinished_character_at_the_end_becomes_a_replacement_mark(chat) -> None:
    llama = chat._llama
    tokens = llama.tokenize("😀".encode(), add_bos=False, special=False)
    detok = Detokenizer(llama._model.vocab)
    assert [detok.feed(t) for t in tokens[:-1]] == [""] * (len(tokens) - 1)
    assert detok.flush() == "\ufffd"


def test_a_rewind_before_the_sliding_window_evaluates_again(starter_model: Path) -> None:
    """Gemma 3's sliding-window layers keep only their window (swa_full off): going back to a
    point they no longer hold must evaluate the prompt again, not reuse a cache with holes."""
    sample = (REPO / "resources" / "quality_sample.txt").read_text()
    s = InferenceSession.load(starter_model, LoadSettings(n_ctx=2048, n_threads=2))
    try:
        words = sample.split()
        long = [Message("user", " ".join(words[:1100]))]  # about 1,500 tokens
        short = [Message("user", " ".join(words[:150]) + " And then")]
        sampling = GREEDY.with_(max_tokens=8)
        _lean(s, long, sampling)
        assert s._cache.tokens and not s._cache._window_reaches(200)
        text, stats = _lean(s, short, sampling)
        assert stats.prompt_tokens_evaluated == stats.prompt_tokens  # nothing reused
        s._cache.forget()
        fresh, _ = _lean(s, short, sampling)
        assert text == fresh
        _, again = _lean(s, short, sampling)  # within the window: reused
        assert again.prompt_tokens_evaluated == 1
    finally:
        s.close()
