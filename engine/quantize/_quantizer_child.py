"""Child process: run llama.cpp's ``llama_model_quantize`` on one job and report as it goes.

Usage: ``python -m quantdesk.engine.quantize._quantizer_child JOB_JSON``. Events (see
``child_process``):
``{"type": "tensor", "index", "count", "name", "source_type", "target_type"}`` once per tensor,
``{"type": "requires_imatrix"}`` from a dry run, ``{"type": "error_line", "text"}`` and finally
``{"type": "result", "ok", "message"}``. Parameters are set exactly as ``llama-quantize`` sets
them, so the output is the same file that tool writes.
"""

from __future__ import annotations

import ctypes
import importlib
import importlib.util
import re
import sys
import types
from typing import Any

from quantdesk.engine.child_process import emit, read_job

_TENSOR_LINE = re.compile(
    r"^\[\s*(?P<index>\d+)/\s*(?P<count>\d+)\]\s+(?P<name>\S+)\s+-\s+\[[^\]]*\],\s+"
    r"type =\s+(?P<src>\S+?),"
)
_CONVERTING = re.compile(r"converting to (\S+) \.\.")
_DRY_TARGET = re.compile(r"->\s+[\d.]+ MiB \((\S+)\)\s*$")
_LOG_ERROR, _LOG_WARN, _LOG_CONT = 4, 3, 5

# llama.cpp's keys, as tools/quantize/quantize.cpp writes them
_KV_IMATRIX_FILE = b"quantize.imatrix.file"
_KV_IMATRIX_DATASET = b"quantize.imatrix.dataset"
_KV_IMATRIX_ENTRIES = b"quantize.imatrix.entries_count"
_KV_IMATRIX_CHUNKS = b"quantize.imatrix.chunks_count"


class _LogParser:
    """Joins llama.cpp's log fragments into lines and turns the interesting ones into events."""

    def __init__(self) -> None:
        self._buffer = ""
        self._level = 2

    def feed(self, level: int, text: str) -> None:
        if level == _LOG_ERROR and self._buffer.strip():
            # an error cuts into a tensor's half-written line: give the error its own line
            self._line(self._buffer)
            self._buffer = ""
        if level != _LOG_CONT:
            self._level = level
        self._buffer += text
        while "\n" in self._buffer:
            line, self._buffer = self._buffer.split("\n", 1)
            self._line(line)

    def _line(self, line: str) -> None:
        stripped = line.strip()
        if not stripped:
            return
        match = _TENSOR_LINE.match(stripped)
        if match:
            target = _CONVERTING.search(stripped) or _DRY_TARGET.search(stripped)
            emit(
                {
                    "type": "tensor",
                    "index": int(match["index"]),
                    "count": int(match["count"]),
                    "name": match["name"],
                    "source_type": match["src"],
                    "target_type": target.group(1) if target else match["src"],
                }
            )
            return
        if "will require an imatrix" in stripped:
            emit({"type": "requires_imatrix"})
        if self._level == _LOG_ERROR and not set(stripped) <= {"="}:
            emit({"type": "error_line", "text": stripped})


