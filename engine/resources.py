"""Where the app's resources/ folder is: in a PyInstaller bundle, beside the source tree, or
beside an installed package."""

from __future__ import annotations

import sys
from pathlib import Path


def resource_dirs() -> list[Path]:
    """Candidate resources/ folders, most specific first (existing or not)."""
    dirs = []
    if bundle := getattr(sys, "_MEIPASS", None):  # a PyInstaller bundle unpacks data here
        dirs.append(Path(bundle) / "resources")
    # source tree: engine/ and resources/ are siblings
    dirs.append(Path(__file__).resolve().parents[1] / "resources")
    try:
        import quantdesk  # installed: the package may carry resources/ (an editable install
        # maps quantdesk to app/, whose parent holds resources/)

        package = Path(quantdesk.__file__).resolve().parent
        dirs += [package / "resources", package.parent / "resources"]
    except (ImportError, AttributeError, TypeError):  # pragma: no cover - odd installs
        pass
    return list(dict.fromkeys(dirs))


def resource(name: str) -> Path:
    """The path of ``resources/<name>`` (the first folder that has it; else the first one)."""
    dirs = resource_dirs()
    return next((d / name for d in dirs if (d / name).exists()), dirs[0] / name)
