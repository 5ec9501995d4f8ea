"""What a bug report needs to know about this installation: versions, llama.cpp build, machine,
folders with their free space, the app's files. Secrets are never included: for the Hugging
Face token only whether one is configured."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import shutil
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from quantdesk.engine.hardware.report import HardwareReport
from quantdesk.engine.run.generation import sampling_step
from quantdesk.engine.sqlite_files import peek_version

#: Packages by the name shown, with the distributions that may provide them (PySide6 comes as
#: PySide6_Essentials + PySide6_Addons when installed from its split wheels).
PACKAGES = {
    "PySide6": ("PySide6", "PySide6_Essentials"),
    "llama-cpp-python": ("llama_cpp_python",),
    **{name: (name,) for name in ("huggingface_hub", "numpy", "jinja2", "psutil", "platformdirs",
                                  "gguf")},  # fmt: skip
}
ENV_VARS = ("QUANTDESK_DATA_DIR", "QUANTDESK_CONVERT_PYTHON", "HF_ENDPOINT", "HF_HOME",
            "HF_HUB_CACHE", "HF_HUB_OFFLINE", "CMAKE_ARGS", "QT_QPA_PLATFORM")  # fmt: skip


def installed_metadata(distributions: Sequence[str]) -> importlib.metadata.PackageMetadata | None:
    """The metadata of the first of ``distributions`` that is installed (None: none is)."""
    for dist in distributions:
        try:
            return importlib.metadata.metadata(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def package_versions() -> dict[str, str]:
    """Installed versions of the packages QuantDesk runs on ("not installed" when absent)."""
    out = {}
    for name, distributions in PACKAGES.items():
        meta = installed_metadata(distributions)
        out[name] = meta.get("Version", "?") if meta is not None else "not installed"
    return out


def folder_report(name: str, path: Path) -> dict[str, Any]:
    """A folder: where, whether it exists, and the free space of its disk."""
    entry: dict[str, Any] = {"name": name, "path": str(path), "exists": path.is_dir()}
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        usage = shutil.disk_usage(probe)
        entry.update(free_bytes=usage.free, total_bytes=usage.total)
    except OSError as exc:
        entry["error"] = str(exc)
    return entry


def file_report(name: str, path: Path) -> dict[str, Any]:
    """One of the app's files: size, and the schema version of an SQLite one."""
    entry: dict[str, Any] = {"name": name, "path": str(path), "exists": path.is_file()}
    if entry["exists"]:
        entry["size_bytes"] = path.stat().st_size
        if path.suffix == ".sqlite3":
            try:
                entry["schema_version"] = peek_version(path)
            except Exception as exc:  # noqa: BLE001 - a damaged file is what a report is for
                entry["error"] = f"{type(exc).__name__}: {exc}"
    return entry


def hf_token_configured() -> bool:
    """Whether a Hugging Face token is set up (environment or huggingface_hub's token file),
    without ever reading it into the report."""
    if os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN"):
        return True
    try:
        from huggingface_hub import constants

        return Path(constants.HF_TOKEN_PATH).is_file()
    except Exception:  # noqa: BLE001 - huggingface_hub missing or changed: say no
        return False


def doctor_report(
    hardware: HardwareReport, folders: Mapping[str, Path], files: Mapping[str, Path]
) -> dict[str, Any]:
    """Everything :func:`format_doctor` prints, as plain data (also ``--json``)."""
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "executable": sys.executable,
        "packages": package_versions(),
        "sampling_step": sampling_step(),
        "hardware": hardware.to_dict(),
        "folders": [folder_report(name, path) for name, path in folders.items()],
        "files": [file_report(name, path) for name, path in files.items()],
        "environment": {name: os.environ[name] for name in ENV_VARS if name in os.environ},
        "hf_token": "configured" if hf_token_configured() else "not configured",
    }


def _gib(n: int) -> str:
    return f"{n / 2**30:.1f} GiB"


def format_doctor(report: dict[str, Any], version: str, hardware_text: str) -> str:
    """The report as text to paste into a bug report."""
    lines = [f"QuantDesk {version}", f"Python {report['python']} ({report['executable']})",
             f"Platform: {report['platform']}", "", "Packages:"]  # fmt: skip
    lines += [f"  {name}: {v}" for name, v in report["packages"].items()]
    lines.append(f"Sampling step: {report['sampling_step']}")
    lines += ["", hardware_text.rstrip(), "", "Folders:"]
    for f in report["folders"]:
        space = f", {_gib(f['free_bytes'])} free of {_gib(f['total_bytes'])}" if (
            "free_bytes" in f) else f", {f.get('error', '')}"  # fmt: skip
        lines.append(f"  {f['name']}: {f['path']}{'' if f['exists'] else ' (missing)'}{space}")
    lines += ["", "Files:"]
    for f in report["files"]:
        if not f["exists"]:
            lines.append(f"  {f['name']}: {f['path']} (not created yet)")
            continue
        extra = f", schema {f['schema_version']}" if "schema_version" in f else ""
        extra += f", {f['error']}" if "error" in f else ""
        lines.append(f"  {f['name']}: {f['path']} ({f['size_bytes']:,} bytes{extra})")
    env = report["environment"]
    shown = ", ".join(f"{k}={v}" for k, v in env.items()) or "nothing set"
    lines += ["", f"Environment: {shown}", f"Hugging Face token: {report['hf_token']}"]
    return "\n".join(lines)
