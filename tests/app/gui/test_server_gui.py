"""The Server page: the chat's model served to the official openai client from the running
app; requests take turns with the chat and show in the request log."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

openai = pytest.importorskip("openai")

from tests.support.tiny_models import (  # noqa: E402
    write_spm_model_without_byte_tokens,
    write_tiny_chat_model,
)


def test_serve_the_loaded_model_from_the_app(qtbot, app, tmp_path: Path) -> None:
    window, controller = app
    model = write_tiny_chat_model(tmp_path / "served.gguf")
    with qtbot.waitSignal(controller.models.modelLoaded, timeout=60_000):
        controller.imports.import_files([model], mode="reference", load_first=True)
    page = window.server_page
    controller.server.start(0, False, "")  # port 0: any free one (the page's spin box: 1024+)
    url = controller.server.running.url
    assert url.startswith("http://127.0.0.1:") and url in page.status.text()
    client = openai.OpenAI(base_url=url, api_key="none", max_retries=0, timeout=60)
    assert [m.id for m in client.models.list()] == ["served"]

    result: dict = {}

    def ask() -> None:  # the client blocks: the GUI thread must keep running the app
        result["reply"] = client.chat.completions.create(
            model="served", messages=[{"role": "user", "content": "Hi"}], max_tokens=8)

    asker = threading.Thread(target=ask)
    asker.start()
    with qtbot.waitSignal(controller.chat.replyFinished, timeout=60_000):
        controller.chat.send("And a chat message meanwhile")  # takes its turn on the same worker
    qtbot.waitUntil(lambda: not asker.is_alive(), timeout=60_000)
    assert result["reply"].usage.completion_tokens <= 8
    qtbot.waitUntil(lambda: "POST /v1/chat/completions 200" in page.log.toPlainText(),
                    timeout=5_000)  # fmt: skip
    chat = [m for m in window.chat.transcript.messages() if m.role != "notice"]
    assert [m.role for m in chat] == ["user", "assistant"]  # the API request is not in the chat
    controller.server.stop()
    assert page.status.text() == "Stopped." and controller.server.running is None


def test_the_page_names_the_model_served_and_no_model_is_invented(
    qtbot, app, tmp_path: Path
) -> None:
    """Issue 19, fault 10: /v1/models listed a "no-model-loaded" model; the page did not say
    which model it serves."""
    window, controller = app
    page = window.server_page
    controller.server.start(0, False, "")
    client = openai.OpenAI(base_url=controller.server.running.url, api_key="none",
                           max_retries=0, timeout=60)  # fmt: skip
    assert [m.id for m in client.models.list()] == []
    assert "No model is loaded" in page.serving.text()
    model = write_tiny_chat_model(tmp_path / "served.gguf", name="Served Tiny")
    with qtbot.waitSignal(controller.models.modelLoaded, timeout=60_000):
        controller.imports.import_files([model], mode="reference", load_first=True)
    assert [m.id for m in client.models.list()] == ["served"]
    assert "Served Tiny" in page.serving.text() and "served" in page.serving.text()
    controller.models.eject()
    qtbot.waitUntil(lambda: "No model is loaded" in page.serving.text(), timeout=30_000)
    assert [m.id for m in client.models.list()] == []
    controller.server.stop()


def test_a_request_that_crashes_the_model_is_a_500_and_the_server_goes_on(
    qtbot, app, tmp_path: Path
) -> None:
    """Issue 21: a request that makes llama.cpp abort in the model's host process gets a 500 in
    OpenAI's error shape; the app loads the model again by itself while it serves, and the next
    request is answered (as `quantdesk serve` does), with the chat told what happened."""
    window, controller = app
    model = write_spm_model_without_byte_tokens(tmp_path / "no-bytes.gguf")
    with qtbot.waitSignal(controller.models.modelLoaded, timeout=60_000):
        controller.imports.import_files([model], mode="reference", load_first=True)
    first_host = controller.models.worker._session.pid
    controller.server.start(0, False, "")
    client = openai.OpenAI(base_url=controller.server.running.url, api_key="none",
                           max_retries=0, timeout=60)  # fmt: skip
    failed: dict = {}

    def ask(text: str) -> None:
        try:
            failed["reply"] = client.chat.completions.create(
                model="no-bytes", messages=[{"role": "user", "content": text}], max_tokens=4)
        except openai.APIStatusError as exc:
            failed["error"] = exc

    asker = threading.Thread(target=ask, args=("It costs 5 €",))
    with qtbot.waitSignal(controller.models.modelLoaded, timeout=60_000):  # loaded again, unasked
        asker.start()
        qtbot.waitUntil(lambda: not asker.is_alive(), timeout=60_000)
    error = failed.pop("error")
    assert error.status_code == 500
    assert error.body["message"] == ("The model stopped: llama.cpp aborted: unordered_map::at — "
                                     "this model's vocabulary cannot encode '€'.")  # fmt: skip
    assert controller.models.worker._session.pid != first_host
    page_log = window.server_page.log.toPlainText()
    assert "cannot encode '€'. Loading it again for the server…" in page_log
    notices = [m.text for m in window.chat.transcript.messages() if m.role == "notice"]
    assert notices and "cannot encode '€'" in notices[-1]
    qtbot.waitUntil(lambda: window.banner.label.text().endswith(
        "cannot encode '€'. It was loaded again; the server goes on."), timeout=5_000)
    assert "It was loaded again; the server goes on." in window.server_page.log.toPlainText()

    asker = threading.Thread(target=ask, args=("Hello again",))
    asker.start()
    qtbot.waitUntil(lambda: not asker.is_alive(), timeout=60_000)
    assert "error" not in failed and failed["reply"].usage.completion_tokens >= 1
    controller.server.stop()
