"""llama.cpp's own tools (llama-bench, llama-quantize, llama-perplexity), built once from the
same llama.cpp source and CMake flags as the installed llama-cpp-python, and running on its
libraries (libllama, libggml*: the app's own llama.cpp).

``scripts/build_llama_tools.sh`` does the building (minutes the first time, cached after);
this module runs it and names the binaries.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILD_SCRIPT = ROOT / "scripts" / "build_llama_tools.sh"


def tools_dir() -> Path:
    """The folder holding the built tools (built now when missing; build output on stderr)."""
    done = subprocess.run(["bash", str(BUILD_SCRIPT)], check=True, stdout=subprocess.PIPE,
                          text=True)  # fmt: skip
    return Path(done.stdout.strip().splitlines()[-1])


def tool(name: str) -> Path:
    """The path of one reference tool, e.g. ``tool("llama-bench")``."""
    return tools_dir() / name
