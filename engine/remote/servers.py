"""The remote servers the user added (URL and API key), kept in a small JSON file.

The file holds API keys, so it is written readable by its owner only (mode 0600) and replaced
atomically; a damaged file is moved aside rather than lost or trusted.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from quantdesk.engine.remote.models import Endpoint, normalized_url

FORMAT_VERSION = 1


class RemoteServers:
    """The list of remote servers, in the order added; every change is saved at once."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.recovered_from: Path | None = None  # where a damaged file was moved aside
        self._servers: list[Endpoint] = self._read()

    def _read(self) -> list[Endpoint]:
        if not self.path.is_file():
            return []
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if not isinstance(data, dict) or data.get("version") != FORMAT_VERSION:
                raise ValueError("unknown format")
            return [Endpoint(str(s["url"]), s.get("api_key") or None) for s in data["servers"]]
        except (OSError, ValueError, KeyError, TypeError):
            aside = self.path.with_name(self.path.name + ".damaged")
            os.replace(self.path, aside)
            self.recovered_from = aside
            return []

    @property
    def servers(self) -> list[Endpoint]:
        """The servers, in the order added."""
        return list(self._servers)

    def add(self, url: str, api_key: str | None) -> Endpoint:
        """Add (or update the key of) the server at ``url``; returns its endpoint."""
        endpoint = Endpoint(normalized_url(url), api_key or None)
        self._servers = [s for s in self._servers if s.url != endpoint.url] + [endpoint]
        self._write()
        return endpoint

    def remove(self, url: str) -> None:
        """Forget the server at ``url`` (nothing happens when it is not there)."""
        self._servers = [s for s in self._servers if s.url != url]
        self._write()

    def find(self, url: str) -> Endpoint | None:
        """The server at ``url``, with its key."""
        return next((s for s in self._servers if s.url == url), None)

    def _write(self) -> None:
        data = {
            "version": FORMAT_VERSION,
            "servers": [{"url": s.url, "api_key": s.api_key or ""} for s in self._servers],
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=self.path.name, dir=self.path.parent)  # mode 0600
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(data, out, indent=1)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
