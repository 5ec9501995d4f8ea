"""Preferences → Hugging Face: paste, show, replace or remove the access token.

The page never shows a saved token, only its last four characters and where it is kept. Edits
wait for Apply or OK like every other preference; ``saveRequested(text)`` and
``removeRequested()`` ask the app to do it, which answers with :meth:`show_saved` or
:meth:`show_refusal` before the emit returns.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

TOKENS_URL = "https://huggingface.co/settings/tokens"


class HubTokenPage(QWidget):
    """The token editor; :meth:`has_changes` and :meth:`apply` are what Preferences calls."""

    changed = Signal()
    saveRequested = Signal(str)
    removeRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._saved = False
        self._remove = False
        self._refusal: str | None = None

        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setAccessibleName("Saved token")
        self.field = QLineEdit()
        self.field.setEchoMode(QLineEdit.EchoMode.Password)
        self.field.setPlaceholderText("hf_…  (paste a new token here)")
        self.field.setAccessibleName("Hugging Face access token")
        self.field.setClearButtonEnabled(True)
        self.field.textEdited.connect(self._edited)
        self.reveal = QCheckBox("Show")
        self.reveal.setToolTip("Show the characters typed or pasted in the box")
        self.reveal.toggled.connect(self._reveal)
        self.remove_button = QPushButton("Remove saved token")
        self.remove_button.setToolTip("Forget the token (applied on Apply or OK)")
        self.remove_button.clicked.connect(self._remove_clicked)
        self.refusal = QLabel()
        self.refusal.setWordWrap(True)
        self.refusal.setStyleSheet("color: #c62828;")
        self.refusal.hide()
        about = QLabel(
            "A token lets QuantDesk browse and download gated models (Llama, Gemma, …) whose "
            "conditions you accepted, and your private ones. A read token is enough: create one "
            f'at <a href="{TOKENS_URL}">huggingface.co/settings/tokens</a>.'
        )
        about.setWordWrap(True)
        about.setOpenExternalLinks(True)

        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.field, 1)
        row.addWidget(self.reveal)
        form = QFormLayout()
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("Access token", row)
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 6, 0, 0)
        column.addWidget(about)
        column.addLayout(form)
        column.addWidget(self.refusal)
        column.addWidget(self.status)
        column.addWidget(self.remove_button, 0, Qt.AlignmentFlag.AlignLeft)
        column.addStretch(1)
        self.show_saved(None, None, None)

    # -- what the app tells the page -----------------------------------------------------------

    def show_saved(self, hint: str | None, place: str | None, fallback: str | None) -> None:
        """The token now saved (its ``hint`` and ``place``), else what is used without one."""
        self._saved = hint is not None
        self._remove = False
        self._refusal = None
        self.refusal.hide()
        self.field.clear()
        if hint is not None:
            text = f"A token ending in {hint} is saved in {place}. QuantDesk sends it to the hub."
        elif fallback is not None:
            text = f"No token is saved in QuantDesk: the one from {fallback} is used."
        else:
            text = "No token is saved: only public models can be browsed and downloaded."
        self.status.setText(text)
        self.remove_button.setEnabled(self._saved)
        self.remove_button.setText("Remove saved token")

    def show_refusal(self, message: str) -> None:
        """Why the token typed was not saved (shown until the next edit)."""
        self._refusal = message
        self.refusal.setText(message)
        self.refusal.show()
        self.field.setFocus()

    # -- what Preferences asks -----------------------------------------------------------------

    def has_changes(self) -> bool:
        """A token typed, or the saved one marked for removal."""
        return bool(self.field.text().strip()) or self._remove

    def apply(self) -> bool:
        """Ask for the save or removal; False when it was refused (the page says why)."""
        self._refusal = None
        if self.field.text().strip():
            self.saveRequested.emit(self.field.text())
        elif self._remove:
            self.removeRequested.emit()
        return self._refusal is None

    # -- the user's edits ----------------------------------------------------------------------

    def _edited(self, _text: str) -> None:
        self.refusal.hide()
        self.changed.emit()

    def _reveal(self, shown: bool) -> None:
        mode = QLineEdit.EchoMode.Normal if shown else QLineEdit.EchoMode.Password
        self.field.setEchoMode(mode)

    def _remove_clicked(self) -> None:
        self._remove = True
        self.field.clear()
        self.remove_button.setEnabled(False)
        self.remove_button.setText("Removed on Apply")
        self.changed.emit()
