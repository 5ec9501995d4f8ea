"""The library sidebar: the model library's store and its list, models found everywhere,
filters, details, remove and delete.

Models other tools keep (LM Studio, Ollama, Jan, GPT4All, the Hugging Face cache) and those
in watched folders join the library table as entries the app does not own (``owned=False``,
``source`` naming the tool), referenced where they are: one list, one entry per real path.
Discovery, the index refresh, fit verdicts and the details report run as jobs, off the GUI
thread. Only files the app owns can be deleted, after a confirmation naming file and size.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QFileDialog, QMessageBox

from quantdesk.config.paths import AppPaths
from quantdesk.config.settings import Settings
from quantdesk.engine.estimate.load_plan import Budget, machine_budget
from quantdesk.engine.estimate.recommend import fit_files, settings_estimate_text
from quantdesk.engine.gguf.model_info import format_text, human_bytes, summarize
from quantdesk.engine.gguf.reader import read_header_from_file
from quantdesk.engine.library.discovery import SOURCES, split_parts
from quantdesk.engine.library.store import LibraryEntry, ModelLibrary
from quantdesk.engine.library.sync import ScanResult, discovery_roots, sync_discovered
from quantdesk.engine.sqlite_files import open_store
from quantdesk.gui.model_controller import ModelController
from quantdesk.gui.notifier import Notifier
from quantdesk.ui.jobs import run_job
from quantdesk.ui.library.model_details import ModelDetails, ModelDetailsDialog
from quantdesk.ui.library.panel import Fit, LibraryPanel, source_label


def model_parts(path: Path, known: Mapping[str, tuple[Path, ...]]) -> tuple[Path, ...]:
    """Every file of the model whose first file is ``path`` (split sets by their name)."""
    return known.get(str(path)) or split_parts(path)


class SingleFlight:
    """One background run of a job at a time: a request while it runs is remembered (once)
    and answered by one more run when it ends."""

    def __init__(self) -> None:
        self.running = False
        self._again = False

    def begin(self) -> bool:
        """True: start a run now; False: one is running, and it will be asked to run again."""
        if self.running:
            self._again = True
            return False
        self.running = True
        return True

    def end(self) -> bool:
        """The run ended; returns whether it was asked for again meanwhile."""
        again, self.running, self._again = self._again, False, False
        return again


class LibraryController(QObject):
    """The library store and its sidebar: the list, rescans, watched folders, fit verdicts,
    Details…, Remove and Delete file…"""

    listChanged = Signal()  # the list was read again
    quantizeRequested = Signal(object)  # Path: Quantize… on a model of the list
    pathSelected = Signal(str)  # the model at this path (or remote key) was selected
    scanned = Signal(object)  # ScanResult
    fitsUpdated = Signal()
    detailsShown = Signal(object)  # ModelDetailsDialog
    deleted = Signal(object)  # LibraryEntry

    def __init__(
        self,
        panel: LibraryPanel,
        settings: Settings,
        paths: AppPaths,
        notifier: Notifier,
        models: ModelController,
        *,
        home: Path | None = None,
        env: Mapping[str, str] | None = None,
        budget: Budget | None = None,
    ) -> None:
        super().__init__()
        self.panel, self.settings, self.paths = panel, settings, paths
        self.notifier, self.models = notifier, models
        self.store, self.warning = open_store(
            ModelLibrary, paths.library_db, what="The model library",
            not_kept="Models added now are not kept.",
            untouched="your model files were not touched",
        )  # fmt: skip
        self._remote_entries: list[LibraryEntry] = []  # the remote servers' models
        self.home, self.env = home, env
        self.budget = budget  # this machine's, probed on first use
        self.details_dialog: ModelDetailsDialog | None = None
        self._scan: ScanResult | None = None
        self._index_noted = ""  # the model index note last shown
        self._scans = SingleFlight()  # one rescan at a time; asked again meanwhile: once more
        self._fits = SingleFlight()
        self._fit_cache: dict[tuple, Fit] = {}
        self._closed = False
        self._fit_timer = QTimer(self)
        self._fit_timer.setSingleShot(True)
        self._fit_timer.setInterval(300)
        self._fit_timer.timeout.connect(self.update_fits)
        p = self.panel
        p.loadRequested.connect(models.load)
        p.removeRequested.connect(self._remove)
        p.revealRequested.connect(self._reveal)
        p.quantizeRequested.connect(lambda entry: self.quantizeRequested.emit(entry.path))
        p.rescanRequested.connect(self.rescan)
        p.addFolderRequested.connect(self._add_folder_dialog)
        p.removeFolderRequested.connect(self.remove_folder)
        p.detailsRequested.connect(self.show_details)
        p.deleteRequested.connect(self.delete)
        p.model.modelReset.connect(self._fit_timer.start)
        models.modelLoaded.connect(lambda model: self.select(model.path))
        p.set_watched_folders(self.watched_folders())
        QTimer.singleShot(0, self.rescan)

    def shutdown(self) -> None:
        """Stop reacting to jobs still running (the app is closing)."""
        self._closed = True
        self._fit_timer.stop()

    def close(self) -> None:
        """Close the library's store (after the background jobs ended)."""
        self.store.close()

    def load_settings_changed(self) -> None:
        """The load settings changed: the fit verdicts are worked out again."""
        self._fit_timer.start()

    # -- the list --------------------------------------------------------------------------

    @property
    def db_path(self) -> Path:
        """The library's SQLite file (background jobs open their own connection to it)."""
        return self.paths.library_db

    def entries(self) -> list[LibraryEntry]:
        """The models in the library store (not the remote servers' models)."""
        return self.store.entries()

    def listed(self) -> list[LibraryEntry]:
        """Every model in the list, the remote servers' included."""
        return self.panel.model.entries()

    def find(self, path: Path) -> LibraryEntry | None:
        """The library's entry for the file at ``path``, if it has one."""
        return self.store.find(path)

    def refresh(self) -> None:
        """Re-read the library into the sidebar and picker (with the remote servers' models)."""
        self.panel.set_entries(self.store.entries() + self._remote_entries)
        if self.models.loaded is not None:
            self.select(self.models.loaded.path)
        self.listChanged.emit()

    def set_remote_entries(self, entries: list[LibraryEntry]) -> None:
        """The remote servers' models changed: the list shows these."""
        self._remote_entries = list(entries)
        self.refresh()

    def select(self, path: str) -> None:
        """Select the model at ``path`` (or remote key) in the list and the chat's picker."""
        self.panel.select_path(path)
        self.pathSelected.emit(path)

    def _remove(self, entry: LibraryEntry) -> None:
        """Remove from library (a remote server's model: its server removes it)."""
        if entry.remote is None:
            self.store.remove(entry.id)
            self.refresh()
        self._remember_removed(entry)

    def _reveal(self, entry: LibraryEntry) -> None:
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(entry.path.parent)))

    # -- discovery -------------------------------------------------------------------------

    def watched_folders(self) -> list[str]:
        """The folders the user asked to watch."""
        return [str(f) for f in self.settings.get("library.watched_folders")]

    def _roots(self):  # noqa: ANN202 - discovery.ToolRoots
        return discovery_roots(self.home, os.environ if self.env is None else self.env)

    def rescan(self) -> None:
        """Look for models everywhere again (off the GUI thread); the list follows."""
        if self._closed:
            return
        if not self._scans.begin():
            return
        self.panel.set_scanning(True)
        paths = self.paths
        watched = [Path(f) for f in self.watched_folders()]
        hidden = set(self.settings.get("library.hidden"))
        roots = self._roots()

        def work() -> ScanResult:
            return sync_discovered(
                paths.library_db, paths.model_index_db, watched=watched, hidden=hidden, roots=roots
            )

        run_job(work, on_done=self._scanned, on_error=self._scan_failed)

    def _scanned(self, result: ScanResult) -> None:
        if self._closed:
            return
        again = self._scans.end()
        names_changed = self._scan is None or self._scan.names != result.names
        self._scan = result
        found = len(result.names)
        self.panel.set_scanning(
            False, f"{found} found in other apps and folders" if found else ""
        )
        if names_changed and result.names:
            self.panel.model.set_display_names(result.names)
        if result.added or result.removed:
            self.refresh()
        if result.invalid:
            self._say_invalid(result.invalid)
        if result.index_note and result.index_note != self._index_noted:
            self._index_noted = result.index_note  # once, not on every rescan
            self.notifier.info(result.index_note)
        self._fit_timer.start()
        if again:  # asked again meanwhile: only the latest scan is announced
            self.rescan()
        else:
            self.scanned.emit(result)

    def _say_invalid(self, invalid: dict[str, str]) -> None:
        """Files in the watched folders that are not usable models: which, and why."""
        lines = [f"{Path(path).name}: {why}" for path, why in invalid.items()]
        head = ("This file in a watched folder is not a usable model:" if len(lines) == 1
                else f"{len(lines)} files in watched folders are not usable models:")  # fmt: skip
        self.notifier.error(head + "\n" + "\n".join(lines[:5]),
                                   details="\n".join(f"{p}: {w}" for p, w in invalid.items()))

    def _scan_failed(self, exc: BaseException) -> None:
        if self._closed:
            return
        self._scans.end()
        self.panel.set_scanning(False, "Rescan failed")
        self.notifier.job_failed(exc)

    def add_folder(self, folder: Path) -> None:
        """Watch ``folder`` (its models are listed in place) and rescan."""
        folders = self.watched_folders()
        if str(folder) not in folders:
            self.settings.set("library.watched_folders", [*folders, str(folder)])
        self.panel.set_watched_folders(self.watched_folders())
        self.rescan()

    def remove_folder(self, folder: str) -> None:
        """Stop watching ``folder``; its models leave the list at the rescan that follows."""
        folders = [f for f in self.watched_folders() if f != folder]
        self.settings.set("library.watched_folders", folders)
        self.panel.set_watched_folders(folders)
        self.rescan()

    def _add_folder_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(
            self.notifier.dialog_parent, "Watch a folder for models", str(Path.home())
        )
        if folder:
            self.add_folder(Path(folder))

    def _remember_removed(self, entry: LibraryEntry) -> None:
        """A found model the user removed stays out of the list at later rescans."""
        if entry.source in SOURCES:
            hidden = list(self.settings.get("library.hidden"))
            if str(entry.path) not in hidden:
                self.settings.set("library.hidden", [*hidden, str(entry.path)])

    # -- fit verdicts ----------------------------------------------------------------------

    def update_fits(self) -> None:
        """Compute the fit verdicts not cached yet for the listed models (off the GUI thread)."""
        if self._closed:
            return
        if not self._fits.begin():
            return
        load = self.settings.load_settings()
        known = self._scan.parts if self._scan else {}
        todo: list[tuple[Path, tuple[Path, ...]]] = []
        cached: dict[str, Fit] = {}
        keys: dict[str, tuple] = {}
        for entry in self.panel.model.entries():
            if entry.remote is not None:  # runs on its server: no fit on this machine
                continue
            try:
                st = entry.path.stat()
            except OSError:
                continue
            key = (str(entry.path), st.st_size, st.st_mtime_ns, load)
            keys[str(entry.path)] = key
            if key in self._fit_cache:
                cached[str(entry.path)] = self._fit_cache[key]
            else:
                todo.append((entry.path, model_parts(entry.path, known)))
        if cached:
            self.panel.model.set_fits(cached)
        if not todo:
            self._fits.end()
            self.fitsUpdated.emit()
            return

        def work() -> tuple[Budget, dict[str, Fit]]:
            budget = self.budget or machine_budget()
            fits = fit_files(todo, load, budget)
            return budget, {path: Fit(*verdict) for path, verdict in fits.items()}

        def done(outcome: tuple[Budget, dict[str, Fit]]) -> None:
            again = self._fits.end()
            if self._closed:
                return
            self.budget, fits = outcome
            for path, verdict in fits.items():
                self._fit_cache[keys[path]] = verdict
            self.panel.model.set_fits(fits)
            self.fitsUpdated.emit()
            if again:
                self.update_fits()

        def failed(exc: BaseException) -> None:
            self._fits.end()

        run_job(work, on_done=done, on_error=failed)

    # -- details and delete ----------------------------------------------------------------

    def show_details(self, entry: LibraryEntry) -> None:
        """Read the header and estimate off the GUI thread, then open the Details dialog."""
        load = self.settings.load_settings()
        found = (self._scan.sha256 if self._scan else {}).get(str(entry.path), "")
        sha = entry.sha256 or found  # checked at download (or named by the HF/Ollama cache)
        row = self.panel.model.row_of(str(entry.path))
        name = self.panel.model.display_name(row) if row >= 0 else entry.name

        def work() -> ModelDetails:
            budget = self.budget or machine_budget()
            report = summarize(read_header_from_file(entry.path), path=str(entry.path))
            try:
                estimate = settings_estimate_text(entry.path, load, budget)
            except Exception as exc:  # noqa: BLE001 - the report is still worth showing
                estimate = f"No estimate: {getattr(exc, 'message', exc)}"
            return ModelDetails(
                name=name, path=str(entry.path), source=source_label(entry.source)
                + ("" if entry.owned else " (used in place, not owned by QuantDesk)"),
                size=human_bytes(entry.size), sha256=sha, estimate=estimate,
                report=format_text(report),
            )  # fmt: skip

        def done(details: ModelDetails) -> None:
            if self._closed:
                return
            if self.details_dialog is not None:
                self.details_dialog.close()
            self.details_dialog = ModelDetailsDialog(details, self.notifier.dialog_parent)
            self.details_dialog.show()
            self.detailsShown.emit(self.details_dialog)

        run_job(work, on_done=done, on_error=self.notifier.job_failed)

    def delete(self, entry: LibraryEntry) -> None:
        """Delete an owned model's file(s) after a confirmation naming it and its size."""
        if not entry.owned:
            self.notifier.error(
                f"{entry.path.name} belongs to {source_label(entry.source)}: QuantDesk only "
                "deletes files it copied or downloaded itself. Use Remove from library."
            )
            return
        files = model_parts(entry.path, {})
        size = sum(p.stat().st_size for p in files if p.is_file())
        listing = "\n".join(str(p) for p in files)
        answer = QMessageBox.question(
            self.notifier.dialog_parent,
            "Delete model file",
            f"Delete {entry.path.name} ({human_bytes(size)}) from disk?\n\n{listing}\n\n"
            "This cannot be undone.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Cancel,
        )
        if answer != QMessageBox.StandardButton.Yes:
            return
        if self.models.loaded is not None and self.models.loaded.path == str(entry.path):
            self.models.eject()
        try:
            for p in files:
                p.unlink(missing_ok=True)
        except OSError as exc:
            self.notifier.error(f"Could not delete {entry.path.name}: {exc.strerror}.")
            return
        self.store.remove(entry.id)
        self.refresh()
        self.notifier.info(f"Deleted {entry.path.name} ({human_bytes(size)}).")
        self.deleted.emit(entry)
