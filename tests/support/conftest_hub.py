"""Pytest fixtures serving the fake hub's demo repositories (see tests/support/fake_hub.py).

``hub_root`` (the folder of repositories, built once), ``hub_server`` (a running
:class:`~tests.support.fake_hub.FakeHub` for the session) and ``fake_hub`` (that hub for one test:
faults and the request log cleared, repositories restored, ``HF_ENDPOINT`` pointing at it, no
token). Use them with ``pytest_plugins = ["tests.support.conftest_hub"]``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.fake_hub import FakeHub
from tests.support.hub_fixtures import build_demo_repos


@pytest.fixture(scope="session")
def hub_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo repositories, written once per test session."""
    return build_demo_repos(tmp_path_factory.mktemp("hub-repos"))


@pytest.fixture(scope="session")
def hub_server(hub_root: Path) -> Iterator[FakeHub]:
    """One fake hub serving the demo repositories for the whole session."""
    with FakeHub() as hub:
        hub.add_folder(hub_root)
        yield hub


@pytest.fixture
def fake_hub(
    hub_server: FakeHub, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[FakeHub]:
    """The session's fake hub with no faults and an empty log; HF_ENDPOINT points at it."""
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", hub_server.endpoint)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    repos, page_size = dict(hub_server.repos), hub_server.page_size
    hub_server.clear_faults()
    hub_server.reset_log()
    yield hub_server
    hub_server.clear_faults()
    hub_server.repos, hub_server.page_size = repos, page_size
