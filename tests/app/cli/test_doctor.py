"""``quantdesk doctor``: the environment for a bug report, never a secret."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from quantdesk.config.paths import resolve_paths
from quantdesk.engine.chat.conversations import SCHEMA_VERSION


def _doctor(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "quantdesk", "doctor", *args], text=True,
                          capture_output=True, timeout=120, env={**os.environ, **(env or {})})


def test_doctor_reports_versions_build_folders_and_files(data_dir: Path) -> None:
    paths = resolve_paths().ensure()
    paths.settings_file.write_text('{"schema": 2}')
    from quantdesk.engine.chat.conversations import ConversationStore

    ConversationStore(paths.chats_db).close()
    done = _doctor("--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["packages"]["llama-cpp-python"] != "not installed"
    assert report["packages"]["PySide6"] != "not installed"
    assert report["hardware"]["build"]["backends"]
    data = next(f for f in report["folders"] if f["name"] == "data")
    assert data["path"] == str(paths.data_dir) and data["exists"] and data["free_bytes"] > 0
    chats = next(f for f in report["files"] if f["name"] == "chats")
    assert chats["exists"] and chats["schema_version"] == SCHEMA_VERSION
    text = _doctor().stdout
    assert "llama.cpp build" in text and str(paths.chats_db) in text
    assert f"schema {SCHEMA_VERSION}" in text


def test_the_hugging_face_token_is_never_shown(data_dir: Path) -> None:
    secret = "hf_thisisnotarealtokenbutitissecret"
    for args in ((), ("--json",)):
        done = _doctor(*args, env={"HF_TOKEN": secret})
        assert done.returncode == 0 and secret not in done.stdout + done.stderr
        assert "configured" in done.stdout
