"""The settings panel and the Preferences dialog: changes applied at once, with their effects
(a Reload offered for load settings, the loaded model's estimate again, the theme), presets."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QApplication

from quantdesk.config.settings import PRESET_KEYS, SECTIONS, SETTINGS, Settings
from quantdesk.engine.estimate.load_plan import Budget, machine_budget
from quantdesk.engine.estimate.recommend import settings_estimate_text
from quantdesk.engine.remote.models import parse_remote_key
from quantdesk.gui.model_controller import ModelController
from quantdesk.gui.notifier import Notifier
from quantdesk.gui.preset_controller import PresetController
from quantdesk.gui.theme import apply_theme
from quantdesk.ui.jobs import run_job
from quantdesk.ui.settings.panel import SettingsPanel
from quantdesk.ui.settings.preferences_dialog import PreferencesDialog

#: The Preferences page of the Hugging Face token.
HUB_TOKEN_SECTION = "Hugging Face"


class SettingsController(QObject):
    """Applies what the user changes in the panel, the Preferences dialog or a preset."""

    applied = Signal(dict)  # the settings just changed, by name
    loadSettingsChanged = Signal()  # a load setting changed (or all were reset)

    def __init__(
        self,
        panel: SettingsPanel,
        settings: Settings,
        notifier: Notifier,
        models: ModelController,
        presets_db: Path,
        *,
        conversation_under_way: Callable[[], bool],
        extra_pages: Callable[[], list[tuple[str, object]]] = list,
    ) -> None:
        """``extra_pages`` gives the Preferences pages other controllers own (title, widget)."""
        super().__init__()
        self.panel, self.settings, self.notifier, self.models = panel, settings, notifier, models
        self._extra_pages = extra_pages
        self.preferences: PreferencesDialog | None = None
        self.presets = PresetController(
            panel.presets, presets_db, settings, notifier,
            apply=self.apply, conversation_under_way=conversation_under_way,
        )  # fmt: skip
        self._budget: Budget | None = None
        self._estimate_timer = QTimer(self)
        self._estimate_timer.setSingleShot(True)
        self._estimate_timer.setInterval(250)
        self._estimate_timer.timeout.connect(self._update_estimate)
        panel.set_values({name: settings.get(name) for name in SETTINGS})
        panel.settingChanged.connect(self._setting_changed)
        panel.resetRequested.connect(self._reset_settings)
        panel.reloadRequested.connect(models.reload)
        models.aboutToLoad.connect(self.presets.before_load)
        models.modelLoaded.connect(self._model_loaded)
        models.modelLoadFailed.connect(lambda _message: self.presets.on_model(None))
        models.modelUnloaded.connect(lambda: self.presets.on_model(None))
        models.modelStopped.connect(lambda *_words: self.presets.on_model(None))

    def shutdown(self) -> None:
        """Stop the estimate timer (the app is closing)."""
        self._estimate_timer.stop()

    def close(self) -> None:
        """Close the presets file (after the model worker stopped)."""
        self.presets.close()

    def open_preferences(self, section: str | None = None) -> None:
        """Show Preferences on the current settings (at the page titled ``section``, if given);
        applied changes take effect at once."""
        dialog = PreferencesDialog(SETTINGS.values(), self.settings.values(), SECTIONS,
                                   self.notifier.dialog_parent)  # fmt: skip
        dialog.applied.connect(self.apply)
        for title, page in self._extra_pages():
            dialog.add_page(title, page)
        if section is not None:
            dialog.show_section(section)
        dialog.finished.connect(dialog.deleteLater)
        dialog.open()
        self.preferences = dialog

    def apply(self, changes: dict[str, Any]) -> None:
        """Change several settings (already valid) at once, saved once, with their effects:
        shown in the settings panel, a reload offered for load settings, the theme applied;
        :attr:`applied` tells the rest (the chat keeps its system prompt, downloads their
        number in parallel)."""
        self.settings.update(changes)
        self.panel.set_values(changes)
        if any(name.startswith("load.") for name in changes):
            if self.models.loaded is not None:
                self.panel.set_reload_needed(True)
                self._estimate_timer.start()
            self.loadSettingsChanged.emit()
        if "appearance.theme" in changes:
            apply_theme(QApplication.instance(), changes["appearance.theme"])
        self.applied.emit(changes)

    def show_system_prompt(self, text: str) -> None:
        """A chat with its own system prompt is shown: it becomes the setting (not applied
        back to that chat)."""
        self.settings.set("chat.system_prompt", text)
        self.panel.set_values({"chat.system_prompt": text})

    def _setting_changed(self, name: str, value: object) -> None:
        """The user edited one setting in the panel."""
        try:
            self.apply({name: value})
        except ValueError as exc:
            self.notifier.error(str(exc))
            return
        if name in PRESET_KEYS:
            self.presets.settings_edited()

    def _reset_settings(self) -> None:
        self.presets.settings_edited()
        self.settings.reset("load.")
        self.settings.reset("sampling.")
        self.panel.set_values({n: self.settings.get(n) for n in SETTINGS})
        if self.models.loaded is not None:
            self.panel.set_reload_needed(True)
        self.loadSettingsChanged.emit()

    def _model_loaded(self, model: object) -> None:
        self.panel.set_reload_needed(False)
        self._update_estimate()
        self.presets.on_model(model)

    def _update_estimate(self) -> None:
        """Show what the current load settings need for the loaded model (off the GUI thread)."""
        loaded = self.models.loaded
        if loaded is None or parse_remote_key(loaded.path):
            self.panel.set_estimate_text("")  # a remote model uses no memory here
            return
        path, load = Path(loaded.path), self.settings.load_settings()

        def work() -> str:
            if self._budget is None:
                self._budget = machine_budget()
            return settings_estimate_text(path, load, self._budget)

        run_job(
            work,
            on_done=self.panel.set_estimate_text,
            on_error=lambda exc: self.panel.set_estimate_text(
                f"No estimate: {getattr(exc, 'message', exc)}"
            ),
        )
