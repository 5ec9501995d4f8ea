"""The Cluster page: llama.cpp RPC workers on other computers, the memory each reports, and a
model loaded split across them and this computer."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from quantdesk.ui.chat.text_blocks import intro_label

INTRO = (
    "<h3>Cluster</h3>A model too big for this computer can be split across several: start "
    "<code>quantdesk rpc-worker --host &lt;its address&gt;</code> on each other computer and add "
    "it here. The model's layers are shared out by the memory each worker reports; the rest "
    "run here. This uses llama.cpp's own RPC backend; a worker serves one model at a time."
)
UNPROTECTED = (
    "llama.cpp's RPC has no password and no encryption: anyone who can reach a worker can use "
    "its memory and CPU. Workers listen only on their own computer (127.0.0.1) unless started "
    "with --host; use other addresses only on a network you trust."
)


class ClusterPage(QWidget):
    """Worker list with memory, add/remove, and loading the selected model across them."""

    addRequested = Signal(str)  # "host:port" as typed
    removeRequested = Signal(str)  # endpoint
    refreshRequested = Signal()
    loadRequested = Signal()  # the library's selected model, split across the workers

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        intro = intro_label(INTRO)
        warning = QLabel(UNPROTECTED)
        warning.setWordWrap(True)
        warning.setStyleSheet("color: #a15c00;")
        self.address = QLineEdit()
        self.address.setPlaceholderText("192.168.1.20:50052")
        self.address.setAccessibleName("Worker address")
        self.address.returnPressed.connect(self._add)
        add = QPushButton("Add worker")
        add.clicked.connect(self._add)
        row = QHBoxLayout()
        row.addWidget(self.address, 1)
        row.addWidget(add)
        self.workers = QListWidget()
        self.workers.setAccessibleName("Workers")
        self.remove = QPushButton("Remove")
        self.remove.clicked.connect(self._remove)
        refresh = QPushButton("Ask for memory again")
        refresh.clicked.connect(self.refreshRequested)
        buttons = QHBoxLayout()
        buttons.addWidget(self.remove)
        buttons.addWidget(refresh)
        buttons.addStretch(1)
        self.load = QPushButton("Load the selected model across the cluster")
        self.load.clicked.connect(self.loadRequested)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.status.setAccessibleName("Cluster status")
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(warning)
        layout.addLayout(row)
        layout.addWidget(self.workers, 1)
        layout.addLayout(buttons)
        layout.addWidget(self.load)
        layout.addWidget(self.status)
        self.set_workers([])

    def _add(self) -> None:
        text = self.address.text().strip()
        if text:
            self.addRequested.emit(text)
            self.address.clear()

    def _remove(self) -> None:
        item = self.workers.currentItem()
        if item is not None and item.data(Qt.ItemDataRole.UserRole):
            self.removeRequested.emit(item.data(Qt.ItemDataRole.UserRole))

    def set_workers(self, workers: list[tuple[str, str]]) -> None:
        """Show the workers: (endpoint, what is known: memory, "asking…", or why not)."""
        self.workers.clear()
        for endpoint, state in workers:
            item = QListWidgetItem(f"{endpoint} — {state}")
            item.setData(Qt.ItemDataRole.UserRole, endpoint)
            self.workers.addItem(item)
        if not workers:
            none = QListWidgetItem("No workers yet.")
            none.setFlags(Qt.ItemFlag.NoItemFlags)
            self.workers.addItem(none)
        self.load.setEnabled(bool(workers))
        self.remove.setEnabled(bool(workers))

    def set_status(self, text: str) -> None:
        """What the cluster is doing (loading, serving, why it stopped)."""
        self.status.setText(text)
