"""The CLI as a user runs it: a real child process, real files."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.gguf_fixtures import QT, VT, build_gguf, simple_tensors
from tests.support.tiny_models import write_tiny_model


def quantdesk(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "quantdesk", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


ARCH = [("general.architecture", VT.STRING, "llama")]


def _malformed(tmp_path: Path) -> dict[str, Path]:
    good = build_gguf(ARCH, simple_tensors())
    cases = {
        "truncated-header": good[:40],
        "truncated-data": good[:-8],
        "bad-magic": b"GGUX" + good[4:],
        "unknown-version": build_gguf(ARCH, version=7),
        "absurd-counts": build_gguf(ARCH, n_kv=2**62),
        "string-past-end": build_gguf(ARCH)[:-3],
        "bad-value-type": build_gguf(
            [("general.architecture", 99, "x")][:0],
            raw_kvs=(b"\x03\x00\x00\x00\x00\x00\x00\x00key" + b"\x63\x00\x00\x00"),
            n_kv=1,
        ),
        "bad-tensor-type": build_gguf(ARCH, [("t", [8], 77, 0)], data_size=64),
        "misaligned-offset": build_gguf(ARCH, [("t", [8], QT.F32, 4)]),
        "offset-outside-file": build_gguf(ARCH, [("t", [8], QT.F32, 4096)], data_size=64),
        "random-bytes": random.Random(3).randbytes(4096),
        "empty": b"",
    }
    paths = {}
    for name, data in cases.items():
        path = tmp_path / f"{name}.gguf"
        path.write_bytes(data)
        paths[name] = path
    return paths


def test_inspect_json_of_a_tiny_model(tmp_path: Path) -> None:
    model = write_tiny_model(tmp_path / "tiny.gguf", n_ctx_train=512)
    result = quantdesk("inspect", str(model), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["architecture"] == "llama"
    assert report["context_length"] == 512
    assert report["has_chat_template"] is False


def test_inspect_rejects_every_malformed_file_with_one_line(tmp_path: Path) -> None:
    for name, path in _malformed(tmp_path).items():
        result = quantdesk("inspect", str(path))
        assert result.returncode == 2, (name, result.stdout, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("quantdesk: error: "), (name, lines)
        assert "Traceback" not in result.stderr
        assert result.stdout == ""


def test_inspect_missing_file_and_directory(tmp_path: Path) -> None:
    for target in (tmp_path / "nope.gguf", tmp_path):
        result = quantdesk("inspect", str(target))
        assert result.returncode == 2 and "Traceback" not in result.stderr


def test_run_streams_tokens_from_a_tiny_model(tmp_path: Path) -> None:
    model = write_tiny_model(tmp_path / "tiny.gguf")
    result = quantdesk(
        "run",
        str(model),
        "--prompt",
        "Hello",
        "-n",
        "8",
        "--ctx",
        "128",
        "--temperature",
        "0",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["mode"] == "completion"
    assert out["stats"]["completion_tokens"] == 8 and out["text"]


def test_run_on_a_model_that_aborts_llama_cpp_fails_cleanly(tmp_path: Path) -> None:
    from tests.support.tiny_models import write_model_that_aborts_llama

    model = write_model_that_aborts_llama(tmp_path / "aborts.gguf")
    result = quantdesk("run", str(model), "--prompt", "Hi", "-n", "2", "--ctx", "128")
    assert result.returncode == 2
    assert "SIGABRT" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.starter
def test_starter_model_inspect_and_run(starter_model: Path) -> None:
    result = quantdesk("inspect", str(starter_model), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["architecture"] == "gemma3"
    assert report["file_type"] == "Q4_K_M"
    assert report["context_length"] == 32768
    assert report["has_chat_template"] is False
    run = quantdesk(
        "run",
        str(starter_model),
        "--prompt",
        "The capital of France is",
        "-n",
        "8",
        "--ctx",
        "512",
        "--temperature",
        "0",
    )
    assert run.returncode == 0, run.stderr
    assert len(run.stdout.strip()) > 0
    assert "base model" in run.stderr
