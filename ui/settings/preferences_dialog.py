"""The Preferences dialog: every user-facing declared setting, one page per section.

Built from the same specs as the settings panel (through ui/settings/_editors.py):
a setting with a label and an editable type appears here without code. Edits are
pending until Apply or OK; each page can put its section back to the defaults.
Pages that are not settings (the Hugging Face token) join with :meth:`add_page`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from quantdesk.ui.settings._editors import (
    SettingSpec,
    editable,
    editor_value,
    make_editor,
    set_editor_value,
)


class ExtraPage(Protocol):
    """A page of Preferences that is not made of settings: it applies its own edits."""

    changed: Any  # a Signal() emitted on every edit

    def has_changes(self) -> bool: ...

    def apply(self) -> bool: ...


class PreferencesDialog(QDialog):
    """Edits ``values``; emits ``applied(changes)`` (name → new value) on Apply and OK."""

    applied = Signal(dict)

    def __init__(
        self,
        specs: Iterable[SettingSpec],
        values: Mapping[str, Any],
        section_titles: Mapping[str, str] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Preferences")
        self.resize(680, 460)
        titles = dict(section_titles or {})
        self._specs = {s.name: s for s in specs if s.label and editable(s)}
        self._current = {n: values.get(n, s.default) for n, s in self._specs.items()}
        self._pending = dict(self._current)
        self._editors: dict[str, QWidget] = {}
        self._sections: dict[str, list[str]] = {}
        self._extras: list[tuple[int, ExtraPage]] = []
        for name in self._specs:
            self._sections.setdefault(name.split(".", 1)[0], []).append(name)
        order = [s for s in titles if s in self._sections]
        order += [s for s in self._sections if s not in titles]

        self.section_list = QListWidget()
        self.section_list.setAccessibleName("Preference sections")
        self.section_list.setFixedWidth(160)
        self.section_list.setStyleSheet("QListWidget::item { padding: 6px 8px; }")
        self.pages = QStackedWidget()
        for section in order:
            self.section_list.addItem(titles.get(section, section.capitalize()))
            self.pages.addWidget(self._page(section, titles.get(section, section.capitalize())))
        self.section_list.currentRowChanged.connect(self.pages.setCurrentIndex)
        self.section_list.setCurrentRow(0)

        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok
            | QDialogButtonBox.StandardButton.Cancel
            | QDialogButtonBox.StandardButton.Apply
        )
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.apply_button = self.buttons.button(QDialogButtonBox.StandardButton.Apply)
        self.apply_button.clicked.connect(self.apply)
        self.apply_button.setEnabled(False)

        body = QHBoxLayout()
        body.addWidget(self.section_list)
        body.addWidget(self.pages, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(body, 1)
        layout.addWidget(self.buttons)

    @staticmethod
    def _titled(title: str) -> tuple[QWidget, QVBoxLayout]:
        page = QWidget()
        column = QVBoxLayout(page)
        column.setContentsMargins(12, 0, 0, 0)
        heading = QLabel(title)
        font = heading.font()
        font.setPointSizeF(font.pointSizeF() * 1.25)
        font.setBold(True)
        heading.setFont(font)
        column.addWidget(heading)
        return page, column

    def add_page(self, title: str, body: QWidget) -> None:
        """Add a section made of ``body`` (an :class:`ExtraPage`), applied with the settings."""
        page, column = self._titled(title)
        column.addWidget(body, 1)
        self.section_list.addItem(title)
        index = self.pages.addWidget(page)
        self._extras.append((index, body))  # type: ignore[arg-type]
        body.changed.connect(self._extra_edited)  # type: ignore[attr-defined]

    def _extra_edited(self) -> None:
        self.apply_button.setEnabled(self._anything_to_apply())

    def _anything_to_apply(self) -> bool:
        return bool(self.changes()) or any(page.has_changes() for _, page in self._extras)

    def _page(self, section: str, title: str) -> QWidget:
        page, column = self._titled(title)
        form_body = QWidget()
        form = QFormLayout(form_body)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)
        form.setContentsMargins(0, 6, 0, 0)
        for name in self._sections[section]:
            spec = self._specs[name]
            editor = make_editor(spec, self._edited)
            set_editor_value(editor, self._current[name])
            if editor.sizePolicy().horizontalPolicy() != QSizePolicy.Policy.Expanding:
                editor.setMinimumWidth(180)  # spin boxes and lists line up in one column
            self._editors[name] = editor
            form.addRow(spec.label, editor)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setWidget(form_body)
        column.addWidget(scroll, 1)
        reset = QPushButton("Reset to defaults")
        reset.setToolTip(f"Put every {title} setting back to its default value.")
        reset.setAccessibleName(f"Reset {title} to defaults")
        reset.clicked.connect(lambda: self.reset_section(section))
        column.addWidget(reset, 0, Qt.AlignmentFlag.AlignLeft)
        return page

    def _edited(self, name: str, value: Any) -> None:
        self._pending[name] = value
        self.apply_button.setEnabled(self._anything_to_apply())

    def editor(self, name: str) -> QWidget:
        """The widget editing setting ``name``."""
        return self._editors[name]

    def show_section(self, title: str) -> None:
        """Show the page titled ``title`` (nothing happens for an unknown title)."""
        titles = self.sections()
        if title in titles:
            self.section_list.setCurrentRow(titles.index(title))

    def sections(self) -> list[str]:
        """The section titles, in the order shown."""
        return [self.section_list.item(i).text() for i in range(self.section_list.count())]

    def changes(self) -> dict[str, Any]:
        """The pending edits that differ from the applied values."""
        return {n: v for n, v in self._pending.items() if v != self._current[n]}

    def reset_section(self, section: str) -> None:
        """Show the defaults of every setting in ``section`` (applied on Apply / OK)."""
        for name in self._sections.get(section, []):
            default = self._specs[name].default
            set_editor_value(self._editors[name], default)
            self._pending[name] = editor_value(self._editors[name])
        self.apply_button.setEnabled(self._anything_to_apply())

    def apply(self) -> bool:
        """Emit the pending changes and apply the other pages; False when one refused its edit
        (that page is shown, saying why)."""
        changes = self.changes()
        if changes:
            self._current.update(changes)
            self.applied.emit(changes)
        refused = [i for i, page in self._extras if page.has_changes() and not page.apply()]
        if refused:
            self.section_list.setCurrentRow(refused[0])
        self.apply_button.setEnabled(self._anything_to_apply())
        return not refused

    def accept(self) -> None:
        """OK: apply, then close (stays open on a page that refused its edit)."""
        if self.apply():
            super().accept()
