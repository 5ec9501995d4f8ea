"""Light, dark or the system's theme for the whole application.

"system" follows the OS through ``QStyleHints.colorScheme()`` (Qt 6.5+), live:
dark gets the Fusion dark palette, light or unknown (common on Linux desktops
without a portal) keeps the platform's own style and palette untouched.
"light" and "dark" always use Fusion with a fixed palette.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication, QStyleFactory

_original: dict[str, str] = {}  # the platform's style name, before any change
_state = {"choice": "system", "watching": False}


def dark_palette() -> QPalette:
    """A dark palette for the Fusion style."""
    window, base, text = QColor(45, 45, 48), QColor(30, 30, 32), QColor(230, 230, 230)
    disabled = QColor(128, 128, 128)
    accent = QColor(64, 140, 230)
    p = QPalette(window, window.lighter(115))  # derives Light/Mid/Dark/Shadow from the button
    roles = QPalette.ColorRole
    for role, color in (
        (roles.Window, window),
        (roles.WindowText, text),
        (roles.Base, base),
        (roles.AlternateBase, window),
        (roles.ToolTipBase, base),
        (roles.ToolTipText, text),
        (roles.PlaceholderText, QColor(150, 150, 150)),
        (roles.Text, text),
        (roles.Button, window.lighter(115)),
        (roles.ButtonText, text),
        (roles.BrightText, QColor(255, 90, 90)),
        (roles.Link, accent.lighter(130)),
        (roles.LinkVisited, QColor(170, 130, 230)),
        (roles.Highlight, accent),
        (roles.HighlightedText, QColor(255, 255, 255)),
    ):
        p.setColor(role, color)
    group = QPalette.ColorGroup.Disabled
    for role in (roles.WindowText, roles.Text, roles.ButtonText, roles.HighlightedText):
        p.setColor(group, role, disabled)
    p.setColor(group, roles.Highlight, QColor(80, 80, 80))
    return p


def light_palette() -> QPalette:
    """Fusion's own light palette."""
    return QStyleFactory.create("Fusion").standardPalette()


def system_scheme(app: QApplication) -> str:
    """"light", "dark" or "unknown": what the OS reports (Qt 6.5+)."""
    scheme = app.styleHints().colorScheme()
    if scheme == Qt.ColorScheme.Dark:
        return "dark"
    if scheme == Qt.ColorScheme.Light:
        return "light"
    return "unknown"


def apply_theme(app: QApplication, choice: str) -> str:
    """Apply ``choice`` ("system", "light" or "dark"); returns what is shown: light/dark/native.

    Safe to call again at any time (a change in Preferences applies at once).
    """
    if not _original:
        _original["style"] = app.style().name()
    _state["choice"] = choice
    if not _state["watching"]:
        app.styleHints().colorSchemeChanged.connect(lambda _s: _follow_system(app))
        _state["watching"] = True
    effective = choice
    if choice == "system":
        effective = "dark" if system_scheme(app) == "dark" else "native"
    if effective == "native":
        app.setStyle(_original["style"])
        app.setPalette(QPalette())  # nothing set: the platform's palette, following it
    else:
        app.setStyle("Fusion")
        app.setPalette(dark_palette() if effective == "dark" else light_palette())
    _restyle(app)
    return effective


def _restyle(app: QApplication) -> None:
    # a style sheet resolves palette(...) colours when it is applied: apply it again
    for widget in app.allWidgets():
        sheet = widget.styleSheet()
        if sheet:
            widget.setStyleSheet("")
            widget.setStyleSheet(sheet)


def _follow_system(app: QApplication) -> None:
    if _state["choice"] == "system":
        apply_theme(app, "system")
