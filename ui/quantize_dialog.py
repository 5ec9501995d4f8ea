"""The Quantize dialog: pick a type, see size and memory before, progress during, quality after.

Presentation only: it emits what the user asked for (``predictRequested`` when the choice
changes, ``startRequested``, ``cancelRequested``, ``loadRequested``) and shows what the
controller tells it. The controller runs the engine off the GUI thread.
"""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from quantdesk.engine.gguf.quant_docs import PRIMER
from quantdesk.engine.quantize.options import (
    IMATRIX_HINT_TYPES,
    QUANT_TARGETS,
    QuantizeOptions,
    target_summary,
)

DEFAULT_TARGET = "Q4_K_M"
_TENSOR_TYPES = ("", "F32", "F16", "BF16", "Q8_0", "Q6_K", "Q5_K", "Q4_K", "Q4_0", "Q3_K", "Q2_K")
# Most useful first: what people pick, then the rest in llama-quantize's order.
_POPULAR = ("Q4_K_M", "Q5_K_M", "Q6_K", "Q8_0", "Q4_K_S", "IQ4_XS", "Q3_K_M", "Q2_K", "F16")


def _wrapping(text: str = "") -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


class QuantizeDialog(QDialog):
    """Quantize one model: source facts, type and options, prediction, progress, result."""

    predictRequested = Signal()
    imatrixRequested = Signal(object)  # Path of a text file, or None for the bundled sample
    startRequested = Signal()
    cancelRequested = Signal()
    skipQualityRequested = Signal()
    loadRequested = Signal(str)  # path of the new model

    def __init__(self, source: Path, suggested_output: Path, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle(f"Quantize – {source.name}")
        self.setMinimumWidth(640)
        self.source = source
        self._result_path = ""
        self._debounce = QTimer(self, singleShot=True, interval=250)
        self._debounce.timeout.connect(self.predictRequested)
        outer = QVBoxLayout(self)
        # everything but the buttons scrolls: with Advanced options open the dialog is taller
        # than a 1280×800 (or 1024×640) screen, and the buttons must stay on it
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        body = QWidget()
        layout = QVBoxLayout(body)
        layout.setContentsMargins(0, 0, 0, 0)
        # grow with wrapped text and results instead of squeezing the labels
        self.source_label = _wrapping(f"<b>{source.name}</b>")
        self.warning_label = _wrapping()
        self.warning_label.setStyleSheet("color: #a15c00;")
        self.warning_label.hide()
        primer = _wrapping(PRIMER)
        primer.setForegroundRole(primer.foregroundRole())
        layout.addWidget(self.source_label)
        layout.addWidget(self.warning_label)
        layout.addWidget(primer)
        form = QFormLayout()
        self.type_combo = QComboBox()
        self.type_combo.setAccessibleName("Target type")
        for name in _POPULAR + tuple(n for n in QUANT_TARGETS if n not in _POPULAR):
            self.type_combo.addItem(name, name)
            if name == _POPULAR[-1]:
                self.type_combo.insertSeparator(self.type_combo.count())
        self.type_combo.setCurrentIndex(self.type_combo.findData(DEFAULT_TARGET))
        self.type_help = _wrapping()
        self.type_help.setMinimumHeight(self.type_help.fontMetrics().lineSpacing() * 4)
        form.addRow("Target type:", self.type_combo)
        layout.addLayout(form)
        layout.addWidget(self.type_help)
        form = QFormLayout()
        self.output_edit = QLineEdit(str(suggested_output))
        self.output_edit.setAccessibleName("Output file")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse_output)
        self._inputs: list[QWidget] = [self.type_combo, self.output_edit, browse]
        row = QHBoxLayout()
        row.addWidget(self.output_edit, 1)
        row.addWidget(browse)
        form.addRow("Output file:", row)
        layout.addLayout(form)
        layout.addWidget(self._advanced())
        self.quality_check = QCheckBox("Measure quality afterwards (against the source)")
        self.quality_check.setToolTip(
            "Perplexity and KL divergence of the new file against the source, on a bundled "
            "English text sample"
        )
        self.quality_check.setChecked(True)
        self._inputs.append(self.quality_check)
        layout.addWidget(self.quality_check)
        self.prediction_label = _wrapping("Predicting size…")
        layout.addWidget(self.prediction_label)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(True)
        self.progress.hide()
        self.status_label = _wrapping()
        self.result_label = _wrapping()
        layout.addWidget(self.progress)
        layout.addWidget(self.status_label)
        layout.addWidget(self.result_label)
        layout.addStretch(1)
        self.scroll.setWidget(body)
        outer.addWidget(self.scroll, 1)
        outer.addLayout(self._buttons())
        self.type_combo.currentIndexChanged.connect(self._type_changed)
        self._type_changed()

    # -- building ---------------------------------------------------------------------------

    def _advanced(self) -> QWidget:
        box = QWidget()
        outer = QVBoxLayout(box)
        outer.setContentsMargins(0, 0, 0, 0)
        toggle = QToolButton()
        toggle.setText("Advanced options")
        toggle.setCheckable(True)
        toggle.setArrowType(Qt.ArrowType.RightArrow)
        toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        panel = QWidget()
        form = QFormLayout(panel)
        self.imatrix_edit = QLineEdit()
        self.imatrix_edit.setPlaceholderText("none (required for IQ1/IQ2 and Q2_K_S)")
        self.imatrix_edit.setAccessibleName("Importance matrix file")
        pick = QPushButton("Choose…")
        pick.clicked.connect(self._browse_imatrix)
        self.compute_button = QPushButton("Compute…")
        self.compute_button.setToolTip(
            "Run the source model over text and record which weights matter (llama-imatrix's "
            "method); saved beside the source as NAME.imatrix.gguf"
        )
        menu = QMenu(self.compute_button)
        menu.addAction("From the bundled English sample", lambda: self.imatrixRequested.emit(None))
        menu.addAction("From a text file…", self._pick_imatrix_text)
        self.compute_button.setMenu(menu)
        row = QHBoxLayout()
        row.addWidget(self.imatrix_edit, 1)
        row.addWidget(pick)
        row.addWidget(self.compute_button)
        form.addRow("Importance matrix:", row)
        self.output_type = self._tensor_type_combo("Type of the output tensor")
        self.embedding_type = self._tensor_type_combo("Type of the token embeddings")
        form.addRow("Output tensor:", self.output_type)
        form.addRow("Token embeddings:", self.embedding_type)
        self.leave_output = QCheckBox("Leave the output tensor unquantized (larger, a bit better)")
        self.pure = QCheckBox("Pure: one type for every tensor (no K-quant mix)")
        self.requantize = QCheckBox("Allow requantizing an already quantized model (worse)")
        for box_ in (self.leave_output, self.pure, self.requantize):
            form.addRow("", box_)
            box_.toggled.connect(self._changed)
        self.threads = QSpinBox()
        self.threads.setRange(0, max(os.cpu_count() or 1, 1) * 2)
        self.threads.setSpecialValueText("all cores")
        form.addRow("Threads:", self.threads)
        self.imatrix_edit.editingFinished.connect(self._changed)
        panel.hide()

        def flip(on: bool) -> None:
            panel.setVisible(on)
            toggle.setArrowType(Qt.ArrowType.DownArrow if on else Qt.ArrowType.RightArrow)
            self._refit()

        toggle.toggled.connect(flip)
        self._inputs.append(panel)
        outer.addWidget(toggle)
        outer.addWidget(panel)
        return box

    def _tensor_type_combo(self, name: str) -> QComboBox:
        combo = QComboBox()
        combo.setAccessibleName(name)
        for t in _TENSOR_TYPES:
            combo.addItem(t or "default (chosen by the type)", t)
        combo.currentIndexChanged.connect(self._changed)
        return combo

    def _buttons(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.load_button = QPushButton("Load in chat")
        self.load_button.hide()
        self.load_button.clicked.connect(lambda: self.loadRequested.emit(self._result_path))
        self.start_button = QPushButton("Quantize")
        self.start_button.setDefault(True)
        self.start_button.clicked.connect(self.startRequested)
        self.skip_quality_button = QPushButton("Skip quality check")
        self.skip_quality_button.setToolTip("Stop measuring; the quantized file is kept")
        self.skip_quality_button.clicked.connect(self.skipQualityRequested)
        self.skip_quality_button.hide()
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancelRequested)
        self.close_button = QPushButton("Close")
        self.close_button.clicked.connect(self.close)
        row.addWidget(self.load_button)
        row.addStretch(1)
        for button in (self.skip_quality_button, self.start_button, self.cancel_button,
                       self.close_button):  # fmt: skip
            row.addWidget(button)
        return row

    # -- what the user chose ----------------------------------------------------------------

    def target(self) -> str:
        """The chosen target type name."""
        return str(self.type_combo.currentData())

    def options(self) -> QuantizeOptions:
        """The chosen options."""
        imatrix = self.imatrix_edit.text().strip()
        return QuantizeOptions(
            target=self.target(),
            allow_requantize=self.requantize.isChecked(),
            output_tensor_type=self.output_type.currentData() or None,
            token_embedding_type=self.embedding_type.currentData() or None,
            leave_output_unquantized=self.leave_output.isChecked(),
            pure=self.pure.isChecked(),
            imatrix=Path(imatrix) if imatrix else None,
            threads=self.threads.value(),
        )

    def output_path(self) -> Path:
        """Where the result goes."""
        return Path(self.output_edit.text().strip()).expanduser()

    def quality_wanted(self) -> bool:
        """Whether to measure quality after quantizing."""
        return self.quality_check.isChecked()

    # -- what the controller shows -----------------------------------------------------------

    def set_source(self, text: str, warning: str = "") -> None:
        """Facts about the source; a warning (e.g. already quantized) shown in amber."""
        self.source_label.setText(text)
        self.warning_label.setText(warning)
        self.warning_label.setVisible(bool(warning))
        self._refit()

    def set_output_path(self, path: Path) -> None:
        """Suggest an output path (the user may still change it)."""
        self.output_edit.setText(str(path))

    def set_prediction(self, lines: list[str], error: str = "", can_start: bool = True) -> None:
        """The dry run's figures, or why there are none; ``can_start`` False blocks the start."""
        self.prediction_label.setText(error or "<br>".join(lines))
        self.start_button.setEnabled(can_start and not error and not self._running())
        self._refit()

    def set_running(self, running: bool, text: str = "") -> None:
        """Switch between choosing and running."""
        for widget in self._inputs + [self.start_button, self.close_button]:
            widget.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        self.progress.setVisible(running or self.progress.value() > 0)
        self.status_label.setText(text)
        if running:
            self.result_label.clear()
            self.load_button.hide()

    def set_progress(self, fraction: float | None, text: str, measuring: bool = False) -> None:
        """Progress: a fraction in [0, 1], or None while the length is unknown; ``measuring``:
        the quality check runs (the file is made: it can be skipped)."""
        self.skip_quality_button.setVisible(measuring)
        self.progress.show()
        if fraction is None:
            self.progress.setRange(0, 0)
        else:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(fraction * 1000))
        self.status_label.setText(text)

    def set_result(self, text: str, path: str = "", ok: bool = True) -> None:
        """The outcome; with a path, offer to load the new model."""
        self.set_running(False)
        self.skip_quality_button.hide()
        self.progress.setRange(0, 1000)
        self.result_label.setText(text)
        self.result_label.setStyleSheet("" if ok else "color: #b00020;")
        self._result_path = path
        self.load_button.setVisible(bool(path))
        self._refit()

    # -- internals --------------------------------------------------------------------------

    def _refit(self) -> None:
        """Grow to fit wrapped text once the layout has settled (never shrink below the user),
        but never past the screen's available height: the rest scrolls."""
        QTimer.singleShot(0, self._grow_to_content)

    def _grow_to_content(self) -> None:
        body = self.scroll.widget()
        # as wide as the content's narrowest layout (it scrolls only up and down)
        margins = self.layout().contentsMargins()
        extra = (self.scroll.verticalScrollBar().sizeHint().width() + margins.left()
                 + margins.right())  # fmt: skip
        self.setMinimumWidth(max(640, body.minimumSizeHint().width() + extra))
        wanted = (body.heightForWidth(self.scroll.viewport().width()) if body.hasHeightForWidth()
                  else body.sizeHint().height())  # fmt: skip
        chrome = self.height() - self.scroll.viewport().height()  # buttons, margins
        height = max(self.height(), wanted + chrome)
        screen = self.screen()
        if screen is not None:
            frame = self.frameGeometry().height() - self.geometry().height()
            height = min(height, screen.availableGeometry().height() - frame)
            top = screen.availableGeometry().top()
            if self.isVisible() and self.frameGeometry().top() < top:
                self.move(self.x(), top)
        self.resize(self.width(), height)
        if self.isVisible() and screen is not None:  # keep the buttons on the screen
            bottom = screen.availableGeometry().bottom()
            if self.frameGeometry().bottom() > bottom:
                self.move(self.x(), max(screen.availableGeometry().top(),
                                        bottom - self.frameGeometry().height() + 1))

    def choose_target(self, name: str) -> None:
        """Preselect target type ``name`` (a quantized source starts on a smaller type)."""
        index = self.type_combo.findData(name)
        if index >= 0:
            self.type_combo.setCurrentIndex(index)

    def _running(self) -> bool:
        return self.cancel_button.isEnabled()

    def _type_changed(self) -> None:
        name = self.target()
        help_text = target_summary(name)
        if name in IMATRIX_HINT_TYPES and not self.imatrix_edit.text().strip():
            help_text += " Choose one under Advanced options."
        self.type_help.setText(help_text)
        self.set_output_path(_with_target(self.output_path(), name))
        self._changed()

    def _changed(self) -> None:
        self.prediction_label.setText("Predicting size…")
        self.start_button.setEnabled(False)
        self._debounce.start()

    def _browse_output(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Save quantized model as", str(self.output_path()), "GGUF models (*.gguf)"
        )
        if path:
            self.output_edit.setText(path)

    def set_imatrix(self, path: Path) -> None:
        """Use ``path`` as the importance matrix (and predict again)."""
        self.imatrix_edit.setText(str(path))
        self._type_changed()

    def _pick_imatrix_text(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Text to compute the importance matrix on", str(self.source.parent),
            "Text (*.txt *.md);;All files (*)",
        )  # fmt: skip
        if path:
            self.imatrixRequested.emit(Path(path))

    def _browse_imatrix(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self,
            "Importance matrix",
            str(self.source.parent),
            "Importance matrices (*.gguf *.dat *.imatrix);;All files (*)",
        )
        if path:
            self.imatrix_edit.setText(path)
            self._type_changed()

    def closeEvent(self, event) -> None:  # noqa: ANN001, N802 - Qt API
        if self._running():
            self.cancelRequested.emit()
        super().closeEvent(event)


def _with_target(path: Path, target: str) -> Path:
    """``path`` with its type suffix replaced by ``target`` (model-Q8_0 -> model-Q4_K_M)."""
    from quantdesk.engine.quantize.quantizer import default_output

    return default_output(path, target)
