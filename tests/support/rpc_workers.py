"""Two `quantdesk rpc-worker` processes on loopback ports (the ``workers`` fixture) and the
helpers that start them."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_worker(port: int, host: str = "127.0.0.1") -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "quantdesk", "rpc-worker", "--host", host, "--port", str(port),
         "--threads", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def wait_listening(port: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read()
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"no worker on port {port}")


@pytest.fixture(scope="module")
def workers():
    ports = [free_port(), free_port()]
    processes = [start_worker(p) for p in ports]
    try:
        for port, process in zip(ports, processes, strict=True):
            wait_listening(port, process)
        yield [f"127.0.0.1:{p}" for p in ports]
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=30)
