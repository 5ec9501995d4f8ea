"""One QuantDesk per data folder: a second launch hands its files to the running window
(QLocalServer/QLocalSocket, a real second process)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from quantdesk.gui.single_instance import InstanceServer, hand_over, server_name
from tests.support.tiny_models import write_tiny_model


def _launch(data_dir: Path, *files: Path) -> subprocess.Popen:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "QUANTDESK_SKIP_STARTER": "1",
           "QUANTDESK_SKIP_DISCOVERY": "1"}  # fmt: skip
    cmd = [sys.executable, "-m", "quantdesk", "--data-dir", str(data_dir), *map(str, files)]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_a_second_launch_hands_its_file_to_the_running_window(qtbot, tmp_path: Path) -> None:
    from quantdesk.gui import build_app

    data = tmp_path / "data"
    window, controller, paths = build_app(argparse.Namespace(data_dir=str(data), files=[]))
    qtbot.addWidget(window)
    window.show()
    server = InstanceServer(paths.data_dir, controller.open_files)
    window.closing.connect(server.close)  # as run_gui does
    controller.start([])
    try:
        assert server.listening
        for name in ("first.gguf", "second.gguf"):  # like two double-clicks in a file manager
            model = write_tiny_model(tmp_path / name)
            started = time.monotonic()
            second = _launch(data, model)
            with qtbot.waitSignal(controller.models.modelLoaded, timeout=60_000) as loaded:
                qtbot.waitUntil(lambda p=second: p.poll() is not None, timeout=30_000)
            assert second.returncode == 0, second.stderr.read().decode()
            assert time.monotonic() - started < 30
            assert Path(loaded.args[0].path) == model.resolve()
        assert window.library.model.rowCount() == 2  # both reached the same window
    finally:
        window.close()


def test_instances_of_other_data_folders_are_separate(qtbot, tmp_path: Path) -> None:
    got: list[list[Path]] = []
    server = InstanceServer(tmp_path / "a", got.append)
    try:
        assert server_name(tmp_path / "a") != server_name(tmp_path / "b")
        assert not hand_over(tmp_path / "b", [tmp_path / "x.gguf"])  # nobody runs on "b"
        assert got == []
    finally:
        server.close()
    assert not hand_over(tmp_path / "a", [])  # closed: the next launch starts its own window
