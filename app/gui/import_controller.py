"""Models added by drop, File → Add models… or a double-click on a .gguf: validated and added to
the library off the GUI thread (used in place, copied or moved, as the user chose)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QCheckBox, QFileDialog, QMessageBox

from quantdesk.config.settings import Settings
from quantdesk.engine.library.importer import (
    MODE_COPY,
    MODE_MOVE,
    MODE_REFERENCE,
    ImportOutcome,
    import_paths,
)
from quantdesk.engine.library.store import LibraryEntry, ModelLibrary
from quantdesk.engine.quantize.convert import is_hf_folder
from quantdesk.gui.library_controller import LibraryController
from quantdesk.gui.model_controller import ModelController
from quantdesk.gui.notifier import Notifier
from quantdesk.ui.jobs import run_job


class ImportController(QObject):
    """Adds files to the library and reports what was added and what is not a model."""

    quantizeRequested = Signal(object)  # Path: a Hugging Face folder or an unquantized model

    def __init__(
        self,
        library: LibraryController,
        settings: Settings,
        models_dir: Path,
        notifier: Notifier,
        models: ModelController,
    ) -> None:
        """Copied and moved files go to ``models_dir``."""
        super().__init__()
        self.library, self.settings, self.models_dir = library, settings, models_dir
        self.notifier, self.models = notifier, models

    def add_dialog(self) -> None:
        """File → Add models…: choose .gguf files to add."""
        files, _ = QFileDialog.getOpenFileNames(
            self.notifier.dialog_parent, "Add models", str(Path.home()),
            "GGUF models (*.gguf);;All files (*)",
        )  # fmt: skip
        if files:
            self.import_files([Path(f) for f in files])

    def import_files(
        self, paths: list[Path], mode: str | None = None, load_first: bool = False
    ) -> None:
        """Validate and add dropped/opened files in the background, then report.

        Hugging Face model folders among them open the Quantize dialog instead (they are
        weights to convert, not models llama.cpp can load).
        """
        folders = [p for p in paths if is_hf_folder(p)]
        for folder in folders[:1]:
            self.quantizeRequested.emit(folder)
        paths = [p for p in paths if p not in folders]
        if not paths:
            return
        mode = mode or self._ask_import_mode()
        if mode is None:
            return
        db, models_dir = self.library.db_path, self.models_dir

        def work() -> list[ImportOutcome]:
            library = ModelLibrary(db)
            try:
                return import_paths(paths, library, models_dir, mode)
            finally:
                library.close()

        self.notifier.status("Checking dropped files…")
        run_job(
            work, on_done=lambda out: self._imported(out, load_first),
            on_error=self.notifier.job_failed,
        )  # fmt: skip

    def _ask_import_mode(self) -> str | None:
        mode = self.settings.get("import.mode")
        if mode != "ask":
            return mode
        box = QMessageBox(self.notifier.dialog_parent)
        box.setWindowTitle("Add models")
        box.setText("Use the files where they are, or copy or move them into QuantDesk's models "
                    "folder?")  # fmt: skip
        box.setInformativeText(
            "Using them in place saves disk space; the files stay yours and are never modified. "
            "Copied or moved files belong to QuantDesk's folder (it may delete them when you ask)."
        )
        use = box.addButton("Use in place", QMessageBox.ButtonRole.AcceptRole)
        copy = box.addButton("Copy", QMessageBox.ButtonRole.ActionRole)
        move = box.addButton("Move", QMessageBox.ButtonRole.ActionRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(use)
        # parented: setCheckBox does not take ownership, a bare QCheckBox would be collected
        remember = QCheckBox("Remember my choice", box)
        remember.setToolTip("Change it later in Preferences → Import")
        box.setCheckBox(remember)
        box.exec()
        clicked = box.clickedButton()
        modes = {use: MODE_REFERENCE, copy: MODE_COPY, move: MODE_MOVE}
        mode = next((m for button, m in modes.items() if clicked is button), None)
        if mode is not None and remember.isChecked():
            self.settings.set("import.mode", mode)
        box.deleteLater()
        return mode

    def _imported(self, outcomes: list[ImportOutcome], load_first: bool) -> None:
        self.notifier.clear_status()
        self.library.refresh()
        added = [o.entry for o in outcomes if o.entry is not None]
        failed = [o for o in outcomes if o.error]
        if failed:
            lines = [f"{o.source.name}: {o.error}" for o in failed]
            head = (
                "This file is not a usable model:"
                if len(failed) == 1
                else (f"{len(failed)} files are not usable models:")
            )
            self.notifier.error(
                head + "\n" + "\n".join(lines[:5]),
                details="\n".join(f"{o.source}: {o.error} {o.details}" for o in failed),
            )
        elif added:
            names = ", ".join(e.name for e in added[:3])
            offer = self._quantize_offer(added)
            hint = " It is unquantized: Quantize… makes a smaller copy." if offer else ""
            self.notifier.info(f"Added to the library: {names}.{hint}", offer)
        if added:
            self.library.select(str(added[0].path))
            if load_first:
                self.models.load(added[0])

    def _quantize_offer(self, added: list[LibraryEntry]) -> list[tuple[str, object]]:
        """A "Quantize…" action when an unquantized (F32/F16/BF16) model was added."""
        floats = [e for e in added if e.is_unquantized]
        if not floats:
            return []
        return [("Quantize…", lambda: self.quantizeRequested.emit(floats[0].path))]
