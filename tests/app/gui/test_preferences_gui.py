"""Preferences dialog built from the declared settings; theme applied live (pytest-qt)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QApplication, QComboBox, QPlainTextEdit, QSpinBox

from quantdesk.config.settings import SECTIONS, SETTINGS, Setting, Settings
from quantdesk.gui.theme import apply_theme, system_scheme
from quantdesk.ui.settings.panel import SettingsPanel
from quantdesk.ui.settings.preferences_dialog import PreferencesDialog


def _dialog(qtbot, settings: Settings, specs=None) -> PreferencesDialog:  # noqa: ANN001
    dialog = PreferencesDialog(
        specs if specs is not None else SETTINGS.values(), settings.values(), SECTIONS
    )
    qtbot.addWidget(dialog)
    dialog.applied.connect(settings.update)
    return dialog


def test_sections_come_from_the_declared_settings(qtbot, tmp_path: Path) -> None:
    dialog = _dialog(qtbot, Settings(tmp_path / "settings.json"))
    assert dialog.sections() == [
        "Model loading", "Sampling", "Chat", "Downloads", "Import", "Server", "Appearance"
    ]
    for name, spec in SETTINGS.items():
        shown = name in dialog._editors
        assert shown == bool(spec.label), name  # internal state (no label) is not shown
    assert isinstance(dialog.editor("chat.system_prompt"), QPlainTextEdit)
    theme = dialog.editor("appearance.theme")
    assert isinstance(theme, QComboBox)
    assert [theme.itemText(i) for i in range(theme.count())][0] == "Follow the system"


def test_a_new_declared_setting_appears_without_code(qtbot, tmp_path: Path) -> None:
    extra = Setting("telemetry.level", int, 2, 0, 5, label="Telemetry level")
    specs = [*SETTINGS.values(), extra]
    dialog = PreferencesDialog(specs, {}, SECTIONS)
    qtbot.addWidget(dialog)
    assert dialog.sections()[-1] == "Telemetry"
    editor = dialog.editor("telemetry.level")
    assert isinstance(editor, QSpinBox) and editor.value() == 2 and editor.maximum() == 5


def test_apply_ok_cancel(qtbot, tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    settings = Settings(path)
    dialog = _dialog(qtbot, settings)
    assert not dialog.apply_button.isEnabled()
    dialog.editor("load.n_ctx").setValue(2048)
    dialog.editor("appearance.theme").setCurrentIndex(2)  # Dark
    assert dialog.apply_button.isEnabled()
    assert settings.get("load.n_ctx") != 2048  # nothing saved before Apply
    with qtbot.waitSignal(dialog.applied) as applied:
        dialog.apply_button.click()
    assert applied.args == [{"load.n_ctx": 2048, "appearance.theme": "dark"}]
    assert not dialog.apply_button.isEnabled()
    assert Settings(path).get("appearance.theme") == "dark"

    dialog.editor("sampling.top_k").setValue(5)
    dialog.reject()  # Cancel drops what was not applied
    assert Settings(path).get("sampling.top_k") == SETTINGS["sampling.top_k"].default

    again = _dialog(qtbot, settings)
    assert again.editor("load.n_ctx").value() == 2048  # opens on the saved values
    again.editor("sampling.temperature").setValue(0.2)
    again.accept()  # OK applies
    assert Settings(path).get("sampling.temperature") == 0.2


def test_reset_section_puts_back_only_that_section(qtbot, tmp_path: Path) -> None:
    settings = Settings(tmp_path / "settings.json")
    settings.update({"sampling.temperature": 0.1, "sampling.seed": 7, "load.n_ctx": 2048})
    dialog = _dialog(qtbot, settings)
    dialog.reset_section("sampling")
    assert dialog.editor("sampling.temperature").value() == SETTINGS["sampling.temperature"].default
    assert dialog.changes() == {
        "sampling.temperature": SETTINGS["sampling.temperature"].default,
        "sampling.seed": SETTINGS["sampling.seed"].default,
    }
    dialog.accept()
    assert settings.get("sampling.seed") == SETTINGS["sampling.seed"].default
    assert settings.get("load.n_ctx") == 2048


def test_settings_panel_still_edits_through_the_shared_editors(qtbot) -> None:
    panel = SettingsPanel(SETTINGS.values())
    qtbot.addWidget(panel)
    panel.set_values({"load.kv_type": "q8_0", "chat.system_prompt": "Hi", "load.n_ctx": 1024})
    assert panel.editor("load.kv_type").currentText() == "q8_0"
    assert panel.editor("load.n_ctx").value() == 1024
    with qtbot.waitSignal(panel.settingChanged) as changed:
        panel.editor("load.kv_type").setCurrentIndex(2)
    assert changed.args == ["load.kv_type", "q4_0"]
    with qtbot.waitSignal(panel.settingChanged) as changed:
        panel.editor("chat.system_prompt").setPlainText("Be brief.")
    assert changed.args == ["chat.system_prompt", "Be brief."]


def test_theme_light_dark_and_system(qtbot) -> None:
    app = QApplication.instance()
    window = QPalette.ColorRole.Window
    native = app.palette().color(window)
    try:
        assert apply_theme(app, "dark") == "dark"
        assert app.style().name().lower() == "fusion"
        assert app.palette().color(window).lightness() < 80
        assert app.palette().color(QPalette.ColorRole.Text).lightness() > 180
        assert apply_theme(app, "light") == "light"
        assert app.palette().color(window).lightness() > 180
        expected = "dark" if system_scheme(app) == "dark" else "native"
        assert apply_theme(app, "system") == expected
        if expected == "native":  # offscreen reports no scheme: the platform palette is back
            assert app.palette().color(window) == native
    finally:
        apply_theme(app, "system")


def test_gpu_layers_editor_shows_auto_at_its_minimum(qtbot, tmp_path: Path) -> None:
    panel = SettingsPanel(SETTINGS.values())
    qtbot.addWidget(panel)
    panel.set_values({"load.n_gpu_layers": Settings(tmp_path / "s.json").get("load.n_gpu_layers")})
    box = panel.editor("load.n_gpu_layers")
    assert isinstance(box, QSpinBox) and box.text() == "Auto"
    panel.set_values({"load.n_gpu_layers": 12})
    assert box.text() == "12"


def test_banners_follow_the_dark_theme(qtbot) -> None:
    """Issue 19, fault 10: banners kept their light colours (pale pink, dark text) in the dark
    theme."""
    from PySide6.QtWidgets import QMainWindow

    from quantdesk.ui.banner import Banner

    app = QApplication.instance()
    window = QMainWindow()
    banner = Banner()
    window.setCentralWidget(banner)
    qtbot.addWidget(window)
    window.show()
    try:
        apply_theme(app, "light")
        banner.show_message("error", "Something failed")
        light = banner.styleSheet()
        apply_theme(app, "dark")  # while the banner is shown
        dark = banner.styleSheet()
        assert light != dark and "#fde7e9" in light and "#fde7e9" not in dark
        banner.show_message("info", "Hello")
        assert "#1c2c44" in banner.styleSheet()
    finally:
        apply_theme(app, "system")
