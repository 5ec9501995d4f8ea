"""The settings file: schema version, migration of a real v1 file, newer and damaged files
moved aside with a warning, invalid values back to their defaults one by one, atomic writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from quantdesk.config.settings import MIGRATIONS, SCHEMA_VERSION, SECTIONS, SETTINGS, Settings

# Exactly what QuantDesk 0.1 (schema 1) wrote: json.dumps({"schema": 1, "values": ...}, indent=2)
V1_FILE = """{
  "schema": 1,
  "values": {
    "load.n_ctx": 8192,
    "sampling.temperature": 0.3,
    "import.mode": "reference",
    "downloads.parallel": 3,
    "chat.system_prompt": "Be brief.",
    "window.geometry": "AdnQywADAAA="
  }
}"""


def _backups(folder: Path, kind: str) -> list[Path]:
    return sorted(folder.glob(f"settings.json.{kind}-*"))


def test_every_migration_step_exists_up_to_the_current_version() -> None:
    assert sorted(MIGRATIONS) == list(range(1, SCHEMA_VERSION))


def test_a_v1_file_is_migrated_and_its_values_kept(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text(V1_FILE, encoding="utf-8")
    settings = Settings(path)
    assert settings.warnings == []
    assert settings.get("load.n_ctx") == 8192
    assert settings.get("sampling.temperature") == 0.3
    assert settings.get("import.mode") == "reference"
    assert settings.get("downloads.parallel") == 3
    assert settings.get("chat.system_prompt") == "Be brief."
    assert settings.get("window.geometry") == "AdnQywADAAA="
    # rewritten at once in the v2 layout; the v1 file is kept for an older QuantDesk
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["schema"] == SCHEMA_VERSION == 2
    assert data["load"] == {"n_ctx": 8192}
    assert data["sampling"] == {"temperature": 0.3}
    assert "values" not in data
    assert (tmp_path / "settings.json.v1").read_text(encoding="utf-8") == V1_FILE
    assert Settings(path).get("load.n_ctx") == 8192  # and it reads back


def test_values_round_trip_in_the_current_layout(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    settings = Settings(path)
    settings.set("appearance.theme", "dark")
    settings.update({"sampling.top_k": 7, "sampling.min_p": 0})  # int accepted for a float
    again = Settings(path)
    assert again.get("appearance.theme") == "dark"
    assert again.get("sampling.top_k") == 7
    assert again.get("sampling.min_p") == 0.0 and type(again.get("sampling.min_p")) is float
    assert again.warnings == []


def test_update_is_all_or_nothing(tmp_path: Path) -> None:
    settings = Settings(tmp_path / "settings.json")
    with pytest.raises(ValueError, match="Theme"):
        settings.update({"load.n_ctx": 9000, "appearance.theme": "purple"})
    assert settings.get("load.n_ctx") == SETTINGS["load.n_ctx"].default
    with pytest.raises(ValueError):
        settings.set("load.n_ctx", True)  # a bool is not an int here


def test_a_newer_file_is_moved_aside_and_reported(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    newer = {
        "schema": SCHEMA_VERSION + 1,
        "load": {"n_ctx": 16384, "rope_mode": "yarn"},
        "future": {"thing": True},
    }
    text = json.dumps(newer, indent=2)
    path.write_text(text, encoding="utf-8")
    settings = Settings(path)
    [warning] = settings.warnings
    assert "newer QuantDesk" in warning.message
    [backup] = _backups(tmp_path, "newer")
    assert backup.read_text(encoding="utf-8") == text  # byte for byte
    assert str(backup) in warning.details
    assert settings.get("load.n_ctx") == 16384  # what this version understands is kept
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["schema"] == SCHEMA_VERSION
    # names this version does not know survive its writes
    assert data["load"]["rope_mode"] == "yarn" and data["future"] == {"thing": True}
    assert Settings(path).warnings == []  # reported once, not at every start


@pytest.mark.parametrize(
    "content",
    [b'{"schema": 2, "load": {"n_ctx": 40', b"\x00\x00\x00\x00", b"[1, 2]", b'{"schema": "x"}'],
    ids=["truncated", "zeros", "not-an-object", "bad-schema"],
)
def test_a_damaged_file_is_moved_aside_and_defaults_used(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "settings.json"
    path.write_bytes(content)
    settings = Settings(path)
    [warning] = settings.warnings
    assert "damaged" in warning.message
    [backup] = _backups(tmp_path, "corrupt")
    assert backup.read_bytes() == content
    assert str(backup) in warning.details
    assert settings.values() == {n: s.default for n, s in SETTINGS.items()}
    assert not path.exists()  # nothing written until something changes
    settings.set("load.n_ctx", 2048)
    assert Settings(path).get("load.n_ctx") == 2048
    assert _backups(tmp_path, "corrupt") == [backup]


def test_invalid_values_fall_back_one_by_one_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text(
        json.dumps(
            {
                "schema": 2,
                "load": {"n_ctx": "lots", "n_threads": 4, "kv_type": "q3_xyz"},
                "sampling": {"temperature": 99.0, "top_k": 12},
                "appearance": {"theme": "dark"},
            }
        ),
        encoding="utf-8",
    )
    settings = Settings(path)
    [warning] = settings.warnings
    for label in ("Context length ('lots')", "KV cache type ('q3_xyz')", "Temperature (99.0)"):
        assert label in warning.message
    assert "3 setting(s)" in warning.message
    assert settings.get("load.n_ctx") == SETTINGS["load.n_ctx"].default
    assert settings.get("sampling.temperature") == SETTINGS["sampling.temperature"].default
    assert settings.get("load.n_threads") == 4
    assert settings.get("sampling.top_k") == 12
    assert settings.get("appearance.theme") == "dark"
    assert not _backups(tmp_path, "corrupt")


def test_a_failed_write_leaves_the_previous_file_whole(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    settings = Settings(path)
    settings.set("load.n_ctx", 2048)
    before = path.read_bytes()
    (tmp_path / "settings.json.tmp").mkdir()  # the temporary file cannot be created
    settings.set("load.n_ctx", 4096)
    assert path.read_bytes() == before
    (tmp_path / "settings.json.tmp").rmdir()
    settings.set("load.n_ctx", 4096)
    assert Settings(path).get("load.n_ctx") == 4096
    assert sorted(p.name for p in tmp_path.iterdir()) == ["settings.json"]


def test_theme_setting_and_sections_are_declared() -> None:
    theme = SETTINGS["appearance.theme"]
    assert theme.default == "system" and theme.choices == ("system", "light", "dark")
    assert len(theme.choice_labels) == len(theme.choices)
    visible_sections = {s.section for s in SETTINGS.values() if s.label}
    assert visible_sections <= set(SECTIONS)


def test_a_long_text_setting_is_checked_by_length(tmp_path: Path) -> None:
    settings = Settings(tmp_path / "settings.json")
    settings.set("chat.system_prompt", "Be brief.")  # once raised TypeError (str > int)
    assert Settings(tmp_path / "settings.json").get("chat.system_prompt") == "Be brief."
    with pytest.raises(ValueError):
        settings.set("chat.system_prompt", "x" * 100_001)
