"""The Server page: share the loaded model with other programs through an OpenAI-compatible
API, with its address, an optional API key and a log of the requests."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from quantdesk.ui.chat.text_blocks import intro_label


class ServerPage(QWidget):
    """Start/stop, port, network access and key, the URL, and the request log."""

    startRequested = Signal(int, bool, str)  # port, other computers allowed, API key
    stopRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        intro = intro_label(
            "<h3>Local API server</h3>Other programs on this computer can use the loaded model "
            "through an OpenAI-compatible API (<code>/v1/chat/completions</code>, "
            "<code>/v1/completions</code>, <code>/v1/models</code>). It serves whichever model "
            "is loaded; its requests take turns with your chats."
        )
        self.port = QSpinBox()
        self.port.setRange(1024, 65535)
        self.port.setValue(8080)
        self.port.setAccessibleName("Port")
        self.port.setMaximumWidth(120)
        self.network = QCheckBox("Let other computers on the network use it")
        self.key = QLineEdit()
        self.key.setEchoMode(QLineEdit.EchoMode.Password)
        self.key.setPlaceholderText("required when other computers may connect")
        self.key.setAccessibleName("API key")
        self.key.setMaximumWidth(360)
        self.warning = QLabel("Anyone on your network who has the key can use the model.")
        self.warning.setStyleSheet("color: #a15c00;")
        self.warning.setVisible(False)
        self.network.toggled.connect(self.warning.setVisible)
        form = QFormLayout()
        form.addRow("Port", self.port)
        form.addRow("", self.network)
        form.addRow("API key", self.key)
        form.addRow("", self.warning)
        self.toggle = QPushButton("Start server")
        self.toggle.setCheckable(True)
        self.toggle.clicked.connect(self._toggled)
        self.status = QLabel("Stopped.")
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.status.setWordWrap(True)
        self.serving = QLabel("No model is loaded: load one in Chat, and the server serves it.")
        self.serving.setAccessibleName("Model served")
        self.serving.setWordWrap(True)
        self.copy = QPushButton("Copy URL")
        self.copy.setEnabled(False)
        self.copy.clicked.connect(lambda: QGuiApplication.clipboard().setText(self._url))
        row = QHBoxLayout()
        row.addWidget(self.toggle)
        row.addWidget(self.status, 1)
        row.addWidget(self.copy)
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setAccessibleName("Request log")
        self.log.setPlaceholderText("Requests appear here.")
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(form)
        layout.addLayout(row)
        layout.addWidget(self.serving)
        layout.addWidget(QLabel("Requests"))
        layout.addWidget(self.log, 1)
        self._url = ""

    def _toggled(self, on: bool) -> None:
        if on:
            self.startRequested.emit(self.port.value(), self.network.isChecked(), self.key.text())
        else:
            self.stopRequested.emit()

    def set_running(self, url: str | None, message: str = "") -> None:
        """Show the server as running at ``url``, or stopped (with ``message`` if it failed)."""
        self._url = url or ""
        self.toggle.setChecked(url is not None)
        self.toggle.setText("Stop server" if url else "Start server")
        self.copy.setEnabled(url is not None)
        for widget in (self.port, self.network, self.key):
            widget.setEnabled(url is None)
        self.status.setText(f"Running at {url}" if url else (message or "Stopped."))

    def set_model(self, model_id: str, name: str) -> None:
        """Say which model the API serves (the one loaded in Chat), or that none is."""
        self.serving.setText(
            f"Serves <b>{name}</b> as model <code>{model_id}</code>: the model loaded in Chat "
            "(load another there to serve it)." if model_id else
            "No model is loaded: load one in Chat, and the server serves it."
        )  # fmt: skip

    def add_log_lines(self, lines: list[str]) -> None:
        """Append request log lines."""
        for line in lines:
            self.log.appendPlainText(line)
