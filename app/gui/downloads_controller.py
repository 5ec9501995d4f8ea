"""Wires the Downloads page and Discover's Download button to the download manager.

The manager's worker threads report through ``on_change``; a queued signal
brings each update to the GUI thread. A finished file is added to the library
(owned by the app) and offered for loading at once.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtWidgets import QMessageBox

from quantdesk.config.settings import Settings
from quantdesk.engine.downloads.queue import DownloadItem, DownloadManager
from quantdesk.engine.errors import QuantDeskError
from quantdesk.engine.gguf.model_info import human_bytes
from quantdesk.engine.library.store import LibraryEntry, add_model_file
from quantdesk.gui.library_controller import LibraryController
from quantdesk.gui.model_controller import ModelController
from quantdesk.gui.notifier import CHAT_PAGE, Notifier
from quantdesk.ui.discover.quant_table import QuantRow
from quantdesk.ui.downloads_page import DownloadsPage
from quantdesk.ui.jobs import run_job


class DownloadsController(QObject):
    """Queue downloads, show their progress, add finished models to the library."""

    itemChanged = Signal(object)  # DownloadItem, emitted from worker threads
    modelAdded = Signal(object)  # LibraryEntry of a finished download (GUI thread)

    def __init__(
        self,
        page: DownloadsPage,
        page_index: int,
        manager: DownloadManager,
        settings: Settings,
        library: LibraryController,
        notifier: Notifier,
        models: ModelController,
    ) -> None:
        """``page_index`` is the Downloads page's place in the rail (shown when one is queued);
        the controller becomes ``manager``'s listener."""
        super().__init__()
        self.page, self.page_index, self.manager = page, page_index, manager
        self.library, self.notifier, self.models = library, notifier, models
        self._added: set[int] = set()
        self.itemChanged.connect(self._show_item)
        page.pauseRequested.connect(lambda i: self._act(manager.pause, i))
        page.resumeRequested.connect(lambda i: self._act(manager.resume, i))
        page.cancelRequested.connect(lambda i: self._act(manager.cancel, i))
        page.retryRequested.connect(lambda i: self._act(manager.retry, i))
        page.removeRequested.connect(self._remove)
        page.openRequested.connect(self._open)
        page.parallel.setValue(settings.get("downloads.parallel"))
        page.parallelChanged.connect(lambda n: settings.set("downloads.parallel", n))
        manager.on_change = self.on_change
        page.model.set_items(manager.items())
        for item in manager.items():
            if item.state == "done":
                self._added.add(item.id)

    def settings_applied(self, changes: dict) -> None:
        """Settings changed elsewhere: the page shows the number of parallel downloads."""
        if "downloads.parallel" in changes:  # set in Preferences: the page shows it
            self.page.parallel.setValue(changes["downloads.parallel"])

    def on_change(self, item: DownloadItem) -> None:
        """The manager's callback (any thread)."""
        self.itemChanged.emit(item)

    def _act(self, action, item_id: int) -> None:  # noqa: ANN001 - a manager method
        try:
            action(item_id)
        except QuantDeskError as exc:
            self.notifier.error(exc.message, exc.details)
        item = self.manager.get(item_id)
        if item is not None:
            self.page.model.upsert(item)

    def _remove(self, item_id: int) -> None:
        self._act(self.manager.remove, item_id)
        self.page.model.drop(item_id)

    @Slot(object)
    def _show_item(self, item: DownloadItem) -> None:
        self.page.model.upsert(item)
        if item.state == "done" and item.id not in self._added:
            self._added.add(item.id)
            self._add_to_library(item)
        elif item.state == "failed":
            self.notifier.error(f"Download of {item.files[0]} failed: {item.error}")

    def _add_to_library(self, item: DownloadItem, load: bool = False) -> None:
        db, sha256 = self.library.db_path, self.manager.verified_sha256(item.id)

        def work() -> LibraryEntry:
            return add_model_file(db, item.dest, source="downloaded", owned=True, sha256=sha256)

        def done(entry: LibraryEntry) -> None:
            self.library.refresh()
            self.notifier.info(
                f"Downloaded {entry.name} ({entry.file_type}); it is in the library.",
                actions=[("Load now", lambda: self.models.load(entry))],
            )
            self.modelAdded.emit(entry)
            if load:
                self.notifier.show_page(CHAT_PAGE)
                self.models.load(entry)

        run_job(work, on_done=done, on_error=self.notifier.job_failed)

    def _open(self, item_id: int) -> None:
        item = self.manager.get(item_id)
        if item is None:
            return
        if not Path(item.dest).is_file():
            self.notifier.error(
                f"{Path(item.dest).name} is no longer on disk (it was deleted or moved). "
                "Download it again from Discover, or remove this row."
            )
            self.page.model.upsert(item)  # the row says so now, and Open in Chat greys out
            return
        entry = self.library.find(Path(item.dest))
        if entry is None:  # removed from the library since: add it back, then load it
            self._added.discard(item.id)
            self._add_to_library(item, load=True)
            return
        self.notifier.show_page(CHAT_PAGE)
        self.models.load(entry)

    def request(self, repo_id: str, row: QuantRow, n_ctx: int, confirm: bool = True) -> None:
        """Show the estimate and free disk space again, then queue the download."""
        dest = self.manager.dest_root
        dest.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(dest).free
        if confirm:
            estimate = (
                f"Needs about {human_bytes(row.ram)} of RAM at a {n_ctx:,}-token context "
                f"({row.badge})."
                if row.ram
                else "No memory estimate for this file."
            )
            answer = QMessageBox.question(
                self.notifier.dialog_parent,
                "Download model",
                f"Download {row.quant} of {repo_id} ({human_bytes(row.size)})?\n\n{estimate}\n"
                f"Free disk space: {human_bytes(free)} in {dest}.",
            )
            if answer != QMessageBox.StandardButton.Yes:
                return

        def work() -> DownloadItem:
            return self.manager.enqueue(repo_id, list(row.files))

        def queued(item: DownloadItem) -> None:
            self.page.model.upsert(item)
            self.notifier.show_page(self.page_index)
            self.page.select_id(item.id)

        run_job(work, on_done=queued, on_error=self.notifier.job_failed)

    def shutdown(self) -> None:
        """Stop the transfers (parts are kept and resume at the next start)."""
        self.manager.shutdown()
