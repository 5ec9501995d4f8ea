"""What tests share: fixtures, tiny models, the fake hub, fault tools. ``REPO`` is the project's
root folder."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
