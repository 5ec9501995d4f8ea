"""Remote servers in the app: a second `quantdesk serve` on loopback (another process) stands in
for llama-server, Ollama or LM Studio. Its models appear in the library and chat in the same
window; the server list survives a restart and keeps its keys private."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from quantdesk.engine.chat.templates import Message
from quantdesk.engine.events import TokenText
from quantdesk.engine.params import SamplingSettings
from quantdesk.engine.remote.models import Endpoint, RemoteError
from quantdesk.engine.remote.servers import RemoteServers
from tests.support.tiny_models import write_tiny_chat_model

KEY = "sesame"


@pytest.fixture(scope="module")
def far_server(tmp_path_factory: pytest.TempPathFactory):
    """`quantdesk serve` of a tiny chat model, in its own process, on a free port."""
    folder = tmp_path_factory.mktemp("far")
    model = write_tiny_chat_model(folder / "far-model.gguf")
    env = dict(os.environ, QUANTDESK_DATA_DIR=str(folder / "data"))
    process = subprocess.Popen(
        [sys.executable, "-m", "quantdesk", "serve", str(model), "--port", "0", "--api-key", KEY,
         "--ctx", "512", "--threads", "1", "--gpu-layers", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
    )  # fmt: skip
    line = process.stdout.readline()  # "Serving far-model at http://127.0.0.1:PORT/v1 (...)"
    assert " at http://127.0.0.1:" in line, line
    yield line.split(" at ", 1)[1].split()[0]
    process.terminate()
    process.wait(timeout=30)


def remote_rows(window) -> list:
    return [e for e in window.library.model.entries() if e.remote is not None]


def test_chat_with_a_model_on_another_server(qtbot, app, far_server: str) -> None:
    window, controller = app
    controller.settings_ctl.apply({"sampling.temperature": 0.0, "sampling.max_tokens": 12})
    controller.remote.add(far_server.removesuffix("/v1"), KEY)  # as typed: no /v1
    qtbot.waitUntil(lambda: len(remote_rows(window)) == 1, timeout=30_000)
    entry = remote_rows(window)[0]
    assert entry.name == "far-model"
    row = window.library.model.row_of(str(entry.path))
    shown = window.library.model.data(window.library.model.index(row))
    assert shown.splitlines() == ["far-model", "remote", f"Remote · {entry.remote.host}"]
    assert "1 model" in window.library.server_menu.actions()[0].text()

    with qtbot.waitSignal(controller.models.modelLoaded, timeout=30_000):
        window.library.loadRequested.emit(entry)
    assert "remote · 127.0.0.1:" in window.chat.model_status.text()
    assert "sent to that server" in window.chat.mode_notice.text()  # not "nothing leaves"
    with qtbot.waitSignal(controller.chat.replyFinished, timeout=60_000) as finished:
        controller.chat.send("Hello from the app")
    chat = [m for m in window.chat.transcript.messages() if m.role != "notice"]
    assert [m.role for m in chat] == ["user", "assistant"]
    # the very reply the server gives to the same request, streamed into the same window
    direct = Endpoint(far_server, KEY).stream_chat(
        "far-model", [Message("user", "Hello from the app")],
        SamplingSettings(temperature=0.0, max_tokens=12), threading.Event())  # fmt: skip
    expected = "".join(e.text for e in direct if isinstance(e, TokenText))
    assert expected and chat[1].text == expected
    assert finished.args[0].completion_tokens > 0

    controller.remote.remove(far_server)  # the loaded model's server: it is unloaded too
    qtbot.waitUntil(lambda: controller.models.loaded is None, timeout=10_000)
    assert remote_rows(window) == []


def test_a_server_that_refuses_the_key_is_listed_with_the_reason(
    qtbot, app, far_server: str
) -> None:
    window, controller = app
    controller.remote.add(far_server, "wrong key")
    qtbot.waitUntil(
        lambda: "refused the API key" in window.library.server_menu.actions()[0].text(),
        timeout=30_000,
    )
    assert remote_rows(window) == []


def test_the_dialog_checks_the_server_before_adding_it(qtbot, far_server: str) -> None:
    from quantdesk.gui.remote_controller import check_server
    from quantdesk.ui.remote_server_dialog import ServerDialog

    dialog = ServerDialog(check_server)
    qtbot.addWidget(dialog)
    assert not dialog.add_button.isEnabled()
    dialog.url.setText(far_server)
    dialog.key.setText("nope")
    dialog.run_check()
    qtbot.waitUntil(lambda: "refused the API key" in dialog.result.text(), timeout=30_000)
    assert not dialog.add_button.isEnabled()
    dialog.key.setText(KEY)
    dialog.run_check()
    qtbot.waitUntil(dialog.add_button.isEnabled, timeout=30_000)
    assert dialog.models == ["far-model"] and "far-model" in dialog.result.text()


def test_the_server_list_is_private_and_survives_damage(tmp_path: Path) -> None:
    path = tmp_path / "remote-servers.json"
    servers = RemoteServers(path)
    servers.add("localhost:8080", "secret")
    servers.add("https://example.org/v1/", "")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # it holds API keys
    again = RemoteServers(path)
    assert [(s.url, s.api_key) for s in again.servers] == [
        ("http://localhost:8080/v1", "secret"), ("https://example.org/v1", None)]  # fmt: skip
    again.remove("http://localhost:8080/v1")
    assert [s.url for s in RemoteServers(path).servers] == ["https://example.org/v1"]
    with pytest.raises(RemoteError, match="not a server address"):
        again.add("ftp://example.org", "")
    path.write_text("{not json", encoding="utf-8")
    damaged = RemoteServers(path)
    assert damaged.servers == [] and damaged.recovered_from is not None
    assert damaged.recovered_from.read_text(encoding="utf-8") == "{not json"  # kept, not lost


def test_the_last_remote_model_is_loaded_again_at_the_next_start(qtbot, far_server: str) -> None:
    import argparse

    from quantdesk.gui import build_app

    window, controller, _ = build_app(argparse.Namespace(data_dir=None, files=[]))
    qtbot.addWidget(window)
    controller.start([])
    controller.remote.add(far_server, KEY)
    qtbot.waitUntil(lambda: len(remote_rows(window)) == 1, timeout=30_000)
    with qtbot.waitSignal(controller.models.modelLoaded, timeout=30_000):
        controller.models.load(remote_rows(window)[0])
    key = controller.models.loaded.path
    controller.shutdown()

    again, controller2, _ = build_app(argparse.Namespace(data_dir=None, files=[]))
    qtbot.addWidget(again)
    try:
        with qtbot.waitSignal(controller2.models.modelLoaded, timeout=30_000) as loaded:
            controller2.start([])
        assert loaded.args[0].path == key  # the server was asked first, then its model loaded
    finally:
        controller2.shutdown()
