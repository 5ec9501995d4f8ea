"""The "Add server" dialog: the address and API key of an OpenAI-compatible server, checked
(its models listed) before it is added."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from quantdesk.ui.jobs import run_job


class ServerDialog(QDialog):
    """Asks for a server's address and key; Add is offered once Check listed its models.

    ``check(url, key)`` runs off the GUI thread and returns the server's model ids (or raises
    an error whose ``message`` says why not).
    """

    def __init__(self, check: Callable[[str, str], list[str]], parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Add a server")
        self._check = check
        self.models: list[str] = []
        layout = QVBoxLayout(self)
        intro = QLabel(
            "Models of another server that speaks OpenAI's API — llama-server, Ollama, "
            "LM Studio, vLLM or another QuantDesk — can be used here. Your messages are sent "
            "to that server."
        )
        intro.setWordWrap(True)
        layout.addWidget(intro)
        form = QFormLayout()
        self.url = QLineEdit()
        self.url.setPlaceholderText("http://192.168.1.20:8080")
        self.url.setAccessibleName("Server address")
        self.key = QLineEdit()
        self.key.setEchoMode(QLineEdit.EchoMode.Password)
        self.key.setPlaceholderText("only if the server asks for one")
        self.key.setAccessibleName("API key")
        form.addRow("Address:", self.url)
        form.addRow("API key:", self.key)
        layout.addLayout(form)
        self.check_button = QPushButton("Check")
        self.check_button.clicked.connect(self.run_check)
        layout.addWidget(self.check_button)
        self.result = QLabel("Check the server to see its models.")
        self.result.setWordWrap(True)
        self.result.setAccessibleName("Check result")
        layout.addWidget(self.result)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.add_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.add_button.setText("Add")
        self.add_button.setEnabled(False)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
        self.url.textChanged.connect(self._edited)
        self.key.textChanged.connect(self._edited)
        self.url.returnPressed.connect(self.run_check)
        self.resize(460, self.sizeHint().height())

    def _edited(self) -> None:
        self.models = []
        self.add_button.setEnabled(False)
        self.check_button.setEnabled(bool(self.url.text().strip()))

    def run_check(self) -> None:
        """Ask the server for its models (off the GUI thread); Add is enabled when it answers."""
        url, key = self.url.text().strip(), self.key.text().strip()
        if not url:
            return
        self.check_button.setEnabled(False)
        self.result.setText(f"Asking {url} for its models…")
        run_job(lambda: self._check(url, key), on_done=self._checked, on_error=self._failed)

    def _checked(self, models: list[str]) -> None:
        self.check_button.setEnabled(True)
        self.models = models
        if not models:
            self.result.setText("The server answered but offers no model.")
            return
        shown = ", ".join(models[:8]) + (f" and {len(models) - 8} more" if len(models) > 8 else "")
        self.result.setText(f"{len(models)} model{'s' if len(models) != 1 else ''}: {shown}")
        self.add_button.setEnabled(True)

    def _failed(self, exc: BaseException) -> None:
        self.check_button.setEnabled(True)
        self.result.setText(getattr(exc, "message", str(exc)))
