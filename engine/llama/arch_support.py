"""Does the installed llama.cpp know a model architecture? Asked of llama.cpp itself.

A file whose ``general.architecture`` llama.cpp does not know fails to load
with "unknown model architecture". We write a minimal GGUF per architecture
name (just that key), let llama.cpp try to load its vocabulary in a child
process (it may abort on odd inputs), and read which names it rejected. The
answers are cached for the process.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import tempfile
from collections.abc import Iterable

from quantdesk.engine.child_process import module_command

_known: dict[str, bool] = {}
_MARK = "QUANTDESK-ARCH "


def _minimal_gguf(arch: str) -> bytes:
    def text(value: str) -> bytes:
        raw = value.encode("utf-8")
        return struct.pack("<Q", len(raw)) + raw

    string_type = 8
    return (
        b"GGUF"
        + struct.pack("<IQQ", 3, 0, 1)
        + text("general.architecture")
        + struct.pack("<I", string_type)
        + text(arch)
    )


def architectures_supported(
    names: Iterable[str], timeout_s: float = 60.0
) -> dict[str, bool | None]:
    """For each architecture name: True/False, or None when llama.cpp could not be asked."""
    wanted = sorted({n for n in names if n} - set(_known))
    if wanted:
        cmd = module_command("quantdesk.engine.llama.arch_support", *wanted)
        env = {**os.environ, "GGML_NO_BACKTRACE": "1"}
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, env=env)
        except (OSError, subprocess.TimeoutExpired):
            done = None
        for line in (done.stdout if done else "").splitlines():
            if line.startswith(_MARK):
                _known.update(json.loads(line[len(_MARK) :]))
    return {n: _known.get(n) for n in names}


def _child(names: list[str]) -> None:
    import ctypes

    import llama_cpp

    messages: list[str] = []

    @llama_cpp.llama_log_callback
    def collect(_level: int, text: bytes, _user: ctypes.c_void_p) -> None:
        messages.append(text.decode("utf-8", "replace"))

    llama_cpp.llama_log_set(collect, ctypes.c_void_p(0))
    params = llama_cpp.llama_model_default_params()
    params.vocab_only = True
    answers = {}
    with tempfile.TemporaryDirectory() as folder:
        for name in names:
            path = os.path.join(folder, "arch.gguf")
            with open(path, "wb") as out:
                out.write(_minimal_gguf(name))
            messages.clear()
            model = llama_cpp.llama_model_load_from_file(path.encode(), params)
            if model:
                llama_cpp.llama_model_free(model)
            answers[name] = not any("unknown model architecture" in m for m in messages)
            print(_MARK + json.dumps(answers), flush=True)


if __name__ == "__main__":
    _child(sys.argv[1:])
