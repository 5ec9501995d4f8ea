"""Small text widgets shared by the pages."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel


def intro_label(html: str) -> QLabel:
    """A page's heading and introduction: rich text (``<h3>``, ``<code>``) wrapped to the page."""
    label = QLabel(html)
    label.setWordWrap(True)
    label.setTextFormat(Qt.TextFormat.RichText)
    return label
