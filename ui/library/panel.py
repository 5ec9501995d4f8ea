"""The model library sidebar: every model the user can load, wherever it lives.

One list for the app's own entries and the models other tools keep (found by discovery),
each with its source. A search box, filters (source, architecture, quant, fits in memory)
and a sort order work on a :class:`LibraryFilterProxy` over the shared
:class:`LibraryListModel` (the chat page's model picker uses the unfiltered list).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import (
    QAbstractListModel,
    QModelIndex,
    QPersistentModelIndex,
    QSize,
    QSortFilterProxyModel,
    Qt,
    Signal,
)
from PySide6.QtGui import QAction, QFont, QFontMetrics, QPalette
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QMenu,
    QPushButton,
    QSizePolicy,
    QStackedWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from quantdesk.engine.gguf.model_info import human_bytes
from quantdesk.engine.library.store import LibraryEntry

EntryRole = Qt.ItemDataRole.UserRole + 1
_Index = QModelIndex | QPersistentModelIndex

#: How each source is shown (library sources first, then discovery's).
SOURCE_LABELS = {
    "starter": "Starter",
    "imported": "Imported",
    "opened": "Opened",
    "downloaded": "Downloaded",
    "quantized": "Quantized",
    "hf-cache": "HF cache",
    "lmstudio": "LM Studio",
    "ollama": "Ollama",
    "jan": "Jan",
    "gpt4all": "GPT4All",
    "folder": "Folder",
    "remote": "Remote",
}
SORT_KEYS = ("name", "size", "params", "date")
_PARAM_UNITS = {"": 1, "K": 1e3, "M": 1e6, "B": 1e9, "T": 1e12}


def source_label(source: str) -> str:
    """The words shown for a library source (``"lmstudio"`` → ``"LM Studio"``)."""
    return SOURCE_LABELS.get(source, source)


def parameter_value(label: str) -> float:
    """A parameter label back to a number for sorting: ``"1.5B"`` → 1.5e9; unknown → 0."""
    m = re.fullmatch(r"\s*([\d.]+)\s*([KMBT]?)\s*", label or "")
    return float(m[1]) * _PARAM_UNITS[m[2]] if m else 0.0


@dataclass(frozen=True)
class Fit:
    """A model's fit verdict at the current load settings (``verdict`` as fit() gives it)."""

    verdict: str  # "gpu" | "partial" | "cpu" | "no_fit" | "unknown"
    label: str

    @property
    def fits(self) -> bool:
        """True when the model can load on this machine at these settings."""
        return self.verdict in ("gpu", "partial", "cpu")


@dataclass(frozen=True)
class _Row:
    entry: LibraryEntry
    name: str
    mtime: float
    exists: bool


