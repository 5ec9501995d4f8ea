"""About QuantDesk: version, the llama.cpp build, and the licences of what it is built on."""

from __future__ import annotations

import html
from collections.abc import Sequence

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QPushButton,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)


class AboutDialog(QDialog):
    """Shows the facts given to it; "Copy" puts them on the clipboard as plain text."""

    def __init__(
        self,
        version: str,
        environment: str,
        build_lines: Sequence[str],
        components: Sequence[tuple[str, str, str, str]],  # name, version, licence, role
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("About QuantDesk")
        self.setMinimumWidth(560)
        title = QLabel(f"<h2>QuantDesk {html.escape(version)}</h2>"
                       "<p>Run quantized language models on this computer. MIT licence.</p>")
        title.setTextFormat(Qt.TextFormat.RichText)
        rows = "".join(
            f"<tr><td>{html.escape(n)}</td><td>{html.escape(v)}</td><td>{html.escape(lic)}</td>"
            f"<td>{html.escape(role)}</td></tr>"
            for n, v, lic, role in components
        )
        build = "".join(f"<li>{html.escape(line)}</li>" for line in build_lines)
        self.text = QTextBrowser()
        self.text.setAccessibleName("About QuantDesk")
        self.text.setHtml(
            f"<p>{html.escape(environment)}</p><h3>llama.cpp build</h3><ul>{build}</ul>"
            "<h3>Built on</h3><table cellpadding='3'><tr><th align='left'>Component</th>"
            "<th align='left'>Version</th><th align='left'>Licence</th>"
            f"<th align='left'>Used for</th></tr>{rows}</table>"
            "<p>The starter models: SmolLM2 135M Instruct is Hugging Face's, under the Apache "
            "License 2.0; Gemma 3 270M is Google's, under the Gemma Terms of Use.</p>"
        )
        self._plain = "\n".join([f"QuantDesk {version}", environment, "", *build_lines, "",
                                 *(f"{n} {v} ({lic})" for n, v, lic, _ in components)])  # fmt: skip
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        copy = QPushButton("Copy")
        copy.setToolTip("Copy these facts, e.g. for a bug report")
        copy.clicked.connect(lambda: QGuiApplication.clipboard().setText(self._plain))
        buttons.addButton(copy, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(title)
        layout.addWidget(self.text, 1)
        layout.addWidget(buttons)
        self.resize(640, 520)

    def plain_text(self) -> str:
        """What Copy copies."""
        return self._plain
