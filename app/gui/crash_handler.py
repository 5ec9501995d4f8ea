"""Route unexpected exceptions (any thread) to the log file and one notifier.

Nothing unexpected kills the app: ``sys.excepthook`` and
``threading.excepthook`` log the traceback and hand a readable message to the
GUI, which shows it in its banner.
"""

from __future__ import annotations

import logging
import sqlite3
import sys
import threading
import traceback
from collections.abc import Callable
from logging.handlers import RotatingFileHandler
from pathlib import Path

from quantdesk.engine.sqlite_files import write_failure_words

log = logging.getLogger("quantdesk")


def setup_logging(log_file: Path) -> None:
    """Log to a rotating file in the log folder (and stderr for warnings)."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    handler = RotatingFileHandler(log_file, maxBytes=2_000_000, backupCount=3, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(threadName)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)


def install_hooks(notify: Callable[[str, str], None], log_file: Path | None = None) -> None:
    """Send uncaught exceptions to ``notify(message, details)`` after logging them; the message
    names ``log_file`` and the details (copyable from the banner) carry the traceback."""

    def report(exc_type: type[BaseException], exc: BaseException, tb: object) -> None:
        details = "".join(traceback.format_exception(exc_type, exc, tb))  # type: ignore[arg-type]
        log.error("Unexpected error\n%s", details)
        try:
            where = f" ({log_file})" if log_file is not None else ""
            if isinstance(exc, sqlite3.Error):  # a store locked, read-only or full mid-way
                notify(f"{write_failure_words(exc)} The app kept running.", details)
                return
            notify(
                "Something unexpected went wrong; the app kept running. The details were "
                f"written to the log file{where}; Details → Copy details puts them on the "
                "clipboard for a bug report (quantdesk doctor adds the environment).",
                details,
            )
        except Exception:  # noqa: BLE001 - the notifier itself must never kill the app
            log.exception("Error notifier failed")

    sys.excepthook = report
    threading.excepthook = lambda args: report(args.exc_type, args.exc_value, args.exc_traceback)
