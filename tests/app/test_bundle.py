"""The PyInstaller one-folder bundle builds and passes its own self-test, started with an empty
environment (no Python on PATH, no virtual environment)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support import REPO

ROOT = REPO


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_bundle_builds_and_passes_its_self_test(tmp_path: Path) -> None:
    built = subprocess.run(["bash", str(ROOT / "packaging" / "build_bundle.sh")], cwd=ROOT,
                           capture_output=True, text=True, timeout=900)  # fmt: skip
    assert built.returncode == 0, built.stderr[-3000:]
    bundle = ROOT / "dist" / "quantdesk"
    print(built.stdout.strip())  # the bundle's path and size, for the log
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "QT_QPA_PLATFORM": "offscreen"}
    done = subprocess.run([str(bundle / "quantdesk"), "--self-test"], env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    assert "self-test: ok:" in done.stdout
    assert "sampling step C)" in done.stdout  # the compiled extension is in the bundle
