"""Linux desktop integration for the current user: a menu entry, the icon, the ``.gguf`` file
type (``application/x-gguf``, recognised by name and by its ``GGUF`` magic) and QuantDesk as its
default application, so that a double-click on a model in a file manager opens it here.

Everything goes under ``$XDG_DATA_HOME`` (``~/.local/share``) and ``$XDG_CONFIG_HOME``
(``~/.config``); the freedesktop tools (``update-mime-database``, ``update-desktop-database``,
``xdg-mime``) are run when installed. ``uninstall`` removes exactly what ``install`` wrote.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from quantdesk.engine.resources import resource

RESOURCES = resource("icon.svg").parent
DESKTOP_ID = "quantdesk.desktop"
MIME_TYPE = "application/x-gguf"
MIME_PACKAGE = "quantdesk-gguf.xml"
ICON_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)


@dataclass
class IntegrationReport:
    """What install/uninstall did: files written or removed, tools run, tools missing."""

    files: list[Path] = field(default_factory=list)
    ran: list[str] = field(default_factory=list)
    missing_tools: list[str] = field(default_factory=list)


def _dirs(env: Mapping[str, str]) -> tuple[Path, Path]:
    home = Path(env.get("HOME", str(Path.home())))
    data = Path(env.get("XDG_DATA_HOME") or home / ".local" / "share")
    config = Path(env.get("XDG_CONFIG_HOME") or home / ".config")
    return data, config


def launcher() -> str:
    """The command that starts QuantDesk: the bundle's executable, or this environment's
    ``quantdesk`` script (or ``python -m quantdesk``)."""
    if getattr(sys, "frozen", False):
        return str(Path(sys.executable).resolve())
    script = Path(sys.executable).with_name("quantdesk")
    if script.is_file():
        return str(script)
    return f"{sys.executable} -m quantdesk"


def _targets(data: Path) -> dict[str, Path]:
    icons = data / "icons" / "hicolor"
    out = {
        "desktop": data / "applications" / DESKTOP_ID,
        "mime": data / "mime" / "packages" / MIME_PACKAGE,
        "svg": icons / "scalable" / "apps" / "quantdesk.svg",
    }
    for size in ICON_SIZES:
        out[f"png{size}"] = icons / f"{size}x{size}" / "apps" / "quantdesk.png"
    return out


def _run(report: IntegrationReport, env: Mapping[str, str], *cmd: str) -> None:
    if shutil.which(cmd[0], path=env.get("PATH")) is None:
        report.missing_tools.append(cmd[0])
        return
    subprocess.run(list(cmd), env=dict(env), check=False, capture_output=True, timeout=60)
    report.ran.append(" ".join(cmd))


def _set_default(config: Path, remove: bool) -> Path:
    """Add (or remove) ``application/x-gguf=quantdesk.desktop`` in mimeapps.list ourselves, as
    ``xdg-mime default`` does, so the association holds even without xdg-utils."""
    path = config / "mimeapps.list"
    lines = path.read_text(encoding="utf-8").splitlines() if path.is_file() else []
    lines = [ln for ln in lines if not ln.startswith(f"{MIME_TYPE}=")]
    if not remove:
        if "[Default Applications]" not in lines:
            lines += ["[Default Applications]"]
        at = lines.index("[Default Applications]") + 1
        lines.insert(at, f"{MIME_TYPE}={DESKTOP_ID}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def install(
    env: Mapping[str, str] | None = None, exec_command: str | None = None
) -> IntegrationReport:
    """Install the menu entry, icon, file type and default association for this user."""
    env = dict(os.environ if env is None else env)
    data, config = _dirs(env)
    report = IntegrationReport()
    targets = _targets(data)
    desktop = (RESOURCES / DESKTOP_ID).read_text(encoding="utf-8")
    contents: dict[str, bytes] = {
        "desktop": desktop.replace("@EXEC@", exec_command or launcher()).encode("utf-8"),
        "mime": (RESOURCES / MIME_PACKAGE).read_bytes(),
        "svg": (RESOURCES / "icon.svg").read_bytes(),
    }
    for size in ICON_SIZES:
        contents[f"png{size}"] = (RESOURCES / "icons" / f"quantdesk-{size}.png").read_bytes()
    for key, path in targets.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(contents[key])
        report.files.append(path)
    _run(report, env, "update-mime-database", str(data / "mime"))
    _run(report, env, "update-desktop-database", str(data / "applications"))
    _run(report, env, "gtk-update-icon-cache", "-f", "-t", str(data / "icons" / "hicolor"))
    report.files.append(_set_default(config, remove=False))
    _run(report, env, "xdg-mime", "default", DESKTOP_ID, MIME_TYPE)
    return report


def uninstall(env: Mapping[str, str] | None = None) -> IntegrationReport:
    """Remove what :func:`install` wrote (other applications' associations are kept)."""
    env = dict(os.environ if env is None else env)
    data, config = _dirs(env)
    report = IntegrationReport()
    for path in _targets(data).values():
        if path.exists():
            path.unlink()
            report.files.append(path)
    report.files.append(_set_default(config, remove=True))
    _run(report, env, "update-mime-database", str(data / "mime"))
    _run(report, env, "update-desktop-database", str(data / "applications"))
    return report