class LibraryListModel(QAbstractListModel):
    """Library entries for a list view, with display names and fit verdicts laid over them."""

    def __init__(self) -> None:
        super().__init__()
        self._rows: list[_Row] = []
        self._names: dict[str, str] = {}
        self._fits: dict[str, Fit] = {}

    def set_entries(self, entries: list[LibraryEntry]) -> None:
        """Replace the whole list."""
        self.beginResetModel()
        self._rows = [self._row(e) for e in entries]
        self.endResetModel()

    def _row(self, entry: LibraryEntry) -> _Row:
        try:
            mtime = 0.0 if entry.remote else entry.path.stat().st_mtime
            exists = entry.exists
        except OSError:
            mtime, exists = 0.0, False
        return _Row(entry, self._names.get(str(entry.path)) or entry.name, mtime, exists)

    def set_display_names(self, names: dict[str, str]) -> None:
        """Names by real path (what Ollama or LM Studio call a model) shown instead of the
        header's; kept across :meth:`set_entries`."""
        self._names = dict(names)
        self.set_entries(self.entries())

    def set_fits(self, fits: dict[str, Fit]) -> None:
        """Fit verdicts by path (merged into those known)."""
        self._fits.update(fits)
        if self._rows:
            self.dataChanged.emit(self.index(0), self.index(len(self._rows) - 1))

    def clear_fits(self) -> None:
        """Forget every verdict (the load settings changed)."""
        self._fits.clear()
        if self._rows:
            self.dataChanged.emit(self.index(0), self.index(len(self._rows) - 1))

    def fit_of(self, path: str) -> Fit | None:
        """The known verdict for ``path``."""
        return self._fits.get(path)

    def entries(self) -> list[LibraryEntry]:
        """The entries shown."""
        return [r.entry for r in self._rows]

    def display_name(self, row: int) -> str:
        """The name shown for ``row``."""
        return self._rows[row].name

    def row_data(self, row: int) -> _Row:
        """Everything the filter proxy sorts and filters on."""
        return self._rows[row]

    def row_of(self, path: str) -> int:
        """Row of the entry with ``path``, or -1."""
        return next((i for i, r in enumerate(self._rows) if str(r.entry.path) == path), -1)

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008, N802 - Qt API
        return 0 if parent.isValid() else len(self._rows)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row = self._rows[index.row()]
        entry = row.entry
        fit = self._fits.get(str(entry.path))
        if role == Qt.ItemDataRole.DisplayRole:
            size = human_bytes(entry.size) if entry.size else ""
            details = " · ".join(p for p in (entry.file_type, entry.parameters, size) if p)
            state = "File missing" if not row.exists else fit.label if fit else ""
            source = source_label(entry.source)
            if entry.remote is not None:
                source = f"{source} · {entry.remote.host}"
            where = " · ".join(p for p in (source, state) if p)
            return f"{row.name}\n{details}\n{where}"
        if role == Qt.ItemDataRole.ToolTipRole and entry.remote is not None:
            return (
                f"{row.name}\non {entry.remote.endpoint.url}\nRuns on that server: nothing is "
                "loaded on this computer, and what you type is sent there."
            )
        if role == Qt.ItemDataRole.ToolTipRole:
            template = "has a chat template"
            if not entry.has_chat_template:
                template = "base model (no chat template)"
            return (
                f"{row.name}\n{entry.path}\n{entry.architecture}, "
                f"context {entry.context_length:,}, {template}"
            )
        if role == Qt.ItemDataRole.ForegroundRole and not row.exists:
            return QPalette().color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text)
        if role == Qt.ItemDataRole.SizeHintRole:
            return QSize(0, QFontMetrics(QFont()).lineSpacing() * 3 + 10)
        if role == EntryRole:
            return entry
        return None


class LibraryFilterProxy(QSortFilterProxyModel):
    """Search text, source/architecture/quant filters, "fits in memory", and the sort order."""

    def __init__(self) -> None:
        super().__init__()
        self.text = ""
        self.source = ""
        self.architecture = ""
        self.quant = ""
        self.fits_only = False
        self.sort_key = "name"
        self.setDynamicSortFilter(True)

    def set_filter(self, **changes: Any) -> None:
        """Change any of ``text``, ``source``, ``architecture``, ``quant``, ``fits_only``."""
        self.beginFilterChange()
        for name, value in changes.items():
            if not hasattr(self, name) or name == "sort_key":
                raise AttributeError(name)
            setattr(self, name, value)
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def set_sort_key(self, key: str) -> None:
        """Sort by ``"name"``, ``"size"``, ``"params"`` or ``"date"`` (big and new first)."""
        if key not in SORT_KEYS:
            raise ValueError(key)
        self.sort_key = key
        self.invalidate()
        self.sort(0)

    def _source(self) -> LibraryListModel:
        model = self.sourceModel()
        assert isinstance(model, LibraryListModel)
        return model

    def filterAcceptsRow(self, row: int, parent: _Index) -> bool:  # noqa: N802 - Qt API
        data = self._source().row_data(row)
        entry = data.entry
        words = self.text.lower().split()
        haystack = f"{data.name} {entry.name} {entry.path.name}".lower()
        if any(w not in haystack for w in words):
            return False
        if self.source and entry.source != self.source:
            return False
        if self.architecture and entry.architecture != self.architecture:
            return False
        if self.quant and entry.file_type != self.quant:
            return False
        if self.fits_only and entry.remote is None:  # a remote model needs no memory here
            fit = self._source().fit_of(str(entry.path))
            return data.exists and fit is not None and fit.fits
        return True

    def lessThan(self, left: _Index, right: _Index) -> bool:  # noqa: N802 - Qt API
        a, b = self._source().row_data(left.row()), self._source().row_data(right.row())
        name_a, name_b = a.name.lower(), b.name.lower()
        if self.sort_key == "size" and a.entry.size != b.entry.size:
            return a.entry.size > b.entry.size
        if self.sort_key == "params":
            pa, pb = parameter_value(a.entry.parameters), parameter_value(b.entry.parameters)
            if pa != pb:
                return pa > pb
        if self.sort_key == "date" and a.mtime != b.mtime:
            return a.mtime > b.mtime
        return (a.entry.source != "starter", name_a) < (b.entry.source != "starter", name_b)


