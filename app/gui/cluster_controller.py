"""The Cluster page: llama.cpp RPC workers kept in the settings, their memory asked off the GUI
thread, and a library model loaded split across them.

The split model runs in a child process of its own (``engine.serve.serving``) on a loopback
port with a fresh key (llama.cpp aborts the process that talks to a worker that goes away: never
the window's), and the chat uses it as a remote model."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject

from quantdesk.config.paths import AppPaths
from quantdesk.config.settings import Settings
from quantdesk.engine.cluster.rpc import (
    SplitServer,
    parse_endpoint,
    start_split_server,
    worker_memory,
)
from quantdesk.engine.errors import QuantDeskError
from quantdesk.engine.gguf.model_info import human_bytes
from quantdesk.engine.library.store import LibraryEntry
from quantdesk.engine.remote.models import Endpoint, RemoteModel
from quantdesk.gui.model_controller import ModelController
from quantdesk.gui.notifier import Notifier
from quantdesk.ui.cluster_page import ClusterPage
from quantdesk.ui.jobs import run_job

SETTING = "cluster.workers"


class ClusterController(QObject):
    """Workers, their memory, and the child process serving a split model."""

    def __init__(
        self,
        page: ClusterPage,
        settings: Settings,
        paths: AppPaths,
        notifier: Notifier,
        models: ModelController,
        selected_entry: Callable[[], LibraryEntry | None],
    ) -> None:
        """``selected_entry`` is the model selected in the library (the one Load splits)."""
        super().__init__()
        self.page, self.settings, self.paths = page, settings, paths
        self.notifier, self.models, self._selected_entry = notifier, models, selected_entry
        self.server: SplitServer | None = None
        self._key = ""  # the split model's library key while it runs
        self._serving_on: tuple[str, ...] = ()  # the workers it runs on
        self._states: dict[str, str] = {}
        page.addRequested.connect(self.add)
        page.removeRequested.connect(self.remove)
        page.refreshRequested.connect(self.refresh)
        page.loadRequested.connect(self.load_selected)
        models.modelLoaded.connect(self._model_loaded)
        models.modelUnloaded.connect(self.stop_server)  # Eject
        self.refresh()

    @property
    def workers(self) -> list[str]:
        """The workers' endpoints, in the order added."""
        return list(self.settings.get(SETTING))

    def add(self, text: str) -> None:
        """Keep the worker at ``text`` ("host" or "host:port") and ask for its memory."""
        try:
            endpoint = parse_endpoint(text)
        except QuantDeskError as exc:
            self.notifier.error(exc.message)
            return
        if endpoint not in self.workers:
            self.settings.set(SETTING, [*self.workers, endpoint])
        self._ask(endpoint)

    def remove(self, endpoint: str) -> None:
        """Forget a worker (a model already split across it keeps running until unloaded)."""
        self.settings.set(SETTING, [w for w in self.workers if w != endpoint])
        self._states.pop(endpoint, None)
        self._show()

    def refresh(self) -> None:
        """Ask every worker for its memory again."""
        for endpoint in self.workers:
            self._ask(endpoint)
        self._show()

    def _ask(self, endpoint: str) -> None:
        if self.server is not None and endpoint in self._serving_on:
            # a worker serves one client at a time: asking now would wait for the model to go
            self._states[endpoint] = "in use by the model loaded across the cluster"
            self._show()
            return
        self._states[endpoint] = "asking for its memory…"
        self._show()

        def answered(memory) -> None:  # noqa: ANN001 - rpc.WorkerMemory
            self._states[endpoint] = (
                f"{human_bytes(memory.free)} free of {human_bytes(memory.total)}"
            )
            self._show()

        def failed(exc: BaseException) -> None:
            self._states[endpoint] = getattr(exc, "message", str(exc))
            self._show()

        run_job(lambda: worker_memory(endpoint), on_done=answered, on_error=failed)

    def _show(self) -> None:
        self.page.set_workers([(w, self._states.get(w, "")) for w in self.workers])

    def load_selected(self) -> None:
        """Load the library's selected model split across the workers (and this computer)."""
        entry = self._selected_entry()
        if entry is None or entry.remote is not None or not entry.exists:
            self.notifier.error("Select a model file in the library first.")
            return
        workers = tuple(self.workers)
        self.stop_server()
        self._serving_on = workers
        self.page.set_status(f"Loading {entry.path.name} across {len(workers)} worker(s)…")
        self.page.load.setEnabled(False)
        log = self.paths.cache_dir / "cluster-server.log"
        settings, probe_cache = self.settings.load_settings(), self.paths.probe_cache
        run_job(
            lambda: start_split_server(entry.path, workers, settings, log, probe_cache),
            on_done=self._serving,
            on_error=self._failed,
        )

    def _serving(self, server: SplitServer) -> None:
        self.page.load.setEnabled(True)
        self.server = server
        self.page.set_status(f"{server.model_id} runs across the cluster: {server.plan}.")
        remote = RemoteModel(Endpoint(server.url, server.api_key), server.model_id)
        self._key = remote.key
        self.refresh()  # its workers show as in use
        self.models.load(LibraryEntry.for_remote(remote))

    def _failed(self, exc: BaseException) -> None:
        self.page.load.setEnabled(True)
        message = getattr(exc, "message", str(exc))
        self.page.set_status(message)
        self.notifier.error(message, getattr(exc, "details", ""))

    def _model_loaded(self, model) -> None:  # noqa: ANN001 - LoadedModel
        """Another model was loaded: the split one's process is no longer needed."""
        if self.server is not None and model.path != self._key:
            self.stop_server()

    def stop_server(self) -> None:
        """End the split model's process (its memory on the workers is freed)."""
        if self.server is not None:
            self.server.stop()
            self.server = None
            self.page.set_status("")
            self.refresh()  # free again: ask for their memory
