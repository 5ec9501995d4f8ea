"""Inline message banner: what happened, what to do, details behind an expander.

Errors are shown here rather than in stacks of modal dialogs (UX.md, Errors).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QGuiApplication, QPalette
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

# (background, border, text) per kind, for a light and a dark palette
_COLORS = {
    ("error", False): ("#fde7e9", "#e8a2aa", "#5c0b14"),
    ("info", False): ("#e7f0fd", "#a9c3ea", "#0b2a5c"),
    ("error", True): ("#4a1c22", "#8c3a44", "#ffd9dd"),
    ("info", True): ("#1c2c44", "#3d5a85", "#d9e6ff"),
}


def _style(kind: str, dark: bool) -> str:
    background, border, text = _COLORS[(kind, dark)]
    return (f"QFrame#banner {{ background: {background}; border: 1px solid {border}; "
            f"border-radius: 6px; }} QLabel {{ color: {text}; }}")  # fmt: skip


class Banner(QFrame):
    """A dismissable strip with a message, optional actions and technical details."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("banner")
        self._kind = ""
        self.setAccessibleName("Message")
        outer = QVBoxLayout(self)
        outer.setContentsMargins(10, 6, 6, 6)
        row = QHBoxLayout()
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        row.addWidget(self.label, 1)
        self._actions = QHBoxLayout()
        row.addLayout(self._actions)
        self._details_button = QPushButton("Details")
        self._details_button.setCheckable(True)
        self._details_button.toggled.connect(self._toggle_details)
        row.addWidget(self._details_button)
        close = QToolButton()
        close.setText("✕")
        close.setToolTip("Dismiss")
        close.setAccessibleName("Dismiss message")
        close.clicked.connect(self.hide)
        row.addWidget(close)
        outer.addLayout(row)
        self._details = QPlainTextEdit()
        self._details.setReadOnly(True)
        self._details.setMaximumHeight(120)
        copy = QPushButton("Copy details")
        copy.clicked.connect(
            lambda: QGuiApplication.clipboard().setText(self._details.toPlainText())
        )
        self._details_box = QWidget()
        box = QVBoxLayout(self._details_box)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(self._details)
        box.addWidget(copy, 0, Qt.AlignmentFlag.AlignRight)
        outer.addWidget(self._details_box)
        self._details_box.hide()
        self.hide()

    def _apply_colors(self) -> None:
        """The kind's colours for the palette in use (the dark theme gets dark banners)."""
        dark = QGuiApplication.palette().color(QPalette.ColorRole.Window).lightness() < 128
        style = _style(self._kind, dark)
        if self.styleSheet() != style:
            self.setStyleSheet(style)

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt API
        """Follow a theme change while shown."""
        super().changeEvent(event)
        changes = (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange,
                   QEvent.Type.StyleChange)  # fmt: skip
        if event.type() in changes and self._kind:
            self._apply_colors()

    def details(self) -> str:
        """The technical details of the message shown (what "Copy details" copies)."""
        return self._details.toPlainText()

    def show_message(
        self,
        kind: str,
        message: str,
        details: str = "",
        actions: Sequence[tuple[str, Callable[[], None]]] = (),
    ) -> None:
        """Show ``message`` ("error" or "info" styling) with optional details and actions."""
        self._kind = kind
        self._apply_colors()
        self.label.setText(message)
        self._details.setPlainText(details)
        self._details_button.setVisible(bool(details))
        self._details_button.setChecked(False)
        while self._actions.count():
            item = self._actions.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        for text, callback in actions:
            button = QPushButton(text)
            button.clicked.connect(callback)
            button.clicked.connect(self.hide)
            self._actions.addWidget(button)
        self.show()

    def _toggle_details(self, shown: bool) -> None:
        self._details_box.setVisible(shown)
