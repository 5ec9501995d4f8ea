"""Where QuantDesk keeps its data, config, cache and models (platformdirs).

Every folder can be moved at once with ``--data-dir DIR`` or the environment
variable ``QUANTDESK_DATA_DIR`` (tests and portable installs use it).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from platformdirs import PlatformDirs

ENV_DATA_DIR = "QUANTDESK_DATA_DIR"


@dataclass(frozen=True)
class AppPaths:
    """The folders the app reads and writes."""

    data_dir: Path
    config_dir: Path
    cache_dir: Path
    log_dir: Path

    @property
    def models_dir(self) -> Path:
        """Models copied into the app (the only files the app may delete)."""
        return self.data_dir / "models"

    @property
    def library_db(self) -> Path:
        """The SQLite model library."""
        return self.data_dir / "library.sqlite3"

    @property
    def chats_db(self) -> Path:
        """SQLite store of conversations."""
        return self.data_dir / "chats.sqlite3"

    @property
    def jobs_dir(self) -> Path:
        """Markers of the part files QuantDesk's quantize jobs are writing (engine.job_parts)."""
        return self.data_dir / "jobs"

    @property
    def downloads_db(self) -> Path:
        """SQLite store of the download queue."""
        return self.data_dir / "downloads.sqlite3"

    @property
    def model_index_db(self) -> Path:
        """SQLite index of models found on disk (other tools' folders, watched folders)."""
        return self.data_dir / "model-index.sqlite3"

    @property
    def presets_db(self) -> Path:
        """SQLite store of settings presets and each model's default settings."""
        return self.data_dir / "presets.sqlite3"

    @property
    def remote_servers_file(self) -> Path:
        """The remote servers the user added, with their API keys (mode 0600)."""
        return self.config_dir / "remote-servers.json"

    @property
    def settings_file(self) -> Path:
        """The JSON settings file."""
        return self.config_dir / "settings.json"

    @property
    def probe_cache(self) -> Path:
        """Which model files already passed a child-process test load."""
        return self.cache_dir / "probe-cache.json"

    @property
    def log_file(self) -> Path:
        """The app's log file."""
        return self.log_dir / "quantdesk.log"

    def ensure(self) -> AppPaths:
        """Create the folders; returns self."""
        for folder in (
            self.data_dir,
            self.config_dir,
            self.cache_dir,
            self.log_dir,
            self.models_dir,
        ):
            folder.mkdir(parents=True, exist_ok=True)
        return self


def resolve_paths(data_dir: str | os.PathLike[str] | None = None) -> AppPaths:
    """Folders from ``data_dir``, else ``$QUANTDESK_DATA_DIR``, else the platform defaults."""
    base = data_dir or os.environ.get(ENV_DATA_DIR)
    if base:
        root = Path(base).expanduser().resolve()
        return AppPaths(root, root / "config", root / "cache", root / "logs")
    dirs = PlatformDirs("QuantDesk", appauthor=False)
    return AppPaths(
        Path(dirs.user_data_dir),
        Path(dirs.user_config_dir),
        Path(dirs.user_cache_dir),
        Path(dirs.user_log_dir),
    )