def _imatrix_array(job: dict[str, Any], llama_cpp: Any, keep: list[Any]) -> tuple[Any, Any]:
    """The imatrix array and the kv overrides llama-quantize adds with it (or NULLs)."""
    from quantdesk.engine.quantize._imatrix import load_imatrix

    matrix = load_imatrix(job["imatrix"])
    entries = (llama_cpp.llama_model_imatrix_data * (len(matrix.values) + 1))()
    for i, (name, values) in enumerate(matrix.values.items()):
        name_b = name.encode()
        keep.extend([name_b, values])
        entries[i].name = name_b
        entries[i].data = values.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
        entries[i].size = values.size
    overrides: list[tuple[bytes, int, Any]] = [
        (_KV_IMATRIX_FILE, llama_cpp.LLAMA_KV_OVERRIDE_TYPE_STR, job["imatrix"].encode()[:127])
    ]
    if matrix.datasets:
        overrides.append(
            (_KV_IMATRIX_DATASET, llama_cpp.LLAMA_KV_OVERRIDE_TYPE_STR, matrix.datasets[0].encode())
        )
    overrides.append((_KV_IMATRIX_ENTRIES, llama_cpp.LLAMA_KV_OVERRIDE_TYPE_INT, len(matrix)))
    if matrix.chunk_count > 0:
        overrides.append(
            (_KV_IMATRIX_CHUNKS, llama_cpp.LLAMA_KV_OVERRIDE_TYPE_INT, matrix.chunk_count)
        )
    kvs = (llama_cpp.llama_model_kv_override * (len(overrides) + 1))()
    for i, (key, tag, value) in enumerate(overrides):
        kvs[i].key = key
        kvs[i].tag = tag
        if tag == llama_cpp.LLAMA_KV_OVERRIDE_TYPE_STR:
            kvs[i].value.val_str = value[:127]
        else:
            kvs[i].value.val_i64 = value
    keep.extend([entries, kvs])
    return entries, kvs


def _bindings() -> Any:
    """llama-cpp-python's C bindings alone, without running the package's ``__init__``.

    That ``__init__`` imports the high-level API (numpy, Jinja2, chat formats): about 80 ms
    of every quantization here; this child needs only the ctypes functions (30 ms).
    """
    if "llama_cpp" not in sys.modules:
        spec = importlib.util.find_spec("llama_cpp")
        if spec is not None and spec.submodule_search_locations:
            package = types.ModuleType("llama_cpp")
            package.__path__ = list(spec.submodule_search_locations)
            sys.modules["llama_cpp"] = package
    return importlib.import_module("llama_cpp.llama_cpp")


def run(job: dict[str, Any]) -> tuple[bool, str]:
    """Quantize (or dry-run) one job; returns (ok, message)."""
    llama_cpp = _bindings()

    parser = _LogParser()

    @llama_cpp.llama_log_callback
    def on_log(level: int, text: bytes, _user: ctypes.c_void_p) -> None:
        parser.feed(level, text.decode("utf-8", errors="replace"))

    llama_cpp.llama_log_set(on_log, ctypes.c_void_p(0))
    llama_cpp.llama_backend_init()
    params = llama_cpp.llama_model_quantize_default_params()
    params.nthread = int(job["threads"])
    params.ftype = int(job["ftype"])
    params.allow_requantize = bool(job["allow_requantize"])
    params.quantize_output_tensor = not job["leave_output_unquantized"]
    params.pure = bool(job["pure"])
    params.dry_run = bool(job["dry_run"])
    if job.get("output_tensor_type_id") is not None:
        params.output_tensor_type = int(job["output_tensor_type_id"])
    if job.get("token_embedding_type_id") is not None:
        params.token_embedding_type = int(job["token_embedding_type_id"])
    keep: list[Any] = []
    if job.get("imatrix"):
        entries, kvs = _imatrix_array(job, llama_cpp, keep)
        params.imatrix = ctypes.cast(entries, ctypes.POINTER(llama_cpp.llama_model_imatrix_data))
        params.kv_overrides = ctypes.cast(kvs, ctypes.POINTER(llama_cpp.llama_model_kv_override))
    rc = llama_cpp.llama_model_quantize(
        job["source"].encode(), job["output"].encode(), ctypes.byref(params)
    )
    parser.feed(2, "\n")
    return rc == 0, "" if rc == 0 else "llama.cpp could not quantize the model"


def main(argv: list[str]) -> int:
    """Entry point of the child process."""
    job = read_job()
    try:
        ok, message = run(job)
    except Exception as exc:  # reported to the parent as a failed result
        ok, message = False, str(exc)
    emit({"type": "result", "ok": ok, "message": message})
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
