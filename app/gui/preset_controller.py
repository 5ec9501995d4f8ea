"""Settings presets and each model's own defaults, wired to the settings panel's preset box.

A named preset applies at once (load settings then ask for a reload). A model's saved
defaults apply just before that model loads, so it loads with them; its system prompt is
only taken into a chat that has no messages yet, never into a conversation under way.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QInputDialog, QLineEdit, QMessageBox

from quantdesk.config.settings import Settings, preset_summary
from quantdesk.engine.library.presets import MAX_NAME_LENGTH, PresetStore
from quantdesk.engine.sqlite_files import open_store

if TYPE_CHECKING:
    from quantdesk.gui.notifier import Notifier
    from quantdesk.ui.model_worker import LoadedModel
    from quantdesk.ui.settings.preset_bar import PresetBar


class PresetController(QObject):
    """Owns the preset store; runs on the GUI thread."""

    def __init__(
        self,
        bar: PresetBar,
        presets_db: Path,
        settings: Settings,
        notifier: Notifier,
        *,
        apply: Callable[[dict], None],
        conversation_under_way: Callable[[], bool],
    ) -> None:
        """``apply`` changes settings as the user would; ``conversation_under_way`` says
        whether the chat shown has messages (its system prompt is then its own)."""
        super().__init__()
        self.settings, self.notifier = settings, notifier
        self._apply_settings, self._conversation_under_way = apply, conversation_under_way
        self.store, self.warning = open_store(
            PresetStore, presets_db, what="The presets file",
            not_kept="Presets saved now are not kept.",
        )  # fmt: skip
        self._model: LoadedModel | None = None
        self._closed = False
        self.bar = bar
        self.bar.presetChosen.connect(self.choose)
        self.bar.saveAsRequested.connect(self._ask_name)
        self.bar.deleteRequested.connect(self._ask_delete)
        self.bar.saveModelDefaultsRequested.connect(self.save_model_defaults)
        self.bar.forgetModelDefaultsRequested.connect(self.forget_model_defaults)
        self.refresh()

    def close(self) -> None:
        """Close the store; signals still queued from the model worker are ignored after."""
        self.store.close()
        self._closed = True

    def refresh(self, current: str = "") -> None:
        """Re-read the preset names into the box."""
        self.bar.set_presets([p.name for p in self.store.presets()], current)

    # -- named presets -----------------------------------------------------------------------

    def choose(self, name: str) -> None:
        """Apply the preset ``name`` to the current settings."""
        preset = self.store.preset(name)
        if preset is None:
            self.refresh()
            return
        self._apply(preset.values, f"preset “{name}”")

    def save_preset(self, name: str) -> None:
        """Save the current settings as the preset ``name`` (replacing one of that name)."""
        try:
            preset = self.store.save_preset(name, self.settings.preset_values())
        except ValueError as exc:
            self.notifier.error(str(exc))
            return
        self.refresh(current=preset.name)
        self.notifier.status(f"Preset “{preset.name}” saved.", 5000)

    def delete_preset(self, name: str) -> None:
        """Forget the preset ``name``."""
        self.store.delete_preset(name)
        self.refresh()

    def settings_edited(self) -> None:
        """A setting was changed by hand: the settings no longer are the chosen preset."""
        self.bar.clear_selection()

    def _ask_name(self) -> None:
        name, ok = QInputDialog.getText(
            self.notifier.dialog_parent, "Save preset", "Name of the preset:",
            QLineEdit.EchoMode.Normal,
            self.bar.current(),
        )  # fmt: skip
        name = " ".join(name.split())[:MAX_NAME_LENGTH]
        if not ok or not name:
            return
        if self.store.preset(name) is not None:
            answer = QMessageBox.question(
                self.notifier.dialog_parent, "Save preset", f"Replace the preset “{name}”?"
            )
            if answer != QMessageBox.StandardButton.Yes:
                return
        self.save_preset(name)

    def _ask_delete(self, name: str) -> None:
        answer = QMessageBox.question(
            self.notifier.dialog_parent, "Delete preset", f"Delete the preset “{name}”?"
        )
        if answer == QMessageBox.StandardButton.Yes:
            self.delete_preset(name)

    # -- the loaded model's defaults ---------------------------------------------------------

    def before_load(self, path: Path | str) -> None:
        """Apply the settings saved for the model at ``path`` before it loads."""
        values = self.store.model_defaults(path)
        if values is None:
            return
        if self._conversation_under_way():  # a conversation under way keeps its own system prompt
            values = {k: v for k, v in values.items() if k != "chat.system_prompt"}
        self._apply(values, f"the settings saved for {Path(path).name}")

    def on_model(self, model: LoadedModel | None) -> None:
        """The loaded model changed (None: nothing loaded): show whether it has defaults."""
        if self._closed:
            return
        self._model = model
        if model is None:
            self.bar.set_model_state(None, None)
            return
        values = self.store.model_defaults(model.path)
        summary = None if values is None else preset_summary(values)
        self.bar.set_model_state(Path(model.path).name, summary)

    def save_model_defaults(self) -> None:
        """Remember the current settings as the loaded model's own."""
        if self._model is None:
            return
        self.store.save_model_defaults(self._model.path, self.settings.preset_values())
        self.on_model(self._model)
        self.notifier.status(
            f"{Path(self._model.path).name} will load with these settings.", 5000
        )

    def forget_model_defaults(self) -> None:
        """Drop the loaded model's own settings (the current settings stay as they are)."""
        if self._model is not None:
            self.store.forget_model_defaults(self._model.path)
            self.on_model(self._model)

    # -- applying ----------------------------------------------------------------------------

    def _apply(self, values: dict, what: str) -> None:
        usable, skipped = Settings.check_preset(values)
        if usable:
            self._apply_settings(usable)
        if skipped:
            self.notifier.info(
                f"Some values of {what} cannot be used by this version and were skipped: "
                + ", ".join(skipped) + "."
            )  # fmt: skip
