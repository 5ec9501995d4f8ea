"""Stand-ins for vendor tools: real executables put first on PATH, run as the probe runs AMD's.

Their JSON follows the tools' own output: rocm-smi's ``--json`` keys ("card0",
"VRAM Total Memory (B)", "VRAM Total Used Memory (B)", "Card Series", "system"/"Driver
version"; values are strings, sometimes after warning lines), amd-smi's ``metric --mem-usage
--json`` list ({"gpu": 0, "mem_usage": {"total_vram": {"value": .., "unit": "MB"}, ...}}) and
``static --asic --json`` ({"gpu": 0, "asic": {"market_name": ..}}).
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import llama_cpp
import pytest

ROCM_JSON = (
    '{"card0": {"Card Series": "Radeon RX 7900 XTX", "Card SKU": "N/A",'
    ' "VRAM Total Memory (B)": "25753026560", "VRAM Total Used Memory (B)": "1073741824"},'
    ' "system": {"Driver version": "6.8.5"}}'
)
GPU_LIBS = ("cuda", "hip", "metal", "vulkan", "sycl", "opencl", "musa")
needs_posix = pytest.mark.skipif(sys.platform == "win32", reason="fake tools are sh scripts")


def fake_tool(folder: Path, name: str, body: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An executable shell script named ``name`` running ``body``, first on PATH."""
    folder.mkdir(exist_ok=True)
    script = folder / name
    script.write_text(f"#!/bin/sh\n{body}\n", encoding="utf-8")
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ.get('PATH', '')}")
    return script


def gpu_build() -> bool:
    """Whether the installed llama.cpp ships a GPU backend library (then CPU-only tests skip)."""
    lib = Path(llama_cpp.__file__).parent / "lib"
    return any(part in p.name for p in lib.iterdir() for part in GPU_LIBS)
