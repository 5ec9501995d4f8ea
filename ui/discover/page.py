"""Discover: search the Hub, open a repo, compare its quant levels against this machine."""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import (
    QAbstractListModel,
    QModelIndex,
    QPersistentModelIndex,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListView,
    QPushButton,
    QSlider,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from quantdesk.ui.discover.memory_chart import MemoryChart
from quantdesk.ui.discover.quant_table import QuantTableModel

SORTS = (("Most downloaded", "downloads"), ("Most liked", "likes"), ("Recently updated", "recent"))
CONTEXT_STEPS = (512, 1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072)
_Index = QModelIndex | QPersistentModelIndex


@dataclass(frozen=True)
class SearchHit:
    """One search result, ready to show."""

    repo_id: str
    line: str  # e.g. "↓ 12.3k · ♥ 45 · 7B · updated 2026-10-01"


_SELECTABLE = (
    Qt.TextInteractionFlag.TextSelectableByMouse | Qt.TextInteractionFlag.LinksAccessibleByMouse
)

class SearchResultsModel(QAbstractListModel):
    """Search results for the list on the left."""

    def __init__(self) -> None:
        super().__init__()
        self._hits: list[SearchHit] = []

    def set_hits(self, hits: list[SearchHit]) -> None:
        """Replace the results."""
        self.beginResetModel()
        self._hits = list(hits)
        self.endResetModel()

    def hits(self) -> list[SearchHit]:
        """The results shown."""
        return list(self._hits)

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: N802 - Qt API
        return 0 if parent.isValid() else len(self._hits)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        hit = self._hits[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return f"{hit.repo_id}\n{hit.line}"
        if role == Qt.ItemDataRole.UserRole:
            return hit.repo_id
        return None


class DiscoverPage(QWidget):
    """Search box, results, and the selected repo's quant table with memory chart."""

    searchRequested = Signal(str, str, bool)  # query, sort key, gguf only
    repoRequested = Signal(str)
    contextChanged = Signal(int)
    downloadRequested = Signal(str, object)  # repo id, QuantRow
    tokenRequested = Signal()  # "Add an access token…" under a refusal of the hub

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        bar = QHBoxLayout()
        self.query = QLineEdit()
        self.query.setPlaceholderText("Search models on the Hugging Face Hub, e.g. “qwen 7b”")
        self.query.setAccessibleName("Search models")
        self.query.returnPressed.connect(self._search)
        self.sort = QComboBox()
        for text, key in SORTS:
            self.sort.addItem(text, key)
        self.sort.setAccessibleName("Sort results")
        self.gguf_only = QCheckBox("GGUF only")
        self.gguf_only.setChecked(True)
        self.search_button = QPushButton("Search")
        self.search_button.clicked.connect(self._search)
        for widget, stretch in ((self.query, 1), (self.sort, 0), (self.gguf_only, 0)):
            bar.addWidget(widget, stretch)
        bar.addWidget(self.search_button)
        layout.addLayout(bar)

        self.results = SearchResultsModel()
        self.results_view = QListView()
        self.results_view.setModel(self.results)
        self.results_view.setAccessibleName("Search results")
        self.results_view.setSpacing(2)
        self.results_view.setWordWrap(True)
        self.results_view.activated.connect(self._open)
        self.results_view.clicked.connect(self._open)
        self.results_status = QLabel("Type a search and press Enter.")
        self.results_status.setWordWrap(True)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(self.results_status)
        left_layout.addWidget(self.results_view, 1)

        right = QWidget()
        repo = QVBoxLayout(right)
        repo.setContentsMargins(0, 0, 0, 0)
        self.repo_title = QLabel("<b>Pick a model on the left</b>")
        self.repo_title.setTextFormat(Qt.TextFormat.RichText)
        self.repo_status = QLabel("")
        self.repo_status.setWordWrap(True)
        self.repo_status.setTextInteractionFlags(_SELECTABLE)  # copyable; Tab skips it
        self.repo_status.linkActivated.connect(lambda _link: self.tokenRequested.emit())
        repo.addWidget(self.repo_title)
        repo.addWidget(self.repo_status)
        ctx_row = QHBoxLayout()
        self.context_slider = QSlider(Qt.Orientation.Horizontal)
        self.context_slider.setRange(0, len(CONTEXT_STEPS) - 1)
        self.context_slider.setValue(CONTEXT_STEPS.index(4096))
        self.context_slider.setAccessibleName("Context length")
        self.context_slider.setToolTip("Context length the estimates are made for")
        self.context_label = QLabel()
        ctx_row.addWidget(QLabel("Context:"))
        ctx_row.addWidget(self.context_slider, 1)
        ctx_row.addWidget(self.context_label)
        repo.addLayout(ctx_row)
        self.table_model = QuantTableModel()
        self.table = QTableView()
        self.table.setModel(self.table_model)
        self.table.setAccessibleName("Quant levels")
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        repo.addWidget(self.table, 3)
        self.explanation = QLabel("")
        self.explanation.setWordWrap(True)
        below = QHBoxLayout()
        below.addWidget(self.explanation, 1)
        self.download_button = QPushButton("Download…")
        self.download_button.setToolTip("Download the selected quant level (estimates first)")
        self.download_button.setEnabled(False)
        self.download_button.clicked.connect(self._download)
        below.addWidget(self.download_button, 0, Qt.AlignmentFlag.AlignTop)
        repo.addLayout(below)
        self._repo_id = ""
        self.chart = MemoryChart()
        repo.addWidget(self.chart, 2)
        self.table.selectionModel().currentRowChanged.connect(self._row_selected)

        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left)
        split.addWidget(right)
        split.setStretchFactor(1, 1)
        split.setSizes([300, 700])
        layout.addWidget(split, 1)

        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(120)
        self._debounce.timeout.connect(lambda: self.contextChanged.emit(self.context_length()))
        self.context_slider.valueChanged.connect(self._context_moved)
        self._steps: tuple[int, ...] = CONTEXT_STEPS
        self.context_note = QLabel("")
        self.context_note.setWordWrap(True)
        self.context_note.setAccessibleName("Trained context")
        self.context_note.hide()
        repo.insertWidget(repo.indexOf(self.table), self.context_note)
        self._context_moved()

    def context_length(self) -> int:
        """The context length the estimates are for."""
        return self._steps[self.context_slider.value()]

    def set_context_length(self, n_ctx: int) -> None:
        """Move the slider to the step nearest ``n_ctx`` (without a re-estimate request)."""
        steps = self._steps
        nearest = min(range(len(steps)), key=lambda i: abs(steps[i] - n_ctx))
        self.context_slider.blockSignals(True)
        self.context_slider.setValue(nearest)
        self.context_slider.blockSignals(False)
        self.context_label.setText(f"{self.context_length():,} tokens")

    def set_trained_context(self, trained: int, note: str) -> bool:
        """The slider ends at the context the model was trained on (0: unknown, no end), with
        ``note`` saying why; True when the chosen length had to come down to it."""
        wanted = self.context_length()
        steps = tuple(n for n in CONTEXT_STEPS if not trained or n < trained)
        self._steps = (*steps, trained) if trained else CONTEXT_STEPS
        self.context_slider.blockSignals(True)
        self.context_slider.setRange(0, len(self._steps) - 1)
        self.context_slider.blockSignals(False)
        self.set_context_length(min(wanted, trained) if trained else wanted)
        self.context_note.setText(note)
        self.context_note.setVisible(bool(note))
        return self.context_length() != wanted

    def _context_moved(self) -> None:
        self.context_label.setText(f"{self.context_length():,} tokens")
        self._debounce.start()

    def _search(self) -> None:
        text = self.query.text().strip()
        self.results_status.setText("Searching…")
        self.searchRequested.emit(text, self.sort.currentData(), self.gguf_only.isChecked())

    def _open(self, index: QModelIndex) -> None:
        repo_id = index.data(Qt.ItemDataRole.UserRole)
        if repo_id:
            self.repoRequested.emit(repo_id)

    def _row_selected(self, current: QModelIndex, _previous: QModelIndex) -> None:
        row = current.data(Qt.ItemDataRole.UserRole) if current.isValid() else None
        self.explanation.setText(row.tooltip if row is not None else "")
        self.download_button.setEnabled(row is not None and bool(row.files))

    def selected_row(self):  # noqa: ANN201 - QuantRow | None
        """The selected quant row, if any."""
        index = self.table.currentIndex()
        return index.data(Qt.ItemDataRole.UserRole) if index.isValid() else None

    def _download(self) -> None:
        row = self.selected_row()
        if row is not None and row.files:
            self.downloadRequested.emit(self._repo_id, row)

    def show_results(self, hits: list[SearchHit], status: str) -> None:
        """Show search results and a status line ("23 models" / why there are none)."""
        self.results.set_hits(hits)
        self.results_status.setText(status)

    def show_repo_refusal(self, message: str, *, offer_token: bool) -> None:
        """Why the repository cannot be read; ``offer_token`` adds "Add an access token…"."""
        self.table_model.set_rows([])
        if not offer_token:
            self.repo_status.setTextFormat(Qt.TextFormat.PlainText)
            self.repo_status.setText(message)
            return
        self.repo_status.setTextFormat(Qt.TextFormat.RichText)
        # the link is reached with Tab too, until the next repository is shown
        self.repo_status.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
        self.repo_status.setText(
            f'{html.escape(message)}<br><a href="#token">Add an access token…</a>'
        )

    def show_repo_loading(self, repo_id: str) -> None:
        """Clear the repo panel while a repo's quant files and headers load."""
        self._repo_id = repo_id
        self.repo_title.setText(f"<b>{repo_id}</b>")
        self.repo_status.setTextFormat(Qt.TextFormat.PlainText)
        self.repo_status.setTextInteractionFlags(_SELECTABLE)
        self.repo_status.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.repo_status.setText("Reading the GGUF headers (a few KB per file)…")
        self.table_model.set_rows([])
        self.explanation.setText("")
