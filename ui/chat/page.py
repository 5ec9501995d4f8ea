"""The chat page: model picker, transcript, and the message box with Send/Stop."""

from __future__ import annotations

from PySide6.QtCore import (
    QAbstractItemModel,
    QIdentityProxyModel,
    QModelIndex,
    QPersistentModelIndex,
    Qt,
    Signal,
)
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from quantdesk.ui.chat.transcript_model import ChatListModel
from quantdesk.ui.chat.view import ChatView
from quantdesk.ui.library.panel import EntryRole


class _PickerModel(QIdentityProxyModel):
    """The library as one-line items ("name · quant") for the model picker."""

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = 0) -> object:
        if role == Qt.ItemDataRole.DisplayRole:
            entry = super().data(index, EntryRole)
            return f"{entry.name} · {entry.file_type}" if entry is not None else None
        return super().data(index, role)


class MessageEdit(QPlainTextEdit):
    """Message box: Enter sends, Shift+Enter starts a new line."""

    submitted = Signal()

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt API
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and not (
            event.modifiers() & Qt.KeyboardModifier.ShiftModifier
        ):
            self.submitted.emit()
            return
        super().keyPressEvent(event)


class ChatPage(QWidget):
    """Transcript and input; emits requests, shows state. Owns no model."""

    sendRequested = Signal(str)
    stopRequested = Signal()
    modelChosen = Signal(object)  # LibraryEntry
    ejectRequested = Signal()
    cancelEditRequested = Signal()
    jsonOutputToggled = Signal(bool)  # the chat's replies held to JSON, or text again
    schemaRequested = Signal()  # Schema…: give the JSON output a schema

    def __init__(self, library_model: QAbstractItemModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        top = QHBoxLayout()
        self.picker = QComboBox()
        self._picker_model = _PickerModel(self)
        self._picker_model.setSourceModel(library_model)
        self.picker.setModel(self._picker_model)
        self.picker.setPlaceholderText("Select a model…")
        self.picker.setCurrentIndex(-1)
        self.picker.setMinimumWidth(180)
        self.picker.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.picker.setAccessibleName("Model picker")
        self.picker.setToolTip("Choose the model to chat with (Ctrl+K)")
        self.picker.activated.connect(self._picked)
        top.addWidget(self.picker, 1)
        self.model_status = QLabel("No model loaded")
        self.model_status.setAccessibleName("Loaded model")
        self.model_status.setWordWrap(True)  # "ctx 4,096 · CPU · chat mode" wraps, never cut
        top.addWidget(self.model_status, 2)
        self.eject = QPushButton("Eject")
        self.eject.setToolTip("Unload the model and free its memory")
        self.eject.setEnabled(False)
        self.eject.clicked.connect(self.ejectRequested)
        top.addWidget(self.eject)
        layout.addLayout(top)

        self.mode_notice = QLabel()
        self.mode_notice.setWordWrap(True)
        self.mode_notice.setAccessibleName("Model mode")
        self.mode_notice.setStyleSheet(
            "QLabel { background: palette(alternate-base); border-radius: 6px; padding: 6px; }"
        )
        self.mode_notice.hide()
        layout.addWidget(self.mode_notice)

        self.transcript = ChatListModel()
        self.view = ChatView()
        self.view.setModel(self.transcript)
        layout.addWidget(self.view, 1)

        self.edit_bar = QWidget()
        self.edit_bar.setAccessibleName("Editing a message")
        bar = QHBoxLayout(self.edit_bar)
        bar.setContentsMargins(6, 2, 6, 2)
        self.edit_label = QLabel(
            "Editing your message: Send keeps it as a new version (the original and its replies "
            "stay, ‹ › switches between them)."
        )
        self.edit_label.setWordWrap(True)
        bar.addWidget(self.edit_label, 1)
        self.cancel_edit = QPushButton("Cancel")
        self.cancel_edit.setToolTip("Leave the message as it was (Esc)")
        self.cancel_edit.clicked.connect(self.cancelEditRequested)
        bar.addWidget(self.cancel_edit)
        self.edit_bar.setStyleSheet(
            "QWidget { background: palette(alternate-base); border-radius: 6px; }"
        )
        self.edit_bar.hide()
        layout.addWidget(self.edit_bar)

        bottom = QHBoxLayout()
        self.input = MessageEdit()
        self.input.setPlaceholderText("Type a message — Enter sends, Shift+Enter adds a line")
        self.input.setAccessibleName("Message")
        self.input.setMaximumHeight(110)
        self.input.setTabChangesFocus(True)  # Tab leaves the box, as in every other field
        self.input.submitted.connect(self._send)
        bottom.addWidget(self.input, 1)
        output = QVBoxLayout()
        self.json_output = QPushButton("JSON output")
        self.json_output.setCheckable(True)
        self.json_output.setAccessibleName("JSON output")
        self.json_output.setToolTip("Hold this chat's replies to JSON (a grammar makes the "
                                    "model write it), with a schema if you give one")  # fmt: skip
        self.json_output.toggled.connect(self._json_toggled)
        self.schema = QPushButton("Schema…")
        self.schema.setToolTip("Give the JSON output a JSON Schema to follow")
        self.schema.setEnabled(False)
        self.schema.clicked.connect(self.schemaRequested)
        output.addWidget(self.json_output)
        output.addWidget(self.schema)
        bottom.addLayout(output)
        self.send = QPushButton("Send")
        self.send.setDefault(True)
        self.send.setToolTip("Send the message (Enter)")
        self.send.clicked.connect(self._send)
        self.stop = QPushButton("Stop")
        self.stop.setToolTip("Stop generating (Esc)")
        self.stop.clicked.connect(self.stopRequested)
        self.stop.hide()
        bottom.addWidget(self.send)
        bottom.addWidget(self.stop)
        layout.addLayout(bottom)

    def _picked(self, row: int) -> None:
        entry = self.picker.model().index(row, 0).data(EntryRole)
        if entry is not None:
            self.modelChosen.emit(entry)

    def _send(self) -> None:
        if self.stop.isVisible():
            return
        text = self.input.toPlainText().strip()
        if text:
            self.sendRequested.emit(text)

    def _json_toggled(self, on: bool) -> None:
        self.schema.setEnabled(on)
        self.jsonOutputToggled.emit(on)

    def show_json_output(self, response_format: dict | None) -> None:
        """Show the chat's output format (None: text; OpenAI's ``response_format`` else)
        without asking for a change."""
        self.json_output.blockSignals(True)
        self.json_output.setChecked(response_format is not None)
        self.json_output.blockSignals(False)
        self.schema.setEnabled(response_format is not None)
        with_schema = bool(response_format) and response_format.get("type") == "json_schema"
        self.schema.setText("Schema ✓…" if with_schema else "Schema…")
        self.json_output.setToolTip(
            "Replies follow this chat's JSON Schema" if with_schema
            else "Replies are JSON objects" if response_format
            else "Hold this chat's replies to JSON (a grammar makes the model write it), with "
                 "a schema if you give one")  # fmt: skip

    def select_model(self, path: str) -> None:
        """Show the library's entry for ``path`` in the picker (none when it is not listed)."""
        self.picker.setCurrentIndex(self._picker_model.sourceModel().row_of(path))

    def set_message_text(self, text: str) -> None:
        """Put ``text`` in the message box (a draft, a message to edit), the cursor at its end."""
        self.input.setPlainText(text)
        self.input.moveCursor(self.input.textCursor().MoveOperation.End)

    def escape(self) -> None:
        """Esc: stop the reply being written, else leave an edit as it was."""
        if self.edit_bar.isVisible() and not self.stop.isVisible():
            self.cancelEditRequested.emit()
        else:
            self.stopRequested.emit()

    def set_editing(self, editing: bool) -> None:
        """Show or hide the bar that says a message is being edited (with its Cancel)."""
        self.edit_bar.setVisible(editing)
        self.send.setToolTip("Send the edited message as a new version (Enter)" if editing
                             else "Send the message (Enter)")  # fmt: skip

    def set_generating(self, generating: bool) -> None:
        """Swap Send for Stop while a reply streams."""
        self.send.setVisible(not generating)
        self.stop.setVisible(generating)

    def set_loaded(self, summary: str | None, notice: str = "") -> None:
        """Show the loaded model (None = nothing loaded) and the mode notice, if any."""
        self.model_status.setText(summary or "No model loaded")
        self.eject.setEnabled(summary is not None)
        self.mode_notice.setText(notice)
        self.mode_notice.setVisible(bool(notice))
