"""One editor widget per declared setting, shared by the settings panel and Preferences.

The widget is chosen from the spec alone (type, range, choices), so a setting
declared in app/config/settings.py gets an editor without code here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QLineEdit,
    QPlainTextEdit,
    QSpinBox,
    QWidget,
)

#: Strings allowed to be longer than this are edited in a multi-line box.
MULTILINE_OVER = 1000


class SettingSpec(Protocol):
    """What an editor needs to know about one setting."""

    name: str
    type: type
    default: Any
    minimum: float | None
    maximum: float | None
    choices: tuple[str, ...]
    label: str
    tooltip: str


def editable(spec: SettingSpec) -> bool:
    """True when :func:`make_editor` has a widget for this setting's type."""
    return spec.type in (bool, int, float, str)


def make_editor(spec: SettingSpec, on_change: Callable[[str, Any], None]) -> QWidget:
    """A widget editing ``spec``; ``on_change(name, value)`` is called on every user edit."""
    name = spec.name
    editor: QWidget
    if spec.type is bool:
        editor = QCheckBox()
        editor.toggled.connect(lambda v: on_change(name, v))
    elif spec.type is str and getattr(spec, "choices", ()):
        editor = QComboBox()
        labels = getattr(spec, "choice_labels", ()) or spec.choices
        for label, choice in zip(labels, spec.choices, strict=True):
            editor.addItem(label, choice)
        editor.currentIndexChanged.connect(lambda i, e=editor: on_change(name, e.itemData(i)))
    elif spec.type is str and (spec.maximum or 0) > MULTILINE_OVER:
        editor = QPlainTextEdit()
        editor.textChanged.connect(lambda e=editor: on_change(name, e.toPlainText()))
    elif spec.type is str:
        editor = QLineEdit()
        if spec.maximum is not None:
            editor.setMaxLength(int(spec.maximum))
        editor.textChanged.connect(lambda v: on_change(name, v))
    elif spec.type in (int, float):
        editor = _spin_box(spec)
        editor.valueChanged.connect(lambda v: on_change(name, v))
    else:
        raise TypeError(f"no editor for {name} of type {spec.type.__name__}")
    editor.setToolTip(spec.tooltip)
    editor.setAccessibleName(spec.label or name)
    set_editor_value(editor, spec.default)
    return editor


def _spin_box(spec: SettingSpec) -> QSpinBox | QDoubleSpinBox:
    box: QSpinBox | QDoubleSpinBox
    if spec.type is float:
        box = QDoubleSpinBox()
        box.setDecimals(2)
        box.setSingleStep(0.05)
    else:
        box = QSpinBox()
    box.setRange(
        spec.minimum if spec.minimum is not None else -(2**31),
        spec.maximum if spec.maximum is not None else 2**31 - 1,
    )
    box.setKeyboardTracking(False)
    if special := getattr(spec, "special_value", ""):
        box.setSpecialValueText(special)  # shown instead of the minimum ("Auto")
    return box


def editor_value(editor: QWidget) -> Any:
    """The value an editor from :func:`make_editor` shows."""
    if isinstance(editor, QCheckBox):
        return editor.isChecked()
    if isinstance(editor, QComboBox):
        return editor.currentData()
    if isinstance(editor, QPlainTextEdit):
        return editor.toPlainText()
    if isinstance(editor, QLineEdit):
        return editor.text()
    return editor.value()  # type: ignore[attr-defined]


def set_editor_value(editor: QWidget, value: Any) -> None:
    """Show ``value`` in an editor from :func:`make_editor` without calling its on_change."""
    editor.blockSignals(True)
    try:
        if isinstance(editor, QCheckBox):
            editor.setChecked(value)
        elif isinstance(editor, QComboBox):
            index = editor.findData(value)
            if index >= 0:
                editor.setCurrentIndex(index)
        elif isinstance(editor, QPlainTextEdit):
            if editor.toPlainText() != value:
                editor.setPlainText(value)
        elif isinstance(editor, QLineEdit):
            editor.setText(value)
        else:
            editor.setValue(value)  # type: ignore[attr-defined]
    finally:
        editor.blockSignals(False)
