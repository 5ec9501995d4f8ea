"""Runs the OpenAI-compatible server from the GUI over the model the chat uses."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QTimer

from quantdesk.config.settings import Settings
from quantdesk.engine.errors import QuantDeskError
from quantdesk.gui.model_controller import ModelController
from quantdesk.gui.notifier import Notifier
from quantdesk.ui.model_worker import WorkerHost
from quantdesk.ui.server_page import ServerPage

if TYPE_CHECKING:
    from quantdesk.engine.serve.openai_server import RunningServer


class ServerController(QObject):
    """Start/stop from the Server page; the request log is refreshed every half second."""

    def __init__(
        self, page: ServerPage, settings: Settings, notifier: Notifier, models: ModelController
    ) -> None:
        super().__init__()
        self.page, self.settings, self.notifier, self.models = page, settings, notifier, models
        self.running: RunningServer | None = None
        self._shown = 0
        self._timer = QTimer(self)
        self._timer.setInterval(500)
        self._timer.timeout.connect(self._show_log)
        page.startRequested.connect(self.start)
        page.stopRequested.connect(self.stop)
        for change in (models.modelLoaded, models.modelUnloaded, models.modelLoadFailed):
            change.connect(self._show_model)  # the page names the model served (or none)
        models.modelStopped.connect(self._model_stopped)
        models.modelLoaded.connect(self._reloaded)
        models.modelLoadFailed.connect(self._reload_failed)
        self._stopped_with = ""  # the host's last words while it is loaded again for serving

    def _model_id(self) -> str:
        """The API's name of the model loaded in Chat; "" when none is (the API lists none)."""
        loaded = self.models.loaded
        return Path(loaded.path).stem if loaded else ""

    def _show_model(self, *_args: object) -> None:
        loaded = self.models.loaded
        self.page.set_model(self._model_id(), loaded.name if loaded else "")

    def _model_stopped(self, message: str, details: str) -> None:
        """The model's host process ended (a request or a chat reply crashed llama.cpp): while
        serving, load it again at once, as ``quantdesk serve`` does, so that programs using the
        API go on without someone clicking Reload."""
        if self.running is None:
            return
        said = f"{message} Loading it again for the server…"
        self._stopped_with = message
        self._show_log()
        self.page.add_log_lines([said])
        self.notifier.error(said, details)  # no Reload button: it is under way
        self.models.reload()

    def _reloaded(self, *_args: object) -> None:
        if self._stopped_with:
            said = f"{self._stopped_with} It was loaded again; the server goes on."
            self._stopped_with = ""
            self.page.add_log_lines([said])
            self.notifier.info(said)

    def _reload_failed(self, *_args: object) -> None:
        self._stopped_with = ""  # the app shows why the load failed

    def start(self, port: int, network: bool, key: str) -> None:
        """Serve on this computer (or the network, with a key) at ``port`` (0: any free one)."""
        self.stop()
        # imported when first started: aiohttp costs 0.1 s of the app's start-up otherwise
        from quantdesk.engine.serve.openai_server import OpenAIServer, RunningServer

        origins = tuple(o for o in self.settings.get("server.allowed_origins").split(",")
                        if o.strip())  # fmt: skip
        server = OpenAIServer(WorkerHost(self.models.worker), self._model_id, key or None,
                              allowed_origins=origins)  # fmt: skip
        try:
            self.running = RunningServer(server, "0.0.0.0" if network else "127.0.0.1", port)
        except QuantDeskError as exc:
            self.page.set_running(None, exc.message)
            return
        self._shown = 0
        self.page.set_running(self.running.url)
        self._timer.start()

    def stop(self) -> None:
        """Stop serving."""
        self._timer.stop()
        if self.running is not None:
            self._show_log()
            self.running.stop()
            self.running = None
        self.page.set_running(None)

    def _show_log(self) -> None:
        if self.running is None:
            return
        log = self.running.server.log
        self.page.add_log_lines(log[self._shown :])
        self._shown = len(log)