def _combo(name: str, tooltip: str) -> QComboBox:
    combo = QComboBox()
    combo.setAccessibleName(name)
    combo.setToolTip(tooltip)
    # as wide as its longest choice needs: the sidebar stops shrinking before a label is cut
    combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    combo.setMinimumContentsLength(8)
    return combo


class LibraryPanel(QWidget):
    """Sidebar listing the library; double-click (or Enter) loads a model."""

    loadRequested = Signal(object)  # LibraryEntry
    addRequested = Signal()
    removeRequested = Signal(object)
    revealRequested = Signal(object)
    quantizeRequested = Signal(object)
    detailsRequested = Signal(object)
    deleteRequested = Signal(object)  # only ever for entries the app owns
    rescanRequested = Signal()
    addFolderRequested = Signal()
    removeFolderRequested = Signal(str)
    addServerRequested = Signal()
    removeServerRequested = Signal(str)  # the server's URL

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = LibraryListModel()
        self.proxy = LibraryFilterProxy()
        self.proxy.setSourceModel(self.model)
        self.proxy.sort(0)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        head = QHBoxLayout()
        head.addWidget(QLabel("<b>Models</b>"), 1)
        self.rescan_button = QToolButton()
        self.rescan_button.setText("Rescan")
        self.rescan_button.setToolTip(
            "Look again for models in LM Studio, Ollama, Jan, GPT4All, the Hugging Face cache "
            "and your watched folders"
        )
        self.rescan_button.setAccessibleName("Rescan for models")
        self.rescan_button.clicked.connect(self.rescanRequested)
        head.addWidget(self.rescan_button)
        layout.addLayout(head)
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search models")
        self.search.setAccessibleName("Search models")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(lambda t: self.proxy.set_filter(text=t))
        layout.addWidget(self.search)
        grid = QGridLayout()
        grid.setSpacing(4)
        self.source_combo = _combo("Filter by source", "Show models from one place only")
        self.arch_combo = _combo("Filter by architecture", "Show one architecture only")
        self.quant_combo = _combo("Filter by quant", "Show one quantization type only")
        self.sort_combo = _combo("Sort models", "Order of the list")
        for key, text in zip(SORT_KEYS, ("Name", "Size", "Parameters", "Date"), strict=True):
            self.sort_combo.addItem(f"Sort: {text}", key)
        self.sort_combo.currentIndexChanged.connect(
            lambda _: self.proxy.set_sort_key(self.sort_combo.currentData())
        )
        for combo, attr in (
            (self.source_combo, "source"),
            (self.arch_combo, "architecture"),
            (self.quant_combo, "quant"),
        ):
            combo.currentIndexChanged.connect(
                lambda _, c=combo, a=attr: self.proxy.set_filter(**{a: c.currentData() or ""})
            )
        grid.addWidget(self.source_combo, 0, 0)
        grid.addWidget(self.arch_combo, 0, 1)
        grid.addWidget(self.quant_combo, 1, 0)
        grid.addWidget(self.sort_combo, 1, 1)
        layout.addLayout(grid)
        self.fits_check = QCheckBox("Only models that fit")
        self.fits_check.setToolTip(
            "Hide models that would not load on this machine at the current context length"
        )
        self.fits_check.toggled.connect(lambda on: self.proxy.set_filter(fits_only=on))
        layout.addWidget(self.fits_check)
        self._stack = QStackedWidget()
        self.view = QListView()
        self.view.setModel(self.proxy)
        self.view.setAccessibleName("Model library")
        self.view.setWordWrap(False)  # one line each for name, type and source: elided
        self.view.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.view.setUniformItemSizes(True)
        self.view.setSpacing(2)
        self.view.setAlternatingRowColors(True)
        self.view.activated.connect(self._activated)
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.view.customContextMenuRequested.connect(self._menu)
        self.empty_label = QLabel()
        self.empty_label.setWordWrap(True)
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._stack.addWidget(self.view)
        self._stack.addWidget(self.empty_label)
        layout.addWidget(self._stack, 1)
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.status.setAccessibleName("Library status")
        layout.addWidget(self.status)
        buttons = QHBoxLayout()
        add = QPushButton("Add model…")
        add.setToolTip("Add a .gguf file from disk to the library (or drop it on the window)")
        add.clicked.connect(self.addRequested)
        self.folder_button = QToolButton()
        self.folder_button.setText("Add folder…")
        self.folder_button.setToolTip(
            "Watch a folder: its .gguf models are listed where they are, never copied"
        )
        self.folder_button.setPopupMode(QToolButton.ToolButtonPopupMode.MenuButtonPopup)
        self.folder_button.clicked.connect(self.addFolderRequested)
        self.folder_menu = QMenu(self.folder_button)
        self.folder_button.setMenu(self.folder_menu)
        self.server_button = QToolButton()
        self.server_button.setText("Add server…")
        self.server_button.setToolTip(
            "Use the models of another server that speaks OpenAI's API (llama-server, Ollama, "
            "LM Studio, vLLM, QuantDesk): they are listed here and chat in the same window"
        )
        self.server_button.setPopupMode(QToolButton.ToolButtonPopupMode.MenuButtonPopup)
        self.server_button.clicked.connect(self.addServerRequested)
        self.server_menu = QMenu(self.server_button)
        self.server_button.setMenu(self.server_menu)
        for button in (add, self.folder_button):
            buttons.addWidget(button, 1)
        layout.addLayout(buttons)
        self.server_button.setSizePolicy(QSizePolicy.Policy.Expanding,
                                         self.server_button.sizePolicy().verticalPolicy())
        layout.addWidget(self.server_button)
        self._scanning = False
        self.set_watched_folders([])
        self.set_servers([])
        self.model.modelReset.connect(self._entries_changed)
        self.proxy.rowsInserted.connect(self._update_state)
        self.proxy.rowsRemoved.connect(self._update_state)
        self.proxy.layoutChanged.connect(self._update_state)
        self.proxy.modelReset.connect(self._update_state)
        self._entries_changed()

    # -- state shown -----------------------------------------------------------------------

    def set_entries(self, entries: list[LibraryEntry]) -> None:
        """Show ``entries``."""
        self.model.set_entries(entries)

    def select_path(self, path: str) -> None:
        """Select the entry for ``path`` if listed (and not hidden by a filter)."""
        row = self.model.row_of(path)
        if row >= 0:
            index = self.proxy.mapFromSource(self.model.index(row))
            if index.isValid():
                self.view.setCurrentIndex(index)

    def current_entry(self) -> LibraryEntry | None:
        """The entry selected in the list (None when none is)."""
        return self.view.currentIndex().data(EntryRole)

    def set_scanning(self, scanning: bool, message: str = "") -> None:
        """Show that a rescan is running (the button waits), or its outcome."""
        self._scanning = scanning
        self.rescan_button.setEnabled(not scanning)
        self.rescan_button.setText("Scanning…" if scanning else "Rescan")
        self._scan_message = message
        self._update_state()

    def set_watched_folders(self, folders: list[str]) -> None:
        """List the watched folders in the Add folder button's menu, each with Stop watching."""
        self.folder_menu.clear()
        if not folders:
            none = self.folder_menu.addAction("No watched folders yet")
            none.setEnabled(False)
        for folder in folders:
            action = QAction(f"Stop watching {folder}", self.folder_menu)
            action.triggered.connect(lambda _=False, f=folder: self.removeFolderRequested.emit(f))
            self.folder_menu.addAction(action)

    def set_servers(self, servers: list[tuple[str, str]]) -> None:
        """List the remote servers (URL, state such as "3 models" or why it did not answer) in
        the Add server button's menu, each with Remove."""
        self.server_menu.clear()
        if not servers:
            none = self.server_menu.addAction("No servers yet")
            none.setEnabled(False)
        for url, state in servers:
            shown = self.server_menu.addAction(f"{url}: {state}")
            shown.setEnabled(False)
            action = QAction(f"Remove {url}", self.server_menu)
            action.triggered.connect(lambda _=False, u=url: self.removeServerRequested.emit(u))
            self.server_menu.addAction(action)

    def visible_entries(self) -> list[LibraryEntry]:
        """The entries the list shows now, in its order (after filters and sorting)."""
        return [
            self.proxy.index(r, 0).data(EntryRole) for r in range(self.proxy.rowCount())
        ]

    def _entries_changed(self) -> None:
        entries = self.model.entries()
        for combo, everything, values in (
            (self.source_combo, "All sources", {e.source for e in entries}),
            (self.arch_combo, "All archs", {e.architecture for e in entries}),
            (self.quant_combo, "All quants", {e.file_type for e in entries}),
        ):
            current = combo.currentData() or ""
            combo.blockSignals(True)
            combo.clear()
            combo.addItem(everything, "")
            key = source_label if combo is self.source_combo else str
            for value in sorted(values, key=lambda v: key(v).lower()):
                combo.addItem(key(value), value)
            combo.setCurrentIndex(max(combo.findData(current), 0))
            combo.blockSignals(False)
            if (combo.currentData() or "") != current:
                combo.currentIndexChanged.emit(combo.currentIndex())
        self._update_state()

    def _update_state(self) -> None:
        total, shown = self.model.rowCount(), self.proxy.rowCount()
        if not total:
            self.empty_label.setText(
                "No models yet.\n\nDrop a .gguf file anywhere on this window, use “Add model…”, "
                "or “Add folder…” to list the models in a folder. Models from LM Studio, "
                "Ollama, Jan, GPT4All and the Hugging Face cache appear here by themselves."
            )
        else:
            self.empty_label.setText("No model matches the search and filters.")
        self._stack.setCurrentIndex(0 if shown else 1)
        count = f"{total} model{'s' if total != 1 else ''}"
        if shown != total:
            count = f"{shown} of {count} shown"
        scan = "Scanning other tools' folders…" if self._scanning else ""
        message = scan or getattr(self, "_scan_message", "")
        self.status.setText(count + (f" · {message}" if message else ""))

    # -- user actions ----------------------------------------------------------------------

    def _activated(self, index: QModelIndex) -> None:
        self.loadRequested.emit(index.data(EntryRole))

    def menu_actions(self, entry: LibraryEntry) -> list[tuple[str, Signal]]:
        """The context menu's items for ``entry``: Delete only for files the app owns."""
        if entry.remote is not None:
            return [("Load", self.loadRequested), ("Remove server", self.removeRequested)]
        items = [
            ("Load", self.loadRequested),
            ("Details…", self.detailsRequested),
            ("Quantize…", self.quantizeRequested),
            ("Show in folder", self.revealRequested),
            ("Remove from library", self.removeRequested),
        ]
        if entry.owned:
            items.append(("Delete file…", self.deleteRequested))
        return items

    def _menu(self, pos) -> None:  # noqa: ANN001 - QPoint
        index = self.view.indexAt(pos)
        if not index.isValid():
            return
        entry = index.data(EntryRole)
        menu = QMenu(self)
        for text, signal in self.menu_actions(entry):
            if text == "Delete file…":
                menu.addSeparator()
            action = QAction(text, menu)
            action.triggered.connect(lambda _=False, s=signal: s.emit(entry))
            menu.addAction(action)
        menu.exec(self.view.viewport().mapToGlobal(pos))
