"""The ``.part`` files QuantDesk's own jobs write (quantize, importance matrix), and the ones a
``kill -9`` left behind.

A job registers its part file in the journal folder while it writes it: one small marker file
per part, naming the part and the process (its pid and start time, so a reused pid is not taken
for the job). :meth:`PartJournal.clean_stale` - run at the next start of the app or of
``quantdesk quantize`` - deletes the parts whose process is gone and forgets them. Download
parts are not here: they are kept on purpose, to resume.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil


def _started(pid: int) -> float | None:
    try:
        return psutil.Process(pid).create_time()
    except (psutil.Error, OSError):
        return None


@dataclass(frozen=True)
class PartJournal:
    """Markers of the parts being written now, in ``folder``."""

    folder: Path

    @contextlib.contextmanager
    def track(self, part: Path) -> Iterator[None]:
        """Register ``part`` as this process's while the block runs (the job deletes or renames
        the part itself; a kill leaves the marker, and the next start cleans up)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        marker = self.folder / f"{os.getpid()}-{uuid.uuid4().hex[:8]}.json"
        record = {"part": str(Path(part).absolute()), "pid": os.getpid(),
                  "started": _started(os.getpid())}  # fmt: skip
        marker.write_text(json.dumps(record), encoding="utf-8")
        try:
            yield
        finally:
            marker.unlink(missing_ok=True)

    def clean_stale(self) -> list[Path]:
        """Delete the parts of jobs whose process is gone; returns the parts removed."""
        removed: list[Path] = []
        for marker in sorted(self.folder.glob("*.json")) if self.folder.is_dir() else []:
            try:
                record = json.loads(marker.read_text(encoding="utf-8"))
                part, pid, started = Path(record["part"]), int(record["pid"]), record["started"]
            except (OSError, ValueError, KeyError, TypeError):
                marker.unlink(missing_ok=True)  # unreadable: nothing can be done with it
                continue
            alive = _started(pid)
            if alive is not None and (started is None or abs(alive - float(started)) < 1.0):
                continue  # its job still runs (the app and the CLI may both be at work)
            if part.name.endswith(".part") and part.is_file():
                try:
                    part.unlink()
                    removed.append(part)
                except OSError:
                    continue  # try again next time
            marker.unlink(missing_ok=True)
        return removed
