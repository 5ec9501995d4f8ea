"""Settings declared once: name, type, default, validation; stored as versioned JSON.

Widgets never invent keys: they read and write :class:`Settings` through the
names declared in :data:`SETTINGS`. The file carries a schema version; older
files are migrated (:data:`MIGRATIONS`), a newer or damaged file is moved aside
(never silently dropped) and each value that fails validation falls back to its
default; every such case becomes a :class:`SettingsWarning` the app shows.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quantdesk.engine.params import AUTO_GPU_LAYERS, LoadSettings, SamplingSettings

SCHEMA_VERSION = 2
IMPORT_MODES = ("ask", "copy", "move", "reference")
THEMES = ("system", "light", "dark")

#: Titles of the setting sections (the part of a name before the first dot), in display order.
SECTIONS: dict[str, str] = {
    "load": "Model loading",
    "sampling": "Sampling",
    "chat": "Chat",
    "downloads": "Downloads",
    "import": "Import",
    "server": "Server",
    "library": "Library",
    "appearance": "Appearance",
}


@dataclass(frozen=True)
class Setting:
    """One declared setting: its type, default and the values it accepts.

    A setting without a ``label`` is internal state (window geometry, last model):
    it is stored like the others but not shown in the Preferences dialog.
    """

    name: str
    type: type
    default: Any
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    label: str = ""
    tooltip: str = ""
    choice_labels: tuple[str, ...] = ()
    special_value: str = ""  # a number editor shows this text at the minimum (e.g. "Auto")

    @property
    def section(self) -> str:
        """The part of the name before the first dot (``"load"`` for ``"load.n_ctx"``)."""
        return self.name.split(".", 1)[0]

    def coerce(self, value: Any) -> Any:
        """``value`` converted where the conversion loses nothing (an int for a float)."""
        if self.type is float and type(value) is int:
            return float(value)
        return value

    def valid(self, value: Any) -> bool:
        """True when ``value`` is acceptable for this setting."""
        if type(value) is not self.type:
            return False
        if self.type is str:  # for a string, maximum is its longest length
            if self.maximum is not None and len(value) > self.maximum:
                return False
        elif self.type in (int, float):
            if self.minimum is not None and value < self.minimum:
                return False
            if self.maximum is not None and value > self.maximum:
                return False
        return not self.choices or value in self.choices


@dataclass(frozen=True)
class SettingsWarning:
    """Something about the settings file the user should hear about at start."""

    message: str
    details: str = ""


def _v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    """v1 kept every value in one flat ``values`` map; v2 groups them by section.

    ``{"schema": 1, "values": {"load.n_ctx": 8192}}`` becomes
    ``{"schema": 2, "load": {"n_ctx": 8192}}``, which reads better when edited by hand.
    """
    out: dict[str, Any] = {"schema": 2}
    values = data.get("values", {})
    for name, value in values.items() if isinstance(values, dict) else ():
        section, _, key = str(name).partition(".")
        if key and section != "schema":
            out.setdefault(section, {})[key] = value
    return out


#: ``MIGRATIONS[n]`` turns a schema-``n`` file (parsed JSON) into a schema ``n + 1`` one.
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: _v1_to_v2}


_LOAD = LoadSettings()
_SAMPLING = SamplingSettings()

SETTINGS: dict[str, Setting] = {
    s.name: s
    for s in (
        Setting(
            "load.n_ctx",
            int,
            _LOAD.n_ctx,
            128,
            1_048_576,
            label="Context length",
            tooltip="Tokens the model can see at once. More context needs more memory.",
        ),
        Setting(
            "load.n_threads",
            int,
            _LOAD.n_threads,
            0,
            512,
            label="CPU threads",
            tooltip="0 uses one thread per physical core.",
        ),
        Setting(
            "load.n_gpu_layers",
            int,
            _LOAD.n_gpu_layers,
            AUTO_GPU_LAYERS,
            1000,
            label="GPU layers",
            tooltip="Layers offloaded to the GPU. Auto offloads as many as fit in the free "
            "GPU memory (from the memory estimate); -1 offloads all, 0 runs on the CPU.",
            special_value="Auto",
        ),
        Setting(
            "load.kv_type",
            str,
            _LOAD.kv_type,
            choices=("f16", "q8_0", "q4_0"),
            label="KV cache type",
            tooltip="q8_0 halves the KV cache memory, q4_0 quarters it (slight quality cost); "
            "both need flash attention, which is then turned on.",
        ),
        Setting(
            "load.flash_attn",
            bool,
            _LOAD.flash_attn,
            label="Flash attention",
            tooltip="Faster, leaner attention; required for a quantized KV cache.",
        ),
        Setting(
            "sampling.temperature",
            float,
            _SAMPLING.temperature,
            0.0,
            5.0,
            label="Temperature",
            tooltip="Higher is more varied; 0 always picks the likeliest.",
        ),
        Setting(
            "sampling.top_p",
            float,
            _SAMPLING.top_p,
            0.0,
            1.0,
            label="Top-p",
            tooltip="Sample only from the smallest set of tokens covering this probability.",
        ),
        Setting(
            "sampling.top_k",
            int,
            _SAMPLING.top_k,
            0,
            100_000,
            label="Top-k",
            tooltip="Sample only from the k likeliest tokens (0 = no limit).",
        ),
        Setting(
            "sampling.min_p",
            float,
            _SAMPLING.min_p,
            0.0,
            1.0,
            label="Min-p",
            tooltip="Drop tokens less likely than this fraction of the likeliest one.",
        ),
        Setting(
            "sampling.repeat_penalty",
            float,
            _SAMPLING.repeat_penalty,
            0.5,
            3.0,
            label="Repeat penalty",
            tooltip="Above 1 discourages repeating recent tokens.",
        ),
        Setting(
            "sampling.seed",
            int,
            _SAMPLING.seed,
            -1,
            2**31 - 1,
            label="Seed",
            tooltip="-1 picks a new random seed per reply; a fixed seed repeats replies.",
        ),
        Setting(
            "sampling.max_tokens",
            int,
            _SAMPLING.max_tokens,
            1,
            1_048_576,
            label="Max tokens",
            tooltip="Longest reply, in tokens.",
        ),
        Setting(
            "sampling.thinking",
            bool,
            _SAMPLING.thinking,
            label="Thinking",
            tooltip="Let a reasoning model think before it answers. Off asks models whose "
            "template can answer at once (Qwen3 and others) to skip it; Save for this model "
            "keeps the choice with the model.",
        ),
        Setting("chat.system_prompt", str, "", maximum=100_000, label="System prompt"),
        Setting(
            "import.mode",
            str,
            "ask",
            choices=IMPORT_MODES,
            label="When adding files",
            tooltip="Files used in place stay yours and are never modified; copied or moved "
            "files go into QuantDesk's models folder.",
            choice_labels=(
                "Ask each time",
                "Copy them into QuantDesk's folder",
                "Move them into QuantDesk's folder",
                "Use them where they are",
            ),
        ),
        Setting(
            "downloads.parallel",
            int,
            1,
            1,
            4,
            label="Parallel downloads",
            tooltip="How many downloads run at the same time.",
        ),
        Setting(
            "server.allowed_origins", str, "", maximum=2_000,
            label="Web pages allowed to call the server",
            tooltip="Origins (scheme://host:port) of web pages that may use the local API, "
            "separated by commas; * lets every page in. Empty: no web page can (programs "
            "such as the OpenAI client always can).",
        ),  # fmt: skip
        Setting("library.last_model", str, ""),
        # Edited in the library panel (Add folder… / Folders), not in Preferences: no label.
        Setting("library.watched_folders", list, []),  # folders scanned for .gguf models
        Setting("library.hidden", list, []),  # real paths of found models the user removed
        Setting("cluster.workers", list, []),  # llama.cpp RPC workers, "host:port" (Cluster page)
        Setting("window.geometry", str, ""),
        Setting("window.state", str, ""),
        Setting("window.splitter", str, ""),
        # "": not decided yet (a first start on a narrow screen hides the panel)
        Setting("window.settings_panel", str, "", choices=("", "shown", "hidden")),
        Setting(
            "appearance.theme",
            str,
            "system",
            choices=THEMES,
            label="Theme",
            tooltip="Follow the system's light or dark mode, or always use one.",
            choice_labels=("Follow the system", "Light", "Dark"),
        ),
    )
}


#: The settings a preset (or a model's saved defaults) holds: how to load and sample, and
#: the system prompt.
PRESET_KEYS: tuple[str, ...] = tuple(
    name
    for name, setting in SETTINGS.items()
    if setting.section in ("load", "sampling") or name == "chat.system_prompt"
)


def preset_summary(values: dict[str, Any]) -> str:
    """A short line saying what a preset sets ("Context length 8192 · GPU layers 20 · …")."""
    parts = []
    for name in ("load.n_ctx", "load.n_gpu_layers", "sampling.temperature"):
        if name in values:
            parts.append(f"{SETTINGS[name].label} {values[name]}")
    if values.get("chat.system_prompt"):
        parts.append("system prompt")
    return " · ".join(parts)


class Settings:
    """The user's settings, loaded from and saved to one JSON file.

    Loading never raises: what could not be used is listed in :attr:`warnings`.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._values: dict[str, Any] = {}
        self._unknown: dict[str, Any] = {}  # names another version declared: kept as they were
        self._writable = True
        self.warnings: list[SettingsWarning] = []
        self._load()

    @property
    def path(self) -> Path:
        """The settings file."""
        return self._path

    # -- loading ---------------------------------------------------------------------------

    def _load(self) -> None:
        try:
            text = self._path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return
        except (OSError, UnicodeDecodeError) as exc:
            if isinstance(exc, UnicodeDecodeError):
                self._damaged("it is not text")
                return
            self._writable = False  # never overwrite a file we could not read
            self._warn(
                "The settings file could not be read: defaults are used and changes will not "
                "be saved this session.",
                f"{self._path}: {exc}",
            )
            return
        try:
            data = json.loads(text)
        except ValueError as exc:
            self._damaged(f"it is not valid JSON ({exc})")
            return
        version = data.get("schema", 1) if isinstance(data, dict) else None
        if type(version) is not int or version < 1:
            self._damaged("it does not look like a QuantDesk settings file")
            return
        rewrite = version != SCHEMA_VERSION
        if version > SCHEMA_VERSION:
            backup = self._move_aside("newer")
            self._warn(
                "Your settings were saved by a newer QuantDesk. This version kept the settings "
                "it understands; the newer file was kept as a copy.",
                f"Settings format {version}, this version reads format {SCHEMA_VERSION}.\n"
                + self._copy_note(backup),
            )
        elif version < SCHEMA_VERSION:
            # an older QuantDesk reading the new layout would see no settings: keep its file
            old_copy = self._path.with_name(f"{self._path.name}.v{version}")
            try:
                shutil.copy2(self._path, old_copy)
            except OSError:
                pass
            while version < SCHEMA_VERSION:
                data = MIGRATIONS[version](data)
                version += 1
        self._read_values(data)
        if rewrite:
            self.save()  # the file now has this version's layout (the other one is kept aside)

    def _read_values(self, data: dict[str, Any]) -> None:
        rejected: list[str] = []
        for section, entries in data.items():
            if section == "schema" or not isinstance(entries, dict):
                continue
            for key, value in entries.items():
                name = f"{section}.{key}"
                setting = SETTINGS.get(name)
                if setting is None:
                    self._unknown[name] = value
                    continue
                value = setting.coerce(value)
                if setting.valid(value):
                    self._values[name] = value
                else:
                    shown = repr(value)
                    shown = shown if len(shown) <= 40 else shown[:37] + "..."
                    rejected.append(f"{setting.label or name} ({shown})")
        if rejected:
            self._warn(
                f"{len(rejected)} setting(s) had values QuantDesk cannot use and are back to "
                f"their defaults: {', '.join(rejected)}.",
                f"File: {self._path}",
            )

    def _damaged(self, why: str) -> None:
        backup = self._move_aside("corrupt")
        self._warn(
            "The settings file was damaged, so QuantDesk started with default settings. "
            "The damaged file was kept as a copy.",
            f"{self._path}: {why}.\n" + self._copy_note(backup),
        )

    @staticmethod
    def _copy_note(backup: Path | None) -> str:
        if backup is not None:
            return f"Copy: {backup}"
        return "It could not be moved aside, so it was left as it is; changes are not saved."

    def _move_aside(self, kind: str) -> Path | None:
        """Rename the file to ``settings.json.<kind>-<timestamp>``; None when that fails."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        target = self._path.with_name(f"{self._path.name}.{kind}-{stamp}")
        n = 1
        while target.exists():
            n += 1
            target = self._path.with_name(f"{self._path.name}.{kind}-{stamp}-{n}")
        try:
            os.replace(self._path, target)
        except OSError:
            self._writable = False  # could not keep a copy: leave the original untouched
            return None
        return target

    def _warn(self, message: str, details: str = "") -> None:
        self.warnings.append(SettingsWarning(message, details))

    # -- values ----------------------------------------------------------------------------

    def get(self, name: str) -> Any:
        """The value of a declared setting."""
        return self._values.get(name, SETTINGS[name].default)

    def values(self) -> dict[str, Any]:
        """Every declared setting's current value."""
        return {name: self.get(name) for name in SETTINGS}

    def set(self, name: str, value: Any) -> None:
        """Change a declared setting (raises ValueError for an invalid value) and save."""
        self.update({name: value})

    def update(self, changes: dict[str, Any]) -> None:
        """Change several settings at once and save once; nothing changes if one is invalid."""
        checked: dict[str, Any] = {}
        for name, value in changes.items():
            setting = SETTINGS[name]
            value = setting.coerce(value)
            if not setting.valid(value):
                raise ValueError(f"{value!r} is not a valid value for {setting.label or name}")
            checked[name] = value
        self._values.update(checked)
        self.save()

    def preset_values(self) -> dict[str, Any]:
        """The current values of the settings a preset holds (:data:`PRESET_KEYS`)."""
        return {name: self.get(name) for name in PRESET_KEYS}

    @staticmethod
    def check_preset(values: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
        """A preset's values (saved once, maybe by another version) that are valid now.

        Returns (usable values, readable names of the skipped ones); only
        :data:`PRESET_KEYS` are taken, so a stale preset never blocks a load.
        """
        accepted: dict[str, Any] = {}
        skipped: list[str] = []
        for name, value in values.items():
            setting = SETTINGS.get(name)
            if setting is None or name not in PRESET_KEYS:
                continue
            value = setting.coerce(value)
            if setting.valid(value):
                accepted[name] = value
            else:
                skipped.append(f"{setting.label or name} ({value!r})")
        return accepted, skipped

    def reset(self, prefix: str) -> None:
        """Return every setting whose name starts with ``prefix`` to its default."""
        for name in [n for n in self._values if n.startswith(prefix)]:
            del self._values[name]
        self.save()

    def save(self) -> None:
        """Write the file atomically (best effort: a read-only disk only loses preferences)."""
        if not self._writable:
            return
        data: dict[str, Any] = {"schema": SCHEMA_VERSION}
        for name, value in [*self._values.items(), *self._unknown.items()]:
            section, _, key = name.partition(".")
            data.setdefault(section, {})[key] = value
        tmp = self._path.with_name(f"{self._path.name}.tmp")
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(json.dumps(data, indent=2))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self._path)
        except OSError:
            try:
                tmp.unlink(missing_ok=True)
            except OSError:
                pass

    def load_settings(self) -> LoadSettings:
        """The model-load settings as an engine object."""
        kv_type = self.get("load.kv_type")
        return LoadSettings(
            n_ctx=self.get("load.n_ctx"),
            n_threads=self.get("load.n_threads"),
            n_gpu_layers=self.get("load.n_gpu_layers"),
            kv_type=kv_type,
            # llama.cpp refuses a quantized KV cache without flash attention
            flash_attn=self.get("load.flash_attn") or kv_type != "f16",
        )

    def sampling_settings(self) -> SamplingSettings:
        """The sampling settings as an engine object."""
        return SamplingSettings(
            temperature=self.get("sampling.temperature"),
            top_p=self.get("sampling.top_p"),
            top_k=self.get("sampling.top_k"),
            min_p=self.get("sampling.min_p"),
            repeat_penalty=self.get("sampling.repeat_penalty"),
            seed=self.get("sampling.seed"),
            max_tokens=self.get("sampling.max_tokens"),
            thinking=self.get("sampling.thinking"),
        )
