"""The CLI's way to open a store: the GUI's rules (engine.sqlite_files.open_store), with what
happened said on one line of stderr, so listing and exporting work on a busy, read-only or
newer file without changing it."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from quantdesk.engine.sqlite_files import open_store

T = TypeVar("T")


def open_for_reading(open_at: Callable[[Path | str], T], path: Path, *, what: str) -> T:
    """The store at ``path`` (a copy when it cannot be written now); a note goes to stderr."""
    store, note = open_store(open_at, path, what=what, not_kept="")
    if note:
        print(f"quantdesk: {note}", file=sys.stderr)
    return store
