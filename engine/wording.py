"""Small helpers for the words shown to people."""

from __future__ import annotations


def counted(n: int, noun: str, plural: str = "") -> str:
    """``n`` and the noun in the right number: "1 message", "2 messages", "1,024 files"."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"


def eta_text(seconds: float | None) -> str:
    """Seconds as "1 h 05 min", "3 min 20 s", "12 s"; "–" when unknown."""
    if seconds is None or seconds < 0:
        return "–"
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
    if seconds >= 60:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds} s"
