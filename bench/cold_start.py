"""Cold start to a usable window: QuantDesk against a bare PySide6 window.

    .venv/bin/python bench/cold_start.py [--runs 5] [--json]

Each run is a fresh Python process started from here (offscreen Qt, an empty data folder, no
starter model download). The clock runs from just before the process is spawned until the
event loop's first pass after the window was shown and the app's start-up work (library,
chat history, the first queued tasks) ran: the moment a click would be handled. The reference
is the same for a bare ``QMainWindow``: what any PySide6 app pays for Python, Qt and a window.
Prints medians (and JSON with ``--json``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

# Both children stop at the first event-loop pass after everything queued before exec() ran.
_READY = """
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
_exec = QApplication.exec
def _report_and_close():
    print("READY", flush=True)
    for window in QApplication.topLevelWidgets():  # closing shuts the app down as a user would
        window.close()
def _exec_then_report(self=None):
    app = QApplication.instance()
    QTimer.singleShot(0, lambda: QTimer.singleShot(0, _report_and_close))
    return _exec()
QApplication.exec = _exec_then_report
"""

_QUANTDESK = _READY + """
import sys
from quantdesk.gui import run_gui
sys.exit(run_gui(["--data-dir", sys.argv[1]]))
"""

_BARE = _READY + """
from PySide6.QtWidgets import QMainWindow
app = QApplication([])
w = QMainWindow()
w.resize(1200, 800)
w.show()
app.exec()
"""


def time_start(code: str, data_dir: str) -> float:
    """Seconds from spawning a Python running ``code`` to its READY line."""
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", QUANTDESK_SKIP_STARTER="1",
               QUANTDESK_SKIP_DISCOVERY="1")  # fmt: skip
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code, data_dir], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    for line in proc.stdout:  # type: ignore[union-attr]
        if line.startswith("READY"):
            elapsed = time.perf_counter() - started
            proc.wait(timeout=60)
            return elapsed
    proc.wait(timeout=60)
    raise RuntimeError(f"the child exited ({proc.returncode}) without reporting READY")


def measure(runs: int) -> dict:
    """Median cold-start seconds of QuantDesk and of a bare window, alternating."""
    ours, bare = [], []
    with tempfile.TemporaryDirectory(prefix="quantdesk-cold-") as data:
        time_start(_QUANTDESK, data)  # first run creates the data folder's files: not counted
        for _ in range(runs):
            ours.append(time_start(_QUANTDESK, data))
            bare.append(time_start(_BARE, data))
    return {"quantdesk_s": statistics.median(ours), "bare_qt_s": statistics.median(bare),
            "quantdesk_runs": ours, "bare_runs": bare}  # fmt: skip


def main(argv: list[str]) -> int:
    """Measure and print."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = measure(args.runs)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"QuantDesk: {result['quantdesk_s']:.2f} s, bare PySide6 window: "
              f"{result['bare_qt_s']:.2f} s (medians of {args.runs})")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
