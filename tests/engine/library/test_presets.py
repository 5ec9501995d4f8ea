"""Settings presets and each model's own defaults: the SQLite store, the checks, the app."""

from __future__ import annotations

import argparse
import sqlite3
from pathlib import Path

import pytest

from quantdesk.config.settings import PRESET_KEYS, Settings, preset_summary
from quantdesk.engine.library.presets import PresetStore
from quantdesk.engine.sqlite_files import NewerDatabase
from tests.support.tiny_models import write_tiny_model


def test_presets_are_saved_replaced_listed_and_deleted(tmp_path: Path) -> None:
    db = tmp_path / "presets.sqlite3"
    store = PresetStore(db)
    store.save_preset("  Precise   answers ", {"sampling.temperature": 0.1})
    store.save_preset("creative", {"sampling.temperature": 1.2})
    store.save_preset("Precise answers", {"sampling.temperature": 0.2})  # replaces
    assert [p.name for p in store.presets()] == ["creative", "Precise answers"]
    store.close()
    store = PresetStore(db)  # kept on disk
    assert store.preset("Precise answers").values == {"sampling.temperature": 0.2}
    store.delete_preset("creative")
    assert [p.name for p in store.presets()] == ["Precise answers"]
    with pytest.raises(ValueError, match="needs a name"):
        store.save_preset("   ", {})
    with pytest.raises(ValueError, match="at most"):
        store.save_preset("x" * 81, {})
    store.close()


def test_model_defaults_are_kept_per_model_path(tmp_path: Path) -> None:
    store = PresetStore(tmp_path / "presets.sqlite3")
    assert store.model_defaults("/m/a.gguf") is None
    store.save_model_defaults("/m/a.gguf", {"load.n_ctx": 256})
    store.save_model_defaults(Path("/m/a.gguf"), {"load.n_ctx": 1024})
    assert store.model_defaults("/m/a.gguf") == {"load.n_ctx": 1024}
    assert store.models_with_defaults() == {"/m/a.gguf"}
    store.forget_model_defaults("/m/a.gguf")
    assert store.model_defaults("/m/a.gguf") is None
    store.close()


def test_damaged_values_read_as_empty_and_newer_files_are_left_alone(tmp_path: Path) -> None:
    db = tmp_path / "presets.sqlite3"
    PresetStore(db).close()
    raw = sqlite3.connect(db)
    raw.execute("""INSERT INTO presets (name, "values", updated) VALUES ('bad', 'not json', 0)""")
    raw.execute("""INSERT INTO presets (name, "values", updated) VALUES ('list', '[1]', 0)""")
    raw.commit()
    store = PresetStore(db)
    assert {p.name: p.values for p in store.presets()} == {"bad": {}, "list": {}}
    store.close()
    raw.execute("PRAGMA user_version = 99")
    raw.commit()
    raw.close()
    before = db.read_bytes()
    with pytest.raises(NewerDatabase, match="newer QuantDesk"):
        PresetStore(db)
    assert db.read_bytes() == before


def test_a_preset_is_checked_against_the_declared_settings() -> None:
    usable, skipped = Settings.check_preset({
        "load.n_ctx": 2048, "sampling.temperature": 1,  # an int where a float is declared: fine
        "sampling.top_p": 7.0, "load.kv_type": "q2", "window.geometry": "abc", "gone.key": 1,
    })  # fmt: skip
    assert usable == {"load.n_ctx": 2048, "sampling.temperature": 1.0}
    assert skipped == ["Top-p (7.0)", "KV cache type ('q2')"]
    assert "chat.system_prompt" in PRESET_KEYS and "library.last_model" not in PRESET_KEYS
    assert preset_summary({"load.n_ctx": 2048, "chat.system_prompt": "Be brief"}) == (
        "Context length 2048 · system prompt"
    )


def _build(qtbot):
    from quantdesk.gui import build_app

    window, controller, paths = build_app(argparse.Namespace(data_dir=None, files=[]))
    controller.settings.update({"load.n_ctx": 512, "load.n_threads": 1})
    qtbot.addWidget(window)
    window.show()
    controller.start([])
    return window, controller


def _load(qtbot, controller, path: Path) -> None:
    entry = controller.library.find(path)
    with qtbot.waitSignal(controller.models.modelLoaded, timeout=60_000):
        controller.models.load(entry)


