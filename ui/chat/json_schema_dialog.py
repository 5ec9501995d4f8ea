"""The dialog where a chat's JSON output is given a JSON Schema (or none: any JSON object)."""

from __future__ import annotations

import json
from typing import Any

from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from quantdesk.engine.chat.structured import SchemaError, grammar_for_schema

EXAMPLE = """{
  "type": "object",
  "properties": {
    "name": {"type": "string"},
    "age": {"type": "integer"}
  },
  "required": ["name", "age"]
}"""


class JsonSchemaDialog(QDialog):
    """Asks for the schema a chat's replies must follow. OK checks it (JSON, then JSON Schema,
    then a grammar llama.cpp can sample with) and stays open with the reason when it cannot be
    used; "No schema" leaves the replies any JSON object."""

    def __init__(self, schema: dict[str, Any] | None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("JSON output schema")
        self.setModal(True)
        self.schema: dict[str, Any] | None = schema
        layout = QVBoxLayout(self)
        intro = QLabel("Replies in this chat are JSON. Paste a JSON Schema to hold them to its "
                       "shape, or choose No schema for any JSON object.")  # fmt: skip
        intro.setWordWrap(True)
        layout.addWidget(intro)
        self.editor = QPlainTextEdit()
        self.editor.setAccessibleName("JSON Schema")
        self.editor.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.editor.setPlaceholderText(EXAMPLE)
        self.editor.setTabChangesFocus(True)
        if schema is not None:
            self.editor.setPlainText(json.dumps(schema, indent=2))
        layout.addWidget(self.editor, 1)
        self.problem = QLabel()
        self.problem.setAccessibleName("Problem with the schema")
        self.problem.setWordWrap(True)
        self.problem.setStyleSheet("QLabel { color: #c62828; }")
        self.problem.hide()
        layout.addWidget(self.problem)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.no_schema = QPushButton("No schema")
        self.no_schema.setToolTip("Any JSON object")
        self.buttons.addButton(self.no_schema, QDialogButtonBox.ButtonRole.ResetRole)
        self.buttons.accepted.connect(self._check_and_accept)
        self.buttons.rejected.connect(self.reject)
        self.no_schema.clicked.connect(self._clear)
        layout.addWidget(self.buttons)
        self.resize(520, 420)

    def _say(self, problem: str) -> None:
        self.problem.setText(problem)
        self.problem.show()

    def _check_and_accept(self) -> None:
        text = self.editor.toPlainText().strip()
        if not text:
            self._clear()
            return
        try:
            schema = json.loads(text)
        except ValueError as exc:
            self._say(f"This is not JSON: {exc}.")
            return
        try:
            grammar_for_schema(schema)
        except SchemaError as exc:
            self._say(exc.message)
            return
        self.schema = schema
        self.accept()

    def _clear(self) -> None:
        self.schema = None
        self.accept()
