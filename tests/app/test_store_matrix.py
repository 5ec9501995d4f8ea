"""Issue 20, items 1-2: every store × every way a file goes wrong, against the GUI and the CLI.

Five stores (chats, library, presets, downloads, model index) × seven cases (truncated to 0,
truncated to half, garbage, garbage after page 1, written by a newer QuantDesk, locked by
another process for 12 s - past the 10 s an open waits - and read-only): the app starts and
stays alive, a problem is said in one line, and a file is moved aside only when SQLite finds it
corrupt (busy is not damaged). The GUI runs in a child process
(tests/support/store_probe_gui.py) so an abort is a failed case, not a dead test run.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support import REPO
from tests.support.tiny_models import write_tiny_chat_model

STORES = {"chats": "chats.sqlite3", "library": "library.sqlite3", "presets": "presets.sqlite3",
          "downloads": "downloads.sqlite3", "model index": "model-index.sqlite3"}  # fmt: skip
CASES = ("truncated to 0", "truncated to half", "garbage", "garbage after page 1", "newer",
         "locked for 12 s", "read-only")  # fmt: skip
CORRUPT = {"truncated to half", "garbage", "garbage after page 1"}
CLI = {"chats": ["chats"], "library": ["ls"], "presets": ["doctor"], "downloads": ["downloads"],
       "model index": ["ls"]}  # fmt: skip
CLI_READS_IT = {"chats", "library", "downloads", "model index"}  # doctor only names presets
_AS_ROOT = os.geteuid() == 0


def _seed(data: Path, models: Path) -> None:
    """A data folder as a user has it: a chat, a model, a preset, a download, an index row."""
    from quantdesk.engine.chat.conversations import ConversationStore
    from quantdesk.engine.downloads.store import DownloadStore
    from quantdesk.engine.library._model_index import ModelIndex
    from quantdesk.engine.library.discovery import DiscoveredModel
    from quantdesk.engine.library.presets import PresetStore
    from quantdesk.engine.library.store import add_model_file

    data.mkdir(parents=True)
    model = write_tiny_chat_model(models / "seeded.gguf", name="seeded")
    chats = ConversationStore(data / STORES["chats"])
    chat = chats.create_chat("Seeded chat")
    chats.add_message(chat.id, "user", "hello")
    chats.add_message(chat.id, "assistant", "hi there")
    chats.close()
    add_model_file(data / STORES["library"], model, source="imported", owned=False)
    presets = PresetStore(data / STORES["presets"])
    presets.save_preset("Seeded", {"sampling.temperature": 0.5})
    presets.close()
    queue = DownloadStore(data / STORES["downloads"])
    item = queue.insert("qd-test/seeded", None, ["seeded-Q2_K.gguf"], data / "models", 1000)
    queue.set_state(item, "failed", error="seeded")
    index = ModelIndex(data / STORES["model index"])
    index.refresh([DiscoveredModel(model, "seeded", "folder", (model,))])
    index.close()


def _damage(path: Path, case: str) -> subprocess.Popen | None:
    """Do ``case`` to ``path``; a lock holder's process is returned (it lets go after 12 s)."""
    size = path.stat().st_size
    if case == "truncated to 0":
        path.write_bytes(b"")
    elif case == "truncated to half":
        with open(path, "r+b") as f:
            f.truncate(size // 2)
    elif case == "garbage":
        path.write_bytes(os.urandom(size))
    elif case == "garbage after page 1":
        assert size > 4096, f"{path.name} has one page only"
        path.write_bytes(path.read_bytes()[:4096] + os.urandom(size - 4096))
    elif case == "newer":
        db = sqlite3.connect(path)
        db.execute("PRAGMA user_version=99")
        db.close()
    elif case == "locked for 12 s":
        holder = subprocess.Popen(
            [sys.executable, "-c",
             "import sqlite3, sys, time\n"
             "db = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
             "db.execute('BEGIN IMMEDIATE')\n"
             "db.execute('CREATE TABLE held_by_another_program (x)')\n"
             "print('held', flush=True)\n"
             "time.sleep(12)\n"
             "db.execute('ROLLBACK')\n", str(path)],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        return holder
    elif case == "read-only":
        path.chmod(0o444)
        if _AS_ROOT:  # root writes whatever the mode says: make the file immutable instead
            done = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True)
            if done.returncode != 0:
                pytest.skip(f"running as root on a file system without chattr +i: {done.stderr}")
    return None


def _env(base: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QUANTDESK_", "XDG_"))}
    env.update(QUANTDESK_DATA_DIR=str(base / "data"), QUANTDESK_SKIP_STARTER="1",
               QUANTDESK_SKIP_DISCOVERY="1", HOME=str(base / "home"),
               XDG_RUNTIME_DIR=str(base / "run"), QT_QPA_PLATFORM="offscreen",
               PYTHONPATH=str(REPO))  # fmt: skip
    return env


def _run(base: Path, argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, env=_env(base), cwd=REPO, capture_output=True, text=True,
                          timeout=180)  # fmt: skip


def _fresh_copy(seeded: Path, into: Path) -> Path:
    base = into / "run-folder"
    shutil.copytree(seeded / "data", base / "data")
    shutil.copytree(seeded / "models", base / "models")
    (base / "home").mkdir()
    (base / "run").mkdir(mode=0o700)
    return base


def _remove(base: Path) -> None:
    if _AS_ROOT:
        for path in base.rglob("*.sqlite3"):
            subprocess.run(["chattr", "-i", str(path)], capture_output=True)
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("seeded")
    _seed(base / "data", base / "models")
    return base


def _moved_aside(data: Path, name: str) -> list[Path]:
    stem = Path(name).stem
    kept = (p for p in data.glob(f"{stem}.*") if p.name != name)
    return sorted(p for p in kept if not p.name.endswith(("-wal", "-shm"))
                  and ".before-v" not in p.name)  # fmt: skip


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("store", list(STORES))
def test_a_damaged_store_leaves_the_app_alive_and_says_so(seeded: Path, store: str, case: str,
                                                          tmp_path: Path) -> None:  # fmt: skip
    name = STORES[store]
    results = {}
    for who in ("gui", "cli"):
        base = _fresh_copy(seeded, tmp_path / who)
        try:
            target = base / "data" / name
            holder = _damage(target, case)
            before = target.read_bytes()  # as the damage left it
            started = time.monotonic()
            argv = ([sys.executable, "-m", "tests.support.store_probe_gui"] if who == "gui"
                    else [sys.executable, "-m", "quantdesk", *CLI[store]])  # fmt: skip
            done = _run(base, argv)
            took = time.monotonic() - started
            if holder is not None:
                holder.wait(timeout=30)
            results[who] = done
            said = done.stdout + done.stderr
            assert "Traceback" not in said, said
            assert done.returncode in ((0,) if who == "gui" else (0, 2)), (done.returncode, said)
            notes = [line for line in done.stderr.splitlines() if line.startswith("quantdesk:")]
            if who == "cli":
                assert len(notes) <= 1 and all(len(n) < 600 for n in notes), done.stderr
            aside = _moved_aside(base / "data", name)
            if case in CORRUPT and (who == "gui" or store in CLI_READS_IT):
                assert aside, f"{name} {case}: not kept aside ({sorted(os.listdir(base / 'data'))})"
                assert any(p.read_bytes() == before for p in aside)  # kept as it was
            else:
                assert not aside, f"{name} {case}: moved aside though not corrupt: {aside}"
            if case in ("newer", "read-only"):
                assert target.read_bytes() == before, f"{who}: {name} {case}: the file was changed"
            if who == "gui":
                seen = json.loads(done.stdout.strip().splitlines()[-1])
                message = seen["banner"]
                if case in CORRUPT or case in ("newer", "read-only"):
                    assert message, f"{name} {case}: nothing said"
                if case in CORRUPT:
                    assert "damaged" in message and aside[0].name in message
                if case in ("locked for 12 s", "read-only") and store == "chats":
                    assert seen["chats"] == ["Seeded chat"], seen  # busy is not damaged
                if case in ("locked for 12 s", "read-only") and store == "library":
                    assert seen["library"] == ["seeded.gguf"], seen
                if case in ("locked for 12 s", "read-only") and store == "downloads":
                    assert seen["downloads"] == ["seeded-Q2_K.gguf"], seen
                assert took < 60
        finally:
            _remove(base)
