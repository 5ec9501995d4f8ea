"""Issue 21: ``quantdesk run`` and ``quantdesk serve`` with a model that makes llama.cpp abort
(a SentencePiece vocabulary without byte tokens, sent a "€"): the command says what happened in
a line (no exit 134), and the server answers that request with a 500 in OpenAI's error shape,
loads the model again and answers the next one."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

from tests.support.tiny_models import (
    write_model_that_aborts_llama,
    write_spm_model_without_byte_tokens,
    write_tiny_chat_model,
)

QUANTDESK = [sys.executable, "-m", "quantdesk"]


def test_run_says_why_the_model_stopped_and_exits_as_an_error(tmp_path: Path) -> None:
    model = write_spm_model_without_byte_tokens(tmp_path / "no-bytes.gguf")
    run = [*QUANTDESK, "run", str(model), "-n", "4", "--ctx", "256", "--threads", "1"]
    done = subprocess.run([*run, "--prompt", "It costs 5 €"], capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert done.returncode == 2, done.stderr  # the CLI's error exit, not SIGABRT (134)
    assert ("The model stopped: llama.cpp aborted: unordered_map::at — this model's "
            "vocabulary cannot encode '€'.") in done.stderr  # fmt: skip
    again = subprocess.run([*run, "--prompt", "Hello"], capture_output=True, text=True,
                           timeout=120)  # fmt: skip
    assert again.returncode == 0, again.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(model: Path, port: int) -> subprocess.Popen[str]:
    """``quantdesk serve MODEL`` on ``port``, once it says it is serving."""
    server = subprocess.Popen(
        [*QUANTDESK, "serve", str(model), "--port", str(port), "--ctx", "256", "--threads", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert server.stdout is not None and server.stderr is not None
    line = server.stdout.readline()
    assert line.startswith("Serving"), line + server.stderr.read()
    return server


def _chat(port: int, text: str) -> tuple[int, dict]:
    body = json.dumps({"model": "m", "max_tokens": 4,
                       "messages": [{"role": "user", "content": text}]}).encode()  # fmt: skip
    request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/chat/completions", data=body,
                                     headers={"Content-Type": "application/json"})  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_serve_answers_the_crashing_request_with_a_500_and_goes_on(tmp_path: Path) -> None:
    model = write_spm_model_without_byte_tokens(tmp_path / "no-bytes.gguf")
    port = _free_port()
    server = _serve(model, port)
    try:
        assert _chat(port, "Hello")[0] == 200
        status, body = _chat(port, "It costs 5 €")
        assert status == 500
        assert body["error"]["type"] == "server_error"
        assert body["error"]["message"] == ("The model stopped: llama.cpp aborted: "
                                            "unordered_map::at — this model's vocabulary cannot "
                                            "encode '€'.")  # fmt: skip
        status, body = _chat(port, "Hello again")
        assert status == 200 and body["choices"][0]["message"]["role"] == "assistant"
        assert server.poll() is None  # it kept serving
    finally:
        server.send_signal(signal.SIGINT)
        _out, err = server.communicate(timeout=30)
    assert "It was loaded again; the server goes on." in err
    assert server.returncode == 0, err
    assert not os.path.exists(tmp_path / "core")


def test_run_says_so_when_its_model_file_is_truncated_mid_reply(tmp_path: Path) -> None:
    model = write_tiny_chat_model(tmp_path / "chatty.gguf", n_ctx_train=65536)
    run = subprocess.Popen(
        [*QUANTDESK, "run", str(model), "--prompt", "Hi", "-n", "60000", "--ctx", "65536",
         "--threads", "1", "--no-probe"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert run.stdout is not None
    assert run.stdout.read(20)  # the reply streams
    os.truncate(model, 4096)  # another program rewrites the file
    _out, err = run.communicate(timeout=60)
    assert run.returncode == 2, err
    assert "'chatty.gguf' became unreadable while in use" in err and "SIGBUS" in err


def test_run_probes_a_file_swapped_under_the_same_size_and_mtime(tmp_path: Path) -> None:
    model = write_tiny_chat_model(tmp_path / "chatty.gguf")
    crafted = write_model_that_aborts_llama(tmp_path / "aborts.gguf")
    size = max(model.stat().st_size, crafted.stat().st_size)
    for path in (model, crafted):
        os.truncate(path, size)
    run = [*QUANTDESK, "run", str(model), "--prompt", "Hi", "-n", "4", "--ctx", "256",
           "--threads", "1"]  # fmt: skip
    assert subprocess.run(run, capture_output=True, timeout=120).returncode == 0  # probed, cached
    before = model.stat()
    with model.open("r+b") as f:
        f.write(crafted.read_bytes())
    os.utime(model, ns=(before.st_atime_ns, before.st_mtime_ns))
    done = subprocess.run(run, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "llama.cpp aborted (SIGABRT) while loading 'chatty.gguf'" in done.stderr


def test_serve_says_so_when_its_model_file_is_truncated_and_goes_on_once_it_is_back(
    tmp_path: Path,
) -> None:
    model = write_tiny_chat_model(tmp_path / "chatty.gguf")
    port = _free_port()
    server = _serve(model, port)
    try:
        assert _chat(port, "Hello")[0] == 200
        original = model.read_bytes()
        os.truncate(model, 4096)
        status, body = _chat(port, "Still there?")
        assert status == 500 and "became unreadable while in use" in body["error"]["message"]
        said = ""  # the server tries to load it again at once, and fails: the file is short
        while "Loading it again failed" not in said and server.poll() is None:
            said += server.stderr.readline()
        model.write_bytes(original)  # the file is back
        status, body = _chat(port, "Now?")
        assert status == 200, body
        assert server.poll() is None
    finally:
        server.send_signal(signal.SIGINT)
        _out, err = server.communicate(timeout=30)
    assert "Loading it again failed" in said and "It was loaded again" in err
