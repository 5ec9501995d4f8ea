"""``quantdesk integrate``: desktop entry, icon, the application/x-gguf type and the default
association, written into a temporary home and removed again."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from quantdesk.cli._desktop_integration import DESKTOP_ID, MIME_TYPE, install, uninstall


def _env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    return {**os.environ, "HOME": str(home), "XDG_DATA_HOME": str(home / ".local" / "share"),
            "XDG_CONFIG_HOME": str(home / ".config")}  # fmt: skip


def test_install_then_uninstall_for_this_user(tmp_path: Path) -> None:
    env = _env(tmp_path)
    data = Path(env["XDG_DATA_HOME"])
    report = install(env, exec_command=f"{sys.executable} -m quantdesk")
    desktop = data / "applications" / DESKTOP_ID
    mime = data / "mime" / "packages" / "quantdesk-gguf.xml"
    icon = data / "icons" / "hicolor" / "256x256" / "apps" / "quantdesk.png"
    assert desktop in report.files and mime in report.files and icon.is_file()
    text = desktop.read_text()
    assert f"Exec={sys.executable} -m quantdesk %F" in text and f"MimeType={MIME_TYPE};" in text
    assert '<match type="string" value="GGUF" offset="0"/>' in mime.read_text()
    mimeapps = Path(env["XDG_CONFIG_HOME"]) / "mimeapps.list"
    assert f"{MIME_TYPE}={DESKTOP_ID}" in mimeapps.read_text()
    if shutil.which("xdg-mime"):
        asked = subprocess.run(["xdg-mime", "query", "default", MIME_TYPE], env=env,
                               capture_output=True, text=True)  # fmt: skip
        assert asked.stdout.strip() == DESKTOP_ID
    if shutil.which("update-mime-database"):
        assert (data / "mime" / "application" / "x-gguf.xml").is_file()  # compiled type

    removed = uninstall(env)
    assert desktop in removed.files and not desktop.exists() and not icon.exists()
    assert MIME_TYPE not in mimeapps.read_text()
    install(env)  # a second install after an uninstall works the same
    assert desktop.is_file()


def test_the_desktop_entry_is_valid() -> None:
    if shutil.which("desktop-file-validate") is None:
        pytest.skip("desktop-file-validate (desktop-file-utils) is not installed")
    from quantdesk.cli._desktop_integration import RESOURCES

    entry = (RESOURCES / DESKTOP_ID).read_text().replace("@EXEC@", "/usr/bin/quantdesk")
    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"qd-{os.getpid()}-{DESKTOP_ID}"
    path.write_text(entry)
    try:
        done = subprocess.run(["desktop-file-validate", str(path)], capture_output=True, text=True)
    finally:
        path.unlink()
    assert done.returncode == 0 and done.stdout.strip() == "", done.stdout  # no error, no hint


def test_the_cli_installs(tmp_path: Path) -> None:
    env = _env(tmp_path)
    done = subprocess.run([sys.executable, "-m", "quantdesk", "integrate", "--install"], env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "now opens it in QuantDesk" in done.stdout
    assert (Path(env["XDG_DATA_HOME"]) / "applications" / DESKTOP_ID).is_file()
