"""The Quantization lab page: pick an F16/BF16/F32 model and quant types, run the ladder, see
quality and speed against size (Pareto front highlighted), a plain-language verdict, the table
of every figure, and keep one result in the library."""

from __future__ import annotations

from PySide6.QtCore import QSignalBlocker, Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QMenu,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from quantdesk.ui.chat.text_blocks import intro_label
from quantdesk.ui.lab.ladder_chart import ChartPoint, LadderChart

RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
COLUMNS = ("Type", "Size", "Bits/weight", "Peak RAM", "Prompt tok/s", "Decode tok/s",
           "Perplexity", "KL divergence", "Top-1 agreement", "Fits here")  # fmt: skip


class LabPage(QWidget):
    """Widgets only: the lab controller fills them and answers their signals."""

    runRequested = Signal(str, list)  # source path, types
    sourceChanged = Signal(str)  # the chosen source's path
    cancelRequested = Signal()
    exportRequested = Signal()
    keepRequested = Signal(str)  # the chosen type
    textRequested = Signal()  # choose a text file to measure on
    sampleRequested = Signal()  # measure on the bundled sample again
    deleteFilesRequested = Signal()  # the lab's quantized files of the current source

    def __init__(self, types: list[str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        intro = intro_label(
            "<h3>Quantization lab</h3>Quantize one model to several types and measure each on "
            "this computer: size, speed, and how closely it predicts like the original "
            "(perplexity, KL divergence, same top token). Results are kept: a new run only "
            "measures the types not measured before."
        )
        self.source = QComboBox()
        self.source.setAccessibleName("Source model")
        self.source.setPlaceholderText("an F16, BF16 or F32 model from the library")
        self.source.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.source.setMinimumContentsLength(16)  # long names must not widen the page
        self.source.currentIndexChanged.connect(
            lambda _i: self.sourceChanged.emit(self.source.currentData() or "")
        )
        self.keepable: set[str] = set()  # types whose file exists (Keep is offered for them)
        self.running = False  # a ladder or a Keep is at work
        self.type_boxes: dict[str, QCheckBox] = {}
        grid = QGridLayout()
        for i, qtype in enumerate(types):
            box = QCheckBox(qtype)
            box.setChecked(True)
            self.type_boxes[qtype] = box
            grid.addWidget(box, i // 4, i % 4)
        self.run = QPushButton("Run")
        self.run.clicked.connect(self._run)
        self.cancel = QPushButton("Cancel")
        self.cancel.setEnabled(False)
        self.cancel.clicked.connect(self.cancelRequested)
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.status = QLabel("")
        self.status.setWordWrap(True)  # a long message must not widen the page
        self.status.setAccessibleName("Lab status")
        self.text_button = QPushButton("Text: the bundled English sample")
        self.text_button.setToolTip(
            "The text perplexity and agreement are measured on: bring your own (a .txt file "
            "in the language and style you will use the model for)"
        )
        text_menu = QMenu(self.text_button)
        text_menu.addAction("Choose a text file…", self.textRequested.emit)
        text_menu.addAction("Use the bundled English sample", self.sampleRequested.emit)
        self.text_button.setMenu(text_menu)
        row = QHBoxLayout()
        row.addWidget(QLabel("Source"))
        row.addWidget(self.source, 1)
        actions = QHBoxLayout()
        actions.addWidget(self.text_button)
        actions.addStretch(1)
        actions.addWidget(self.run)
        actions.addWidget(self.cancel)
        self.verdict = QLabel("")
        self.verdict.setWordWrap(True)
        self.verdict.setAccessibleName("Verdict")
        self.verdict.setStyleSheet("font-weight: 600;")
        self.quality_chart = LadderChart("Quality kept vs size", "top-1 agreement (%)", 100.0)
        self.speed_chart = LadderChart("Speed vs size", "decode tok/s")
        charts = QHBoxLayout()
        charts.addWidget(self.quality_chart)
        charts.addWidget(self.speed_chart)
        self.chart_key = QLabel(
            "Blue points joined by the line: the best trade-offs (no other type is both smaller "
            "and better). Grey: a smaller type does as well or better."
        )
        self.chart_key.setWordWrap(True)
        self.chart_key.setStyleSheet("color: palette(placeholder-text);")
        self.empty = QLabel(
            "The lab starts from an unquantized model, and the library has no F16, BF16 or F32 "
            "model yet. Drop a Hugging Face model folder onto this window (QuantDesk converts it "
            "to F16), download an F16 GGUF from Discover, or add one with File → Add model…."
        )
        self.empty.setWordWrap(True)
        self.empty.setAccessibleName("No source model")
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
        self.table.verticalHeader().setVisible(False)
        self.table.setAccessibleName("Ladder results")
        self.keep = QPushButton("Keep the selected type")
        self.keep.setToolTip("Add the selected type's file to the library and delete the lab's "
                             "other files of this model (their figures stay)")  # fmt: skip
        self.keep.setEnabled(False)
        self.keep.clicked.connect(self._keep)
        self.delete_files = QPushButton("Delete the lab's files")
        self.delete_files.setToolTip(
            "Delete the quantized files the lab made from this source (their figures stay)"
        )
        self.delete_files.setEnabled(False)
        self.delete_files.clicked.connect(self.deleteFilesRequested)
        self.export = QPushButton("Export report…")
        self.export.setEnabled(False)
        self.export.clicked.connect(self.exportRequested)
        self.table.itemSelectionChanged.connect(self._selection_changed)
        bottom = QHBoxLayout()
        bottom.addWidget(self.keep)
        bottom.addWidget(self.delete_files)
        bottom.addStretch(1)
        bottom.addWidget(self.export)
        content = QWidget()  # in a scroll area: the lab never makes the window's minimum bigger
        layout = QVBoxLayout(content)
        layout.addWidget(intro)
        layout.addWidget(self.empty)
        layout.addLayout(row)
        layout.addLayout(grid)
        layout.addLayout(actions)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(self.verdict)
        self.results = QWidget()  # hidden until there are figures to show
        figures = QVBoxLayout(self.results)
        figures.setContentsMargins(0, 0, 0, 0)
        figures.addLayout(charts, 2)
        figures.addWidget(self.chart_key)
        figures.addWidget(self.table, 1)
        figures.addLayout(bottom)
        self.results.setVisible(False)
        layout.addWidget(self.results, 1)
        layout.addStretch(0)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setWidget(content)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)

    def chosen_types(self) -> list[str]:
        """The types ticked."""
        return [t for t, box in self.type_boxes.items() if box.isChecked()]

    def _run(self) -> None:
        path = self.source.currentData()
        if path:
            self.runRequested.emit(path, self.chosen_types())

    def _keep(self) -> None:
        row = self.table.currentRow()
        if row >= 0:
            self.keepRequested.emit(self.table.item(row, 0).data(Qt.ItemDataRole.UserRole))

    def _selection_changed(self) -> None:
        row = self.table.currentRow()
        qtype = self.table.item(row, 0).data(Qt.ItemDataRole.UserRole) if row >= 0 else None
        self.keep.setEnabled(not self.running and bool(qtype) and qtype in self.keepable)

    def set_sources(self, sources: list[tuple[str, str]]) -> None:
        """The models offered as sources: (label, path)."""
        current = self.source.currentData()
        with QSignalBlocker(self.source):  # one sourceChanged at most, not one per item
            self.source.clear()
            for label, path in sources:
                self.source.addItem(label, path)
            self.source.setCurrentIndex(max(0, self.source.findData(current)))
        if self.source.currentData() != current:
            self.sourceChanged.emit(self.source.currentData() or "")
        self.run.setEnabled(not self.running and bool(sources))
        self.empty.setVisible(not sources)

    def clear_results(self, text: str = "") -> None:
        """Show no figures (another source is chosen; ``text`` says what to do)."""
        self.set_results([], [], set(), [], [], "")
        self.status.setText(text)
        self.progress.setValue(0)

    def set_text_name(self, name: str | None) -> None:
        """Show which text is used (None: the bundled sample)."""
        self.text_button.setText(f"Text: {name}" if name else "Text: the bundled English sample")

    def set_running(self, running: bool, files: bool = False) -> None:
        """Run / Cancel state: while the lab works, only Cancel (and the figures) are live.
        ``files``: whether the lab holds files of the shown results (Delete is offered)."""
        self.running = running
        self.run.setEnabled(not running and self.source.count() > 0)
        self.text_button.setEnabled(not running)
        self.source.setEnabled(not running)
        self.cancel.setEnabled(running)
        self.delete_files.setEnabled(not running and files)
        self._selection_changed()

    def set_progress(self, done: int, total: int, text: str, fraction: float = 0.0) -> None:
        """Rungs done of total (and the share of the current one), and what runs now."""
        self.progress.setRange(0, max(1, total) * 100)
        self.progress.setValue(done * 100 + int(max(0.0, min(1.0, fraction)) * 100))
        self.status.setText(text)

    def set_results(self, rows: list[list[str]], types: list[str], keepable: set[str],
                    quality: list[ChartPoint], speed: list[ChartPoint],
                    verdict: str) -> None:  # fmt: skip
        """Show a finished (or partial) ladder."""
        self.keepable = set(keepable)
        self.table.setRowCount(len(rows))
        for r, (cells, qtype) in enumerate(zip(rows, types, strict=True)):
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if c:
                    item.setTextAlignment(RIGHT)
                item.setData(Qt.ItemDataRole.UserRole, qtype)
                self.table.setItem(r, c, item)
        self.table.resizeColumnsToContents()
        self.quality_chart.set_points(quality)
        self.speed_chart.set_points(speed)
        self.verdict.setText(verdict)
        self.results.setVisible(bool(rows))
        self.export.setEnabled(bool(rows))
        self._selection_changed()
