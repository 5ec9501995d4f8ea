"""The Cluster page: two `quantdesk rpc-worker` processes on loopback, their memory shown, and a
library model loaded across them (in a `quantdesk serve` child process) chatting in the window."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pytestqt.exceptions import TimeoutError as SignalTimeout

from quantdesk.engine.cluster.rpc import rpc_available
from tests.support.tiny_models import write_tiny_chat_model

pytestmark = pytest.mark.skipif(not rpc_available(), reason="llama.cpp built without GGML_RPC")


def test_load_a_model_across_the_cluster_and_chat(
    qtbot, app, workers: list[str], tmp_path: Path
) -> None:
    window, controller = app
    page, cluster = window.cluster_page, controller.cluster
    for endpoint in workers:
        page.address.setText(endpoint)
        page.address.returnPressed.emit()
    assert controller.settings.get("cluster.workers") == workers  # kept in the settings
    qtbot.waitUntil(lambda: all("free of" in page.workers.item(i).text() for i in range(2)),
                    timeout=30_000)  # fmt: skip
    model = write_tiny_chat_model(tmp_path / "split-me.gguf")
    controller.imports.import_files([model], mode="reference")
    qtbot.waitUntil(lambda: window.library.model.row_of(str(model)) >= 0, timeout=30_000)
    window.library.select_path(str(model))
    try:
        with qtbot.waitSignal(controller.models.modelLoaded, timeout=120_000) as loaded:
            page.load.click()
    except SignalTimeout as exc:  # once in a full CI run: keep what the split server said
        log = controller.paths.cache_dir / "cluster-server.log"
        said = log.read_text(errors="replace")[-3000:] if log.exists() else "(no log)"
        raise AssertionError(f"not loaded; the page says {page.status.text()!r}; "
                             f"the server's log:\n{said}") from exc  # fmt: skip
    assert loaded.args[0].path.startswith("remote/") and cluster.server is not None
    assert "runs across the cluster" in page.status.text()
    assert re.search(r": [1-9]\d* of \d+ layers on 2 RPC worker", page.status.text())
    with qtbot.waitSignal(controller.chat.replyFinished, timeout=60_000) as finished:
        controller.chat.send("Hello, cluster")
    assert finished.args[0].completion_tokens > 0
    process = cluster.server.process
    controller.models.eject()  # unloading ends the child process that held the split model
    qtbot.waitUntil(lambda: process.poll() is not None, timeout=30_000)
    assert cluster.server is None
