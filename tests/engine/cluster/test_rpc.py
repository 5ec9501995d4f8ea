"""More than one machine on llama.cpp's RPC backend: two `quantdesk rpc-worker` processes on
loopback plus the local CPU run the starter model split across them, and greedy decoding gives
the very tokens of a local load. Workers that are not there are clear errors, never an abort."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from quantdesk.engine.cluster.rpc import (
    RPCError,
    is_loopback,
    parse_endpoint,
    plan_split,
    rpc_available,
    worker_memory,
)
from quantdesk.engine.errors import QuantDeskError
from quantdesk.engine.gguf.reader import read_header_from_file
from quantdesk.engine.params import LoadSettings
from tests.support import REPO
from tests.support.rpc_workers import free_port, start_worker, wait_listening

pytestmark = pytest.mark.skipif(not rpc_available(), reason="llama.cpp built without GGML_RPC")
ROOT = REPO


def reply(model: Path, workers: list[str], layers: int) -> tuple[dict, str]:
    done = subprocess.run(
        [sys.executable, "-m", "tests.support.rpc_child", str(model), *workers,
         "--layers", str(layers)],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
        env={**os.environ, "GGML_NO_BACKTRACE": "1"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


def test_workers_report_their_memory(workers: list[str]) -> None:
    for endpoint in workers:
        memory = worker_memory(endpoint)
        assert 0 < memory.free <= memory.total
        assert memory.total > 1 << 30  # the worker's RAM (its CPU device)


@pytest.mark.starter
def test_a_split_load_decodes_the_same_tokens_as_a_local_one(
    workers: list[str], starter_model: Path
) -> None:
    local, _ = reply(starter_model, [], 0)
    split, log = reply(starter_model, workers, 12)  # 12 of 18 layers: 6 on each worker
    assert local["tokens"] == split["tokens"] == 32
    assert split["text"] == local["text"]
    for endpoint in workers:  # llama.cpp put layers' weights on both workers, not only here
        assert any(f"[{endpoint}] model buffer size" in line for line in log.splitlines()), log
    assert "CPU_Mapped model buffer size" in log  # and the first layers here
    print(f"\nlocal {local['tok_s']:.1f} tok/s, split over 2 loopback workers "
          f"{split['tok_s']:.1f} tok/s")  # fmt: skip


def test_a_worker_that_is_not_there_is_a_clear_error(tmp_path: Path) -> None:
    nobody = f"127.0.0.1:{free_port()}"
    with pytest.raises(RPCError, match="does not answer"):
        worker_memory(nobody)
    model = tmp_path / "m.gguf"
    model.write_bytes(b"")  # never read: the worker check comes first
    done = subprocess.run(
        [sys.executable, "-m", "quantdesk", "serve", str(model), "--rpc", nobody, "--port", "0"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode != 0 and done.returncode > 0  # an error, not a crash (signal)


def test_addresses_and_the_split_plan() -> None:
    assert parse_endpoint("10.0.0.5") == "10.0.0.5:50052"
    assert parse_endpoint(" host:123 ") == "host:123"
    with pytest.raises(QuantDeskError):
        parse_endpoint("host:http")
    assert is_loopback("127.0.0.1") and is_loopback("::1") and not is_loopback("0.0.0.0")


def test_the_split_follows_memory_and_the_estimate(starter_model: Path) -> None:
    headers = [read_header_from_file(starter_model)]  # 18 layers + output: 19
    load = LoadSettings(n_ctx=2048)
    gib = 1 << 30
    # as much free on the workers together as here: about half the layers go there
    layers, split = plan_split(headers, load, [4 * gib, 4 * gib], 8 * gib)
    assert layers in (9, 10) and split == (4 * gib, 4 * gib)
    assert plan_split(headers, load, [], 8 * gib) == (0, ())
    # by memory the workers would take 6 of 19 layers; with 456 MiB between them they hold
    # the output layer (170 MiB of weights) and a few more (the estimator's figures)
    few, _ = plan_split(headers, load, [228 << 20, 228 << 20], gib)
    assert 1 <= few < 6
    # little memory here (840 MiB free: 330 MiB usable after the estimator's 512 MiB margin,
    # not the ~400 MiB the whole model needs here): the workers take at least what this
    # computer cannot hold, more than the 18 that memory alone would give them
    most, _ = plan_split(headers, load, [64 * gib], 840 << 20)
    assert most == 19
    with pytest.raises(QuantDeskError, match="does not fit across"):
        plan_split(headers, load, [1 << 20], 1 << 20)


def test_a_worker_on_another_address_warns_that_rpc_is_unprotected() -> None:
    port = free_port()
    process = start_worker(port, host="0.0.0.0")
    try:
        wait_listening(port, process)
    finally:
        process.terminate()
        _out, err = process.communicate(timeout=30)
    assert "no authentication and no encryption" in err
