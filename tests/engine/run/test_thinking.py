"""A reasoning model's thinking streamed apart from its answer, through the model's own host
process and real llama.cpp, on scripted models of each family (tests.support)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from quantdesk.engine.chat.templates import Message
from quantdesk.engine.events import GenerationStats, ThinkingText, TokenText
from quantdesk.engine.params import LoadSettings, SamplingSettings
from quantdesk.engine.run.model_process import ModelProcess
from tests.support.reasoning_templates import write_reasoning_models

LOAD = LoadSettings(n_ctx=256, n_threads=1, n_gpu_layers=0)
SAMPLING = SamplingSettings(max_tokens=40, seed=3)  # sampled: the script holds anyway


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_reasoning_models(tmp_path_factory.mktemp("reasoning"))


def _reply(model: Path, apart: bool, sampling: SamplingSettings = SAMPLING,
           ) -> tuple[str, str, GenerationStats]:  # fmt: skip
    host = ModelProcess.load(model, LOAD)
    try:
        events = list(host.generate([Message("user", "Hi")], sampling, threading.Event(),
                                    thinking_apart=apart))  # fmt: skip
    finally:
        host.close()
    thinking = "".join(e.text for e in events if isinstance(e, ThinkingText))
    answer = "".join(e.text for e in events if isinstance(e, TokenText))
    assert isinstance(events[-1], GenerationStats)
    return thinking, answer, events[-1]


@pytest.mark.parametrize(("family", "thinking", "answer", "tokens"), [
    ("r1", "Two and two make four.\n", "It is 4.", 5),
    ("qwen3", "The user greets me.\n", "Hello!", 5),
    ("harmony-analysis", "User says hi.", "", 5),
    ("harmony-final", "", "Hi!", 4),
])  # fmt: skip
def test_the_thinking_streams_apart_from_the_answer(
    models: dict[str, Path], family: str, thinking: str, answer: str, tokens: int
) -> None:
    got_thinking, got_answer, stats = _reply(models[family], apart=True)
    assert (got_thinking, got_answer) == (thinking, answer)
    assert stats.completion_tokens == tokens  # the thinking's tokens and the markers count
    assert stats.stop_reason == "eos"


def test_asked_without_it_the_reply_is_the_text_as_written(models: dict[str, Path]) -> None:
    thinking, answer, _stats = _reply(models["r1"], apart=False)
    assert thinking == "" and answer == "Two and two make four.\n</think>\n\nIt is 4."


def test_thinking_switched_off_in_the_template_gives_the_answer_alone(
    models: dict[str, Path],
) -> None:
    """Qwen3's template writes an empty thinking block into the prompt: the model goes on
    from there with its answer."""
    thinking, answer, stats = _reply(models["qwen3"], apart=True,
                                     sampling=SAMPLING.with_(thinking=False))
    assert (thinking, answer) == ("", "Hello!") and stats.completion_tokens == 1


def test_stop_inside_the_thinking_ends_the_reply_there(tmp_path: Path) -> None:
    """Stop while the model thinks: the reply ends at once, its thinking kept as far as it got,
    no answer, and the thinking's tokens counted."""
    from quantdesk.engine.run.session import InferenceSession
    from tests.support.reasoning_templates import R1_STYLE, R1_TOKENS
    from tests.support.scripted_models import write_scripted_model

    steps = [f" step{i}" for i in range(30)]
    model = write_scripted_model(tmp_path / "long-thinker.gguf", chat_template=R1_STYLE,
                                 control=R1_TOKENS, trigger="\n",
                                 script=[*steps, "</think>", "\n\n", "Done."])  # fmt: skip
    session = InferenceSession.load(model, LOAD)
    stop = threading.Event()
    events = []
    try:
        for event in session.generate([Message("user", "Hi")], SAMPLING.with_(max_tokens=60),
                                      stop, thinking_apart=True):  # fmt: skip
            events.append(event)
            if isinstance(event, ThinkingText) and "step3" in event.text:
                stop.set()  # the person clicks Stop
    finally:
        session.close()
    thinking = "".join(e.text for e in events if isinstance(e, ThinkingText))
    stats = events[-1]
    assert isinstance(stats, GenerationStats) and stats.stop_reason == "stopped"
    assert thinking.startswith("step0 step1 step2 step3") and "step5" not in thinking
    assert not [e for e in events if isinstance(e, TokenText)]  # no answer
    assert 4 <= stats.completion_tokens <= 5
