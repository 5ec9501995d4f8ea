"""The Details… dialog of a library model: where it is, what it is, what it needs here."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtGui import QFontDatabase, QGuiApplication
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QPlainTextEdit,
    QVBoxLayout,
    QWidget,
)


@dataclass(frozen=True)
class ModelDetails:
    """What the dialog shows, as plain text (assembled off the GUI thread)."""

    name: str
    path: str
    source: str
    size: str
    sha256: str  # "" when not known
    estimate: str
    report: str  # engine.model_info.format_text

    def as_text(self) -> str:
        """Everything in one block of text (what Copy puts on the clipboard)."""
        rows = (
            ("Name", self.name),
            ("Path", self.path),
            ("Source", self.source),
            ("Size", self.size),
            ("SHA-256", self.sha256 or "not known"),
            ("Estimate", self.estimate),
        )
        head = "\n".join(f"{label + ':':<10}{value}" for label, value in rows)
        return f"{head}\n\n{self.report}"


class ModelDetailsDialog(QDialog):
    """Header report, path, source, size, sha256 and the memory estimate of one model."""

    def __init__(self, details: ModelDetails, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.details = details
        self.setWindowTitle(f"Details – {details.name}")
        self.resize(640, 560)
        layout = QVBoxLayout(self)
        form = QFormLayout()
        for label, value in (
            ("Name", details.name),
            ("Source", details.source),
            ("Path", details.path),
            ("Size", details.size),
            ("SHA-256", details.sha256 or "not known (computed when downloaded or exported)"),
            ("Estimate", details.estimate),
        ):
            field = QLabel(value)
            field.setWordWrap(True)
            field.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            field.setAccessibleName(label)
            form.addRow(f"<b>{label}</b>", field)
        layout.addLayout(form)
        self.report = QPlainTextEdit(details.report)
        self.report.setReadOnly(True)
        self.report.setAccessibleName("Header report")
        self.report.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        layout.addWidget(self.report, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        copy = buttons.addButton("Copy details", QDialogButtonBox.ButtonRole.ActionRole)
        copy.clicked.connect(lambda: QGuiApplication.clipboard().setText(details.as_text()))
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

