"""The main window: library sidebar, chat page, settings panel, status bar.

Presentation only. It emits what the user asked for (files dropped, model
chosen...) and shows what it is told; app/gui/controller.py does the work.
"""

from __future__ import annotations

from collections.abc import Iterable

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QApplication,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMenu,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from quantdesk.ui.banner import Banner
from quantdesk.ui.chat.chat_list import ChatListPanel
from quantdesk.ui.chat.page import ChatPage
from quantdesk.ui.library.panel import LibraryPanel
from quantdesk.ui.settings.panel import SettingsPanel, SettingSpec


class MainWindow(QMainWindow):
    """QuantDesk's window."""

    filesDropped = Signal(list)  # list[str]
    newChatRequested = Signal()
    preferencesRequested = Signal()
    aboutRequested = Signal()
    exportChatRequested = Signal(str)  # "md" or "json": the chat shown
    reloadRequested = Signal()
    logFolderRequested = Signal()
    closing = Signal()

    def __init__(self, setting_specs: Iterable[SettingSpec], title: str = "QuantDesk") -> None:
        super().__init__()
        self.setWindowTitle(title)
        self.setAcceptDrops(True)
        self.resize(1200, 780)  # fit_to_screen() shrinks it on a smaller screen
        self.library = LibraryPanel()
        self.chat = ChatPage(self.library.model)
        self.settings_panel = SettingsPanel(setting_specs)
        self.banner = Banner()

        self.chat_list = ChatListPanel()
        self.left = QSplitter(Qt.Orientation.Vertical)
        self.left.addWidget(self.library)
        self.left.addWidget(self.chat_list)
        self.left.setSizes([520, 180])
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(self.left)
        self.splitter.addWidget(self.chat)
        self.splitter.addWidget(self.settings_panel)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setCollapsible(1, False)
        self.splitter.setSizes([240, 640, 280])

        self.rail = QListWidget()
        self.rail.setAccessibleName("Sections")
        self.rail.setFixedWidth(116)
        self.rail.setStyleSheet(
            "QListWidget { border: none; background: palette(window); padding-top: 6px; }"
            " QListWidget::item { padding: 9px 12px; border-radius: 6px; margin: 1px 6px; }"
            " QListWidget::item:selected { background: palette(highlight);"
            " color: palette(highlighted-text); }"
        )
        self.pages = QStackedWidget()
        self.rail.currentRowChanged.connect(self.pages.setCurrentIndex)
        self._menus()
        self.add_page("Chat", self.splitter)

        right = QWidget()
        column = QVBoxLayout(right)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(0)
        column.addWidget(self.banner)
        column.addWidget(self.pages, 1)
        central = QWidget()
        row = QHBoxLayout(central)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(0)
        about = QPushButton("About")
        about.setFlat(True)
        about.setToolTip("Version, llama.cpp build and licences (F1)")
        about.clicked.connect(self.aboutRequested)
        rail_column = QVBoxLayout()
        rail_column.setContentsMargins(0, 0, 0, 6)
        rail_column.addWidget(self.rail, 1)
        rail_column.addWidget(about)
        row.addLayout(rail_column)
        row.addWidget(right, 1)
        self.setCentralWidget(central)
        self.rail.setCurrentRow(0)

        self.ram_label = QLabel()
        self.speed_label = QLabel()
        self.context_label = QLabel()
        for label, name in (
            (self.ram_label, "Memory use"),
            (self.speed_label, "Speed of the last reply"),
            (self.context_label, "Context used"),
        ):
            label.setAccessibleName(name)
            label.setStyleSheet("QLabel { padding: 0 10px; border-left: 1px solid palette(mid); }")
            self.statusBar().addPermanentWidget(label)
        self._shortcuts()

    def _shortcuts(self) -> None:
        # Esc is no menu item: it stops a reply, else cancels an edit (ChatPage.escape)
        self._escape = QShortcut(QKeySequence("Esc"), self, activated=self.chat.escape)

    def _menus(self) -> None:
        """File, Edit, View, Model, Help: every page's main actions, with their shortcuts."""
        bar = self.menuBar()
        self.menu_actions: dict[str, QAction] = {}

        def add(menu: QMenu, text: str, slot, keys="") -> QAction:  # noqa: ANN001
            action = QAction(text, self)
            if keys:
                action.setShortcut(QKeySequence(keys))
            action.triggered.connect(slot)
            menu.addAction(action)
            self.menu_actions[text.replace("&", "")] = action
            return action

        file = bar.addMenu("&File")
        add(file, "&New chat", self.newChatRequested.emit, "Ctrl+N")
        add(file, "&Add model…", self.library.addRequested.emit, "Ctrl+O")
        add(file, "Add &folder…", self.library.addFolderRequested.emit)
        add(file, "Add &server…", self.library.addServerRequested.emit)
        file.addSeparator()
        add(file, "&Import chat (JSON)…", self.chat_list.importRequested.emit)
        add(file, "Export chat as &Markdown…", lambda: self.exportChatRequested.emit("md"))
        add(file, "Export chat as &JSON…", lambda: self.exportChatRequested.emit("json"))
        file.addSeparator()
        quit_action = add(file, "&Quit", self.close, "Ctrl+Q")  # every platform theme: Ctrl+Q
        quit_action.setMenuRole(QAction.MenuRole.QuitRole)
        edit = bar.addMenu("&Edit")
        add(edit, "&Find chats", self._focus_chat_search, "Ctrl+F")
        self.preferences_action = add(edit, "&Preferences…", self.preferencesRequested.emit,
                                      "Ctrl+,")  # fmt: skip
        self.preferences_action.setMenuRole(QAction.MenuRole.PreferencesRole)
        self.view_menu = bar.addMenu("&View")
        add(self.view_menu, "&Settings panel", self.toggle_settings, "Ctrl+Shift+,")
        self.view_menu.addSeparator()
        model = bar.addMenu("&Model")
        add(model, "&Select model…", self._focus_picker, "Ctrl+K")
        add(model, "&Reload with the current settings", self.reloadRequested.emit)
        add(model, "&Eject", self.chat.ejectRequested.emit)
        add(model, "S&top generating", self.chat.stopRequested.emit)
        helpmenu = bar.addMenu("&Help")
        add(helpmenu, "Open the &log folder", self.logFolderRequested.emit)
        about = add(helpmenu, "&About QuantDesk", self.aboutRequested.emit, "F1")
        about.setMenuRole(QAction.MenuRole.AboutRole)

    def _focus_chat_search(self) -> None:
        self.show_page(0)
        self.chat_list.search.setFocus()
        self.chat_list.search.selectAll()

    def fit_to_screen(self) -> None:
        """Keep the window inside the screen's available area (a first start on a 1024×640
        screen opened at 1200×780, with Send below the screen's edge)."""
        screen = self.screen() or QApplication.primaryScreen()
        if screen is None:
            return
        area = screen.availableGeometry()
        frame = self.frameGeometry().size() - self.geometry().size()  # title bar and borders
        width = min(self.width(), area.width() - frame.width())
        height = min(self.height(), area.height() - frame.height())
        if (width, height) != (self.width(), self.height()):
            self.resize(width, height)
        geo = self.frameGeometry()
        x = min(max(geo.x(), area.left()), area.right() - geo.width() + 1)
        y = min(max(geo.y(), area.top()), area.bottom() - geo.height() + 1)
        if (x, y) != (geo.x(), geo.y()):
            self.move(x, y)

    def add_page(self, title: str, widget: QWidget) -> int:
        """Add a section to the navigation rail (Ctrl+1, Ctrl+2... switch); returns its index."""
        index = self.pages.addWidget(widget)
        item = QListWidgetItem(title)
        item.setToolTip(f"{title} (Ctrl+{index + 1})")
        self.rail.addItem(item)
        action = QAction(title, self)
        action.setShortcut(QKeySequence(f"Ctrl+{index + 1}"))
        action.triggered.connect(lambda: self.show_page(index))
        self.view_menu.addAction(action)
        self.menu_actions[title] = action
        return index

    def show_page(self, index: int) -> None:
        """Switch to section ``index``."""
        self.rail.setCurrentRow(index)

    def _focus_picker(self) -> None:
        self.show_page(0)
        self.chat.picker.setFocus()
        self.chat.picker.showPopup()

    def toggle_settings(self) -> None:
        """Show or hide the settings panel (Ctrl+Shift+,)."""
        self.show_page(0)
        self.settings_panel.setVisible(not self.settings_panel.isVisible())

    def show_error(self, message: str, details: str = "", actions=()) -> None:  # noqa: ANN001
        """Show an error in the banner; the window stays usable."""
        self.banner.show_message("error", message, details, actions)

    def show_info(self, message: str, actions=()) -> None:  # noqa: ANN001
        """Show a neutral message in the banner."""
        self.banner.show_message("info", message, "", actions)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt API
        if event.mimeData().hasUrls() and any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 - Qt API
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.filesDropped.emit(paths)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt API
        self.closing.emit()
        super().closeEvent(event)
