"""What the About dialog says: versions, the llama.cpp build and its backends, and the licences
of the components the app ships with (read from the installed packages' own metadata)."""

from __future__ import annotations

import importlib.metadata
import platform
import sys
from dataclasses import dataclass

from quantdesk.engine.diagnostics.doctor import installed_metadata

#: Components QuantDesk is built on: name shown, distribution(s), what it does here.
COMPONENTS = (
    ("llama.cpp / llama-cpp-python", ("llama_cpp_python",), "runs the models"),
    ("Qt / PySide6", ("PySide6", "PySide6_Essentials"), "the window"),
    ("huggingface_hub", ("huggingface_hub",), "talks to the Hugging Face Hub"),
    ("Jinja2", ("jinja2",), "chat templates (sandboxed)"),
    ("NumPy", ("numpy",), "sampling arithmetic"),
    ("psutil", ("psutil",), "memory and CPU probes"),
    ("platformdirs", ("platformdirs",), "where data is kept"),
)


@dataclass(frozen=True)
class Component:
    """One bundled component: its version and licence as its package declares them."""

    name: str
    version: str
    licence: str
    role: str


def _licence(meta: importlib.metadata.PackageMetadata) -> str:
    for key in ("License-Expression", "License"):
        value = (meta.get(key) or "").strip()
        if value and "\n" not in value and len(value) < 80:
            return value
    classifiers = [c.rsplit(" :: ", 1)[-1] for c in meta.get_all("Classifier") or []
                   if c.startswith("License ::")]  # fmt: skip
    return ", ".join(classifiers) or "see its package"


def components() -> list[Component]:
    """The bundled components found in this installation."""
    out = []
    for name, distributions, role in COMPONENTS:
        meta = installed_metadata(distributions)
        if meta is not None:
            out.append(Component(name, meta.get("Version", "?"), _licence(meta), role))
    return out


def llama_build_lines() -> list[str]:
    """llama.cpp's build: backends and devices, GPU offload, the CPU features it was built for."""
    from quantdesk.engine.hardware.llama_build import llama_cpp_source, probe_llama_build

    info, _notes = probe_llama_build()
    return [
        f"Built from: {llama_cpp_source()}",
        f"Backends: {', '.join(info.backends) or 'none'}",
        f"Devices: {', '.join(f'{d.name}: {d.description}' for d in info.devices) or 'none'}",
        f"GPU offload: {'yes' if info.gpu_offload else 'no (CPU-only build)'}",
        f"CPU features in the build: {' '.join(info.cpu_features) or 'unknown'}",
    ]


def environment_line() -> str:
    """Python and platform, one line."""
    return f"Python {sys.version.split()[0]} on {platform.system()} {platform.machine()}"
