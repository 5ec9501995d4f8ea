"""The presets box at the top of the settings panel: named presets and the loaded model's own
default settings."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QComboBox,
    QGridLayout,
    QGroupBox,
    QLabel,
    QMenu,
    QPushButton,
    QToolButton,
    QWidget,
)

_PLACEHOLDER = "Choose a preset…"


class PresetBar(QGroupBox):
    """Pick, save and delete presets; save or forget the loaded model's defaults.

    Emits requests only; the owner changes the settings and calls :meth:`set_presets` and
    :meth:`set_model_state` to show the result.
    """

    presetChosen = Signal(str)  # name
    saveAsRequested = Signal()
    deleteRequested = Signal(str)  # name
    saveModelDefaultsRequested = Signal()
    forgetModelDefaultsRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Presets", parent)
        grid = QGridLayout(self)
        self.combo = QComboBox()
        self.combo.setAccessibleName("Preset")
        self.combo.setToolTip(
            "Apply saved settings: context length, GPU layers, sampling and system prompt."
        )
        self.combo.activated.connect(self._chosen)
        self.combo.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        self.combo.setMinimumContentsLength(8)
        self.save_as = QPushButton("Save as…")
        self.save_as.setToolTip("Save the current settings as a named preset.")
        self.save_as.clicked.connect(self.saveAsRequested)
        self.more = QToolButton()
        self.more.setText("⋯")
        self.more.setAccessibleName("More preset actions")
        self.more.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self._menu = QMenu(self.more)
        self._delete = self._menu.addAction("Delete preset", self._delete_current)
        self.more.setMenu(self._menu)
        self.model_label = QLabel()
        self.model_label.setWordWrap(True)
        self.model_label.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.save_model = QPushButton("Save for this model")
        self.save_model.setToolTip(
            "Load this model with the current settings every time (context length, GPU layers, "
            "sampling, system prompt)."
        )
        self.save_model.clicked.connect(self.saveModelDefaultsRequested)
        self.forget_model = QPushButton("Forget")
        self.forget_model.setToolTip("Stop loading this model with its saved settings.")
        self.forget_model.clicked.connect(self.forgetModelDefaultsRequested)
        # stacked, not side by side: the settings panel is narrow
        grid.addWidget(self.combo, 0, 0, 1, 2)
        grid.addWidget(self.save_as, 1, 0)
        grid.addWidget(self.more, 1, 1)
        grid.addWidget(self.model_label, 2, 0, 1, 2)
        grid.addWidget(self.save_model, 3, 0)
        grid.addWidget(self.forget_model, 3, 1)
        grid.setColumnStretch(0, 1)
        self.set_presets([])
        self.set_model_state(None, None)

    def set_presets(self, names: list[str], current: str = "") -> None:
        """Show the saved presets, ``current`` selected (none: the placeholder)."""
        self.combo.clear()
        self.combo.addItem(_PLACEHOLDER if names else "No presets saved yet", "")
        for name in names:
            self.combo.addItem(name, name)
        index = self.combo.findData(current) if current else 0
        self.combo.setCurrentIndex(max(index, 0))
        self.combo.setEnabled(bool(names))
        self._update_delete()

    def current(self) -> str:
        """The selected preset's name ("" for none)."""
        return self.combo.currentData() or ""

    def clear_selection(self) -> None:
        """Show the placeholder: the settings no longer match a preset."""
        self.combo.setCurrentIndex(0)
        self._update_delete()

    def set_model_state(self, model_name: str | None, saved_summary: str | None) -> None:
        """Say whether the loaded model (``model_name``; None: no model) has saved defaults."""
        loaded = model_name is not None
        self.save_model.setEnabled(loaded)
        self.forget_model.setVisible(saved_summary is not None)
        if not loaded:
            self.model_label.setText("Load a model to save settings for it.")
        elif saved_summary is None:
            self.model_label.setText(f"{model_name} has no settings of its own.")
        else:
            self.model_label.setText(
                f"{model_name} loads with its own settings: {saved_summary or 'saved'}."
            )

    def _chosen(self, index: int) -> None:
        name = self.combo.itemData(index) or ""
        self._update_delete()
        if name:
            self.presetChosen.emit(name)

    def _delete_current(self) -> None:
        if self.current():
            self.deleteRequested.emit(self.current())

    def _update_delete(self) -> None:
        name = self.current()
        self._delete.setEnabled(bool(name))
        self._delete.setText(f"Delete “{name}”" if name else "Delete preset")
