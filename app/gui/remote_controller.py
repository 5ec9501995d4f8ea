"""Remote servers in the GUI: added and removed from the library panel, their models listed
in the library beside the local ones and loaded into the same chat window."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QDialog

from quantdesk.engine.library.store import LibraryEntry
from quantdesk.engine.remote.models import Endpoint, RemoteModel, normalized_url, parse_remote_key
from quantdesk.engine.remote.servers import RemoteServers
from quantdesk.gui.model_controller import ModelController
from quantdesk.gui.notifier import Notifier
from quantdesk.ui.jobs import run_job
from quantdesk.ui.library.panel import LibraryPanel
from quantdesk.ui.remote_server_dialog import ServerDialog


def check_server(url: str, api_key: str) -> list[str]:
    """The model ids the server at ``url`` offers (RemoteError when it does not answer)."""
    return Endpoint(normalized_url(url), api_key or None).models()


class RemoteController(QObject):
    """Keeps the remote servers (remote-servers.json) and the library rows of their models."""

    entriesChanged = Signal(list)  # list[LibraryEntry]: the listed models of every server

    def __init__(
        self, panel: LibraryPanel, servers_file: Path, notifier: Notifier, models: ModelController
    ) -> None:
        super().__init__()
        self.panel, self.notifier, self.models = panel, notifier, models
        self.store = RemoteServers(servers_file)
        self.entries: list[LibraryEntry] = []  # the listed models of every server that answered
        self._models: dict[str, list[str]] = {}  # server URL -> model ids it last listed
        self._states: dict[str, str] = {}  # server URL -> "3 models", "asking…" or the error
        self._pending = ""  # the key of a remote model to load once its server listed it
        panel.addServerRequested.connect(self.add_dialog)
        panel.removeServerRequested.connect(self.remove)
        panel.removeRequested.connect(self._remove_entry)
        if self.store.recovered_from is not None:
            notifier.error(
                f"The list of remote servers was damaged and was moved aside to "
                f"{self.store.recovered_from}. Add the servers again."
            )
        self.refresh()

    def refresh(self) -> None:
        """Ask every server for its models again (off the GUI thread)."""
        for endpoint in self.store.servers:
            self._list(endpoint)
        self._publish()

    def _list(self, endpoint: Endpoint) -> None:
        self._states[endpoint.url] = "asking for its models…"
        run_job(
            endpoint.models,
            on_done=lambda models, e=endpoint: self._listed(e, models),
            on_error=lambda exc, e=endpoint: self._unreachable(e, exc),
        )

    def load_when_listed(self, key: str) -> None:
        """Load the remote model with library key ``key`` (the last one used) as soon as its
        server lists it; nothing happens when the server does not answer or no longer has it."""
        self._pending = key
        self._load_pending()

    def _load_pending(self) -> None:
        entry = next((e for e in self.entries if str(e.path) == self._pending), None)
        if entry is not None and self.models.loaded is None and not self.models.loading:
            self._pending = ""
            self.models.load(entry)

    def _listed(self, endpoint: Endpoint, models: list[str]) -> None:
        if self.store.find(endpoint.url) != endpoint:  # removed or changed meanwhile
            return
        self._models[endpoint.url] = models
        self._states[endpoint.url] = f"{len(models)} model{'s' if len(models) != 1 else ''}"
        self._publish()
        if self._pending:
            self._load_pending()

    def _unreachable(self, endpoint: Endpoint, exc: BaseException) -> None:
        if self.store.find(endpoint.url) != endpoint:
            return
        self._models.pop(endpoint.url, None)
        self._states[endpoint.url] = getattr(exc, "message", str(exc))
        self._publish()

    def _publish(self) -> None:
        servers = self.store.servers
        self.entries = [
            LibraryEntry.for_remote(RemoteModel(server, model))
            for server in servers
            for model in self._models.get(server.url, [])
        ]
        self.panel.set_servers([(s.url, self._states.get(s.url, "")) for s in servers])
        self.entriesChanged.emit(self.entries)

    def add(self, url: str, api_key: str) -> Endpoint:
        """Keep the server at ``url`` (RemoteError for an address that is no http(s) URL) and
        list its models."""
        endpoint = self.store.add(url, api_key)
        self._list(endpoint)
        self._publish()
        return endpoint

    def add_dialog(self) -> None:
        """Ask for a server's address and key; add it once checked."""
        dialog = ServerDialog(check_server, self.notifier.dialog_parent)
        if dialog.exec() == QDialog.DialogCode.Accepted:
            self.add(dialog.url.text(), dialog.key.text())

    def remove(self, url: str) -> None:
        """Forget the server at ``url``; its model is unloaded when it was the loaded one."""
        self.store.remove(url)
        self._models.pop(url, None)
        self._states.pop(url, None)
        loaded = self.models.loaded
        remote = parse_remote_key(loaded.path) if loaded is not None else None
        if remote is not None and remote[0] == url:
            self.models.eject()
        self._publish()

    def _remove_entry(self, entry: LibraryEntry) -> None:
        """Remove from library on a remote server's model forgets its server."""
        if entry.remote is not None:
            self.remove(entry.remote.endpoint.url)