def test_a_model_loads_with_its_own_settings_and_presets_apply(qtbot, data_dir, tmp_path):
    """'Save for this model' → that model always loads with them (another model does not);
    a named preset applies at once, a hand edit deselects it, and both survive a restart."""
    a = write_tiny_model(tmp_path / "a.gguf")
    b = write_tiny_model(tmp_path / "b.gguf", seed=2)
    window, controller = _build(qtbot)
    bar, panel = window.settings_panel.presets, window.settings_panel
    try:
        controller.imports.import_files([a, b], mode="reference")
        qtbot.waitUntil(lambda: window.library.model.rowCount() == 2, timeout=10_000)
        _load(qtbot, controller, a)
        assert "no settings of its own" in bar.model_label.text()
        controller.settings_ctl._setting_changed("load.n_ctx", 256)
        controller.settings_ctl._setting_changed("sampling.temperature", 0.3)
        bar.save_model.click()
        assert "a.gguf loads with its own settings: Context length 256" in bar.model_label.text()
        assert bar.forget_model.isVisibleTo(window.settings_panel)
        controller.settings_ctl._setting_changed("load.n_ctx", 384)
        _load(qtbot, controller, b)  # no defaults: the current settings are used
        assert controller.models.loaded.context_size == 384
        assert not bar.forget_model.isVisibleTo(window.settings_panel)
        _load(qtbot, controller, a)
        assert controller.models.loaded.context_size == 256
        assert panel.editor("load.n_ctx").value() == 256
        assert panel.editor("sampling.temperature").value() == pytest.approx(0.3)

        controller.settings_ctl.presets.save_preset("Precise")
        assert bar.current() == "Precise"
        controller.settings_ctl._setting_changed("sampling.temperature", 1.5)
        assert bar.current() == ""  # edited by hand: no longer the preset
        controller.settings_ctl._setting_changed("chat.system_prompt", "Answer in French.")
        controller.settings_ctl.presets.choose("Precise")
        assert controller.settings.get("sampling.temperature") == pytest.approx(0.3)
        assert controller.settings.get("chat.system_prompt") == ""
        assert panel.editor("sampling.temperature").value() == pytest.approx(0.3)
        controller.settings_ctl.presets.save_preset("Big context")
        controller.settings_ctl._setting_changed("load.n_ctx", 2048)
        controller.settings_ctl.presets.save_preset("Big context")  # replaced
        controller.settings_ctl._setting_changed("load.n_ctx", 512)
        controller.settings_ctl.presets.choose("Big context")
        assert controller.settings.get("load.n_ctx") == 2048
        assert panel._reload_row.isVisibleTo(window.settings_panel)  # reload offered
    finally:
        controller.shutdown()

    window, controller = _build(qtbot)
    bar = window.settings_panel.presets
    try:
        names = [bar.combo.itemText(i) for i in range(1, bar.combo.count())]
        assert names == ["Big context", "Precise"]
        # the last model
        qtbot.waitUntil(lambda: controller.models.loaded is not None, timeout=60_000)
        assert controller.models.loaded.path == str(a)
        # still its own settings after a restart
        assert controller.models.loaded.context_size == 256
        bar.forget_model.click()
        assert "no settings of its own" in bar.model_label.text()
        controller.settings_ctl.presets.delete_preset("Precise")
        assert [bar.combo.itemText(i) for i in range(1, bar.combo.count())] == ["Big context"]
    finally:
        controller.shutdown()


def test_a_chat_under_way_keeps_its_system_prompt(qtbot, data_dir, tmp_path):
    model = write_tiny_model(tmp_path / "a.gguf")
    window, controller = _build(qtbot)
    try:
        controller.settings.set("sampling.max_tokens", 4)
        controller.imports.import_files([model], mode="reference")
        qtbot.waitUntil(lambda: window.library.model.rowCount() == 1, timeout=10_000)
        _load(qtbot, controller, model)
        controller.settings_ctl._setting_changed("chat.system_prompt", "Talk like a pirate.")
        controller.settings_ctl.presets.save_model_defaults()
        controller.settings_ctl._setting_changed("chat.system_prompt", "Be brief.")
        with qtbot.waitSignal(controller.chat.replyFinished, timeout=60_000):
            controller.chat.send("Hello")
        _load(qtbot, controller, model)  # reload mid-chat: the chat's prompt stays
        assert controller.settings.get("chat.system_prompt") == "Be brief."
        controller.chat.new_chat()
        _load(qtbot, controller, model)  # a new chat takes the model's prompt
        assert controller.settings.get("chat.system_prompt") == "Talk like a pirate."
    finally:
        controller.shutdown()
