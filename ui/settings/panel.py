"""The right-hand panel of the chat: load settings, sampling and the system prompt.

Built from declared setting specs (objects with name/type/default/minimum/
maximum/label/tooltip), so it never invents keys or ranges of its own.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from quantdesk.ui.settings._editors import SettingSpec, make_editor, set_editor_value
from quantdesk.ui.settings.preset_bar import PresetBar

__all__ = ["SettingSpec", "SettingsPanel"]


class SettingsPanel(QScrollArea):
    """Load and sampling settings; emits ``settingChanged(name, value)`` on every edit."""

    settingChanged = Signal(str, object)
    resetRequested = Signal()
    reloadRequested = Signal()

    def __init__(self, specs: Iterable[SettingSpec], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWidgetResizable(True)
        # the panel is narrow: its content wraps and shrinks to the width, never scrolls sideways
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setAccessibleName("Model settings")
        self._editors: dict[str, QWidget] = {}
        body = QWidget()
        layout = QVBoxLayout(body)
        self.presets = PresetBar()
        layout.addWidget(self.presets)
        groups = {
            "load": self._group(layout, "Load settings"),
            "sampling": self._group(layout, "Sampling"),
        }
        self._reload_row = QWidget()
        row = QHBoxLayout(self._reload_row)
        row.setContentsMargins(0, 0, 0, 0)
        note = QLabel("Load settings changed: reload to apply.")
        note.setWordWrap(True)
        reload_button = QPushButton("Reload")
        reload_button.clicked.connect(self.reloadRequested)
        row.addWidget(note, 1)
        row.addWidget(reload_button)
        groups["load"].addRow(self._reload_row)
        self._reload_row.hide()
        self.estimate_label = QLabel("")
        self.estimate_label.setWordWrap(True)
        self.estimate_label.setAccessibleName("Memory estimate for these settings")
        self.estimate_label.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self._estimate_row = self.estimate_label
        self._prompt = QPlainTextEdit()  # replaced by the declared system prompt's editor
        specs = list(specs)
        for spec in specs:
            section = spec.name.split(".", 1)[0]
            if spec.name == "chat.system_prompt":
                self._prompt = self._editor(spec)
            elif section in groups:
                groups[section].addRow(spec.label or spec.name, self._editor(spec))
        self._prompt.setPlaceholderText("Optional instructions sent before every chat.")
        self._prompt.setAccessibleName("System prompt")
        self._prompt.setMaximumHeight(120)
        groups["load"].addRow(self.estimate_label)
        prompt_box = QGroupBox("System prompt")
        QVBoxLayout(prompt_box).addWidget(self._prompt)
        layout.addWidget(prompt_box)
        reset = QPushButton("Reset to defaults")
        reset.setToolTip("Put every load and sampling setting back to its default value.")
        reset.clicked.connect(self.resetRequested)
        layout.addWidget(reset, 0, Qt.AlignmentFlag.AlignLeft)
        layout.addStretch(1)
        self.setWidget(body)
        # never narrower than its content: a narrower panel cut its editors off on the right
        self.setMinimumWidth(body.minimumSizeHint().width()
                             + self.verticalScrollBar().sizeHint().width() + 2 * self.frameWidth())

    @staticmethod
    def _group(layout: QVBoxLayout, title: str) -> QFormLayout:
        box = QGroupBox(title)
        form = QFormLayout(box)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        layout.addWidget(box)
        return form

    def _editor(self, spec: SettingSpec) -> Any:
        editor = make_editor(spec, self.settingChanged.emit)
        self._editors[spec.name] = editor
        return editor

    def editor(self, name: str) -> QWidget:
        """The widget editing setting ``name`` (tests and keyboard focus use it)."""
        return self._editors[name]

    def set_values(self, values: dict[str, Any]) -> None:
        """Show ``values`` without emitting settingChanged."""
        for name, value in values.items():
            editor = self._editors.get(name)
            if editor is not None:
                set_editor_value(editor, value)

    def set_estimate_text(self, text: str) -> None:
        """Show what the chosen load settings need on this machine (empty hides it)."""
        self.estimate_label.setText(text)
        self.estimate_label.setVisible(bool(text))

    def set_reload_needed(self, needed: bool) -> None:
        """Show or hide the "reload to apply" note."""
        self._reload_row.setVisible(needed)
