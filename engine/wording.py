"""Small helpers for the words shown to people."""

from __future__ import annotations


def counted(n: int, noun: str, plural: str = "") -> str:
    """``n`` and the noun in the right number: "1 message", "2 messages", "1,024 files"."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"
