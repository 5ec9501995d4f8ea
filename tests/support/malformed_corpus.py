"""A corpus of malformed GGUF files: each kind of structural damage, files that parse but whose
metadata contradicts the tensors, files that make llama.cpp abort, an unknown architecture.

``REFUSED_AT_IMPORT`` kinds must be refused by the header check before llama.cpp sees them;
the others reach a load (always first in a child process) and must fail there with a message.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path

from tests.support.tiny_models import (
    _default_plan,
    _write,
    write_model_that_aborts_llama,
    write_tiny_model,
    write_tiny_model_with_bad_metadata,
)

_U32, _U64 = struct.Struct("<I"), struct.Struct("<Q")


def _tensor_fields(data: bytes, name: bytes = b"token_embd.weight") -> tuple[int, int, int]:
    """(position of the first dimension, of the type id, of the data offset) of a tensor's
    entry in the tensor table (found by its name; GGUF v3 layout)."""
    at = data.index(name) + len(name)
    n_dims = _U32.unpack_from(data, at)[0]
    dims = at + 4
    type_at = dims + 8 * n_dims
    return dims, type_at, type_at + 4


def _edit(data: bytes, at: int, packed: bytes) -> bytes:
    return data[:at] + packed + data[at + len(packed) :]


def _structural(base: bytes) -> dict[str, bytes]:
    dims, type_at, offset_at = _tensor_fields(base)
    offset = _U64.unpack_from(base, offset_at)[0]
    header_end = base.index(b"token_embd.weight") + 64
    return {
        "empty": b"",
        "not_a_gguf": b"PK\x03\x04" + bytes(200),
        "bad_magic": b"GGUX" + base[4:],
        "future_version": _edit(base, 4, _U32.pack(99)),
        "huge_tensor_count": _edit(base, 8, _U64.pack(2**62)),
        "huge_metadata_count": _edit(base, 16, _U64.pack(2**62)),
        "huge_key_length": _edit(base, 24, _U64.pack(2**60)),
        "truncated_header": base[: header_end // 2],
        "truncated_tensor_data": base[: len(base) - 100],
        "unknown_tensor_type": _edit(base, type_at, _U32.pack(999)),
        "misaligned_tensor": _edit(base, offset_at, _U64.pack(offset + 1)),
        "tensor_past_the_end": _edit(base, offset_at, _U64.pack(2**40)),
        "zero_dimension": _edit(base, dims, _U64.pack(0)),
    }


REFUSED_AT_IMPORT = (
    "empty", "not_a_gguf", "bad_magic", "future_version", "huge_tensor_count",
    "huge_metadata_count", "huge_key_length", "truncated_header", "truncated_tensor_data",
    "unknown_tensor_type", "misaligned_tensor", "tensor_past_the_end", "zero_dimension",
)  # fmt: skip

#: Files that parse; llama.cpp refuses them at load (politely, or by aborting the child).
LOAD_FAILURES: dict[str, Callable[[Path], Path]] = {
    "wrong_tensor_shape": lambda p: write_tiny_model_with_bad_metadata(p, kind="wrong_shape"),
    "missing_tensor": lambda p: write_tiny_model_with_bad_metadata(p, kind="missing_tensor"),
    "bad_rope_dims": lambda p: write_tiny_model_with_bad_metadata(p, kind="bad_rope_dims"),
    "aborts_rope_scaling": lambda p: write_model_that_aborts_llama(p, kind="rope_scaling_type"),
    "aborts_expert_count": lambda p: write_model_that_aborts_llama(p, kind="expert_used_count"),
    "unknown_architecture": lambda p: _write_unknown_architecture(p),
}


def _write_unknown_architecture(path: Path) -> Path:
    """The tiny model claiming an architecture llama.cpp has never heard of."""
    kv, tensors = _default_plan()
    kv["general.architecture"] = ("str", "frobnicator")
    return _write(path, (kv, tensors), "F32")


def write_corpus(folder: Path) -> dict[str, Path]:
    """Write every file of the corpus into ``folder``; name -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    base = write_tiny_model(folder / "base.gguf").read_bytes()
    out = {}
    for name, data in _structural(base).items():
        out[name] = folder / f"{name}.gguf"
        out[name].write_bytes(data)
    for name, write in LOAD_FAILURES.items():
        out[name] = write(folder / f"{name}.gguf")
    (folder / "base.gguf").unlink()
    return out
