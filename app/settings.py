"""Settings declared once: name, type, default, validation; stored as versioned JSON.

Widgets never invent keys: they read and write :class:`Settings` through the
names declared in :data:`SETTINGS`. Unknown or invalid stored values fall back
to the default (a hand-edited file cannot break startup).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quantdesk.engine.params import LoadSettings, SamplingSettings

SCHEMA_VERSION = 1
IMPORT_MODES = ("ask", "copy", "reference")


@dataclass(frozen=True)
class Setting:
    """One declared setting: its type, default and the values it accepts."""

    name: str
    type: type
    default: Any
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    label: str = ""
    tooltip: str = ""

    def valid(self, value: Any) -> bool:
        """True when ``value`` is acceptable for this setting."""
        if type(value) is not self.type:
            return False
        if self.minimum is not None and value < self.minimum:
            return False
        if self.maximum is not None and value > self.maximum:
            return False
        if self.type is str and self.maximum is not None:
            return len(value) <= self.maximum
        return not self.choices or value in self.choices


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
            -1,
            1000,
            label="GPU layers",
            tooltip="Layers offloaded to the GPU; -1 offloads all, 0 runs on the CPU.",
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
        Setting("chat.system_prompt", str, "", maximum=100_000, label="System prompt"),
        Setting("import.mode", str, "ask", choices=IMPORT_MODES, label="When adding files"),
        Setting(
            "downloads.parallel",
            int,
            1,
            1,
            4,
            label="Parallel downloads",
            tooltip="How many downloads run at the same time.",
        ),
        Setting("library.last_model", str, ""),
        Setting("window.geometry", str, ""),
        Setting("window.state", str, ""),
        Setting("window.splitter", str, ""),
    )
}


class Settings:
    """The user's settings, loaded from and saved to one JSON file."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._values: dict[str, Any] = {}
        self._load()

    def _load(self) -> None:
        try:
            raw = json.loads(self._path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raw = {}
        values = raw.get("values", {}) if isinstance(raw, dict) else {}
        for name, value in values.items() if isinstance(values, dict) else ():
            setting = SETTINGS.get(name)
            if setting is None:
                continue
            if setting.type is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            if setting.valid(value):
                self._values[name] = value

    def get(self, name: str) -> Any:
        """The value of a declared setting."""
        return self._values.get(name, SETTINGS[name].default)

    def set(self, name: str, value: Any) -> None:
        """Change a declared setting (raises ValueError for an invalid value) and save."""
        setting = SETTINGS[name]
        if setting.type is float and isinstance(value, int):
            value = float(value)
        if not setting.valid(value):
            raise ValueError(f"{value!r} is not a valid value for {setting.label or name}")
        self._values[name] = value
        self.save()

    def reset(self, prefix: str) -> None:
        """Return every setting whose name starts with ``prefix`` to its default."""
        for name in [n for n in self._values if n.startswith(prefix)]:
            del self._values[name]
        self.save()

    def save(self) -> None:
        """Write the file atomically (best effort: a read-only disk only loses preferences)."""
        data = {"schema": SCHEMA_VERSION, "values": self._values}
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self._path.with_suffix(".tmp")
            tmp.write_text(json.dumps(data, indent=2), encoding="utf-8")
            os.replace(tmp, self._path)
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
        )
