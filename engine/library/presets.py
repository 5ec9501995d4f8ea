"""Named settings presets and each model's own default settings, kept in SQLite.

A preset is a map of setting names to values (context length, GPU layers, sampling, system
prompt...). The store does not judge the values: the app validates them against its declared
settings when it applies them, so a preset saved by another version never breaks a load.
A model's defaults are a preset keyed by the model file's path, applied when it is loaded.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quantdesk.engine.sqlite_files import NewerDatabase, open_database

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS presets (
    name TEXT PRIMARY KEY,
    "values" TEXT NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS model_defaults (
    model_path TEXT PRIMARY KEY,
    "values" TEXT NOT NULL,
    updated REAL NOT NULL
);
"""

MAX_NAME_LENGTH = 80


@dataclass(frozen=True)
class Preset:
    """A named set of setting values."""

    name: str
    values: dict[str, Any]
    updated: float


class PresetStore:
    """Presets and per-model defaults; one instance per thread (sqlite3 connections are)."""

    def __init__(self, path: Path | str) -> None:
        """Open (or create) the database; ``":memory:"`` keeps nothing on disk.

        A damaged file is moved aside (``recovered_from`` names the backup); a file from a newer
        QuantDesk raises NewerDatabase and is left untouched.
        """
        self.path = Path(path)
        self._db, self.recovered_from = open_database(
            self.path, _SCHEMA, SCHEMA_VERSION, what="The settings presets"
        )

    def close(self) -> None:
        """Close the connection."""
        self._db.close()

    # -- named presets -----------------------------------------------------------------------

    def presets(self) -> list[Preset]:
        """Every named preset, by name (case-insensitive)."""
        rows = self._db.execute(
            'SELECT name, "values", updated FROM presets ORDER BY name COLLATE NOCASE'
        )
        return [Preset(name, _decode(values), updated) for name, values, updated in rows]

    def preset(self, name: str) -> Preset | None:
        """The preset called ``name``, or None."""
        row = self._db.execute(
            'SELECT name, "values", updated FROM presets WHERE name = ?', (name,)
        ).fetchone()
        return None if row is None else Preset(row[0], _decode(row[1]), row[2])

    def save_preset(self, name: str, values: dict[str, Any]) -> Preset:
        """Save (or replace) the preset ``name``; raises ValueError for an unusable name."""
        name = " ".join(name.split())
        if not name:
            raise ValueError("A preset needs a name.")
        if len(name) > MAX_NAME_LENGTH:
            raise ValueError(f"A preset name can be at most {MAX_NAME_LENGTH} characters long.")
        now = time.time()
        with self._db:
            self._db.execute(
                'INSERT INTO presets (name, "values", updated) VALUES (?, ?, ?) '
                'ON CONFLICT (name) DO UPDATE SET "values" = excluded."values", '
                "updated = excluded.updated",
                (name, json.dumps(values), now),
            )
        return Preset(name, dict(values), now)

    def delete_preset(self, name: str) -> None:
        """Forget the preset ``name`` (nothing happens when there is none)."""
        with self._db:
            self._db.execute("DELETE FROM presets WHERE name = ?", (name,))

    # -- per-model defaults ------------------------------------------------------------------

    def model_defaults(self, model_path: str | Path) -> dict[str, Any] | None:
        """The settings saved for the model at ``model_path``, or None."""
        row = self._db.execute(
            'SELECT "values" FROM model_defaults WHERE model_path = ?', (str(model_path),)
        ).fetchone()
        return None if row is None else _decode(row[0])

    def models_with_defaults(self) -> set[str]:
        """Paths of the models that have saved defaults."""
        return {row[0] for row in self._db.execute("SELECT model_path FROM model_defaults")}

    def save_model_defaults(self, model_path: str | Path, values: dict[str, Any]) -> None:
        """Remember ``values`` as the settings the model at ``model_path`` loads with."""
        with self._db:
            self._db.execute(
                'INSERT INTO model_defaults (model_path, "values", updated) VALUES (?, ?, ?) '
                'ON CONFLICT (model_path) DO UPDATE SET "values" = excluded."values", '
                "updated = excluded.updated",
                (str(model_path), json.dumps(values), time.time()),
            )

    def forget_model_defaults(self, model_path: str | Path) -> None:
        """Drop the settings saved for the model at ``model_path``."""
        with self._db:
            self._db.execute("DELETE FROM model_defaults WHERE model_path = ?", (str(model_path),))


def _decode(text: str) -> dict[str, Any]:
    """Stored JSON back to a dict; anything else (edited by hand, damaged) reads as empty."""
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


__all__ = ["MAX_NAME_LENGTH", "NewerDatabase", "Preset", "PresetStore"]
