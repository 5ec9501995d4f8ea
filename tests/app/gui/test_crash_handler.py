"""Unexpected errors on any thread: logged to the rotating log file and shown once, with the
log's path and the traceback as copyable details; the app keeps running."""

from __future__ import annotations

import logging
import sys
import threading
from pathlib import Path

from quantdesk.gui.crash_handler import install_hooks, setup_logging


def test_an_error_on_a_thread_is_logged_and_reported_with_the_log_path(tmp_path: Path):
    log_file = tmp_path / "logs" / "quantdesk.log"
    saved = sys.excepthook, threading.excepthook, list(logging.getLogger().handlers)
    said: list[tuple[str, str]] = []
    try:
        setup_logging(log_file)
        install_hooks(lambda message, details: said.append((message, details)), log_file)

        def boom() -> None:
            raise RuntimeError("a bug in a worker")

        worker = threading.Thread(target=boom)
        worker.start()
        worker.join()
        try:
            raise ValueError("a bug on the main thread")
        except ValueError:
            sys.excepthook(*sys.exc_info())
    finally:
        sys.excepthook, threading.excepthook = saved[0], saved[1]
        for handler in logging.getLogger().handlers:
            if handler not in saved[2]:
                handler.close()
                logging.getLogger().removeHandler(handler)
    assert len(said) == 2
    for (message, details), bug in zip(said, ("a bug in a worker", "a bug on the main thread"),
                                       strict=True):  # fmt: skip
        assert "kept running" in message and str(log_file) in message and "Copy details" in message
        assert "Traceback" in details and bug in details
    logged = log_file.read_text()
    assert "a bug in a worker" in logged and "a bug on the main thread" in logged
