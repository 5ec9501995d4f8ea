"""Builders of small GGUF files for the header reader tests.

* :func:`write_writer_model` - a valid v3 file written by the ``gguf`` package's GGUFWriter,
  with a metadata value of every type (nested arrays and bools included) and a few tensors.
* :func:`build_gguf` - hand-packed bytes (struct) for any version, including malformed files:
  every count, type id, offset and length can be given explicitly.

Sizes here come from ``gguf.GGML_QUANT_SIZES``, not from the engine's own table.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, GGUFValueType, GGUFWriter

VT = GGUFValueType
QT = GGMLQuantizationType

# Every scalar value type with a value that survives a round trip exactly.
SCALAR_VALUES: dict[str, tuple[GGUFValueType, Any]] = {
    "test.u8": (VT.UINT8, 250),
    "test.i8": (VT.INT8, -120),
    "test.u16": (VT.UINT16, 65000),
    "test.i16": (VT.INT16, -32000),
    "test.u32": (VT.UINT32, 4_000_000_000),
    "test.i32": (VT.INT32, -2_000_000_000),
    "test.f32": (VT.FLOAT32, 0.5),
    "test.bool_true": (VT.BOOL, True),
    "test.bool_false": (VT.BOOL, False),
    "test.string": (VT.STRING, "héllo ✓ wörld"),
    "test.u64": (VT.UINT64, 2**64 - 1),
    "test.i64": (VT.INT64, -(2**63)),
    "test.f64": (VT.FLOAT64, -1.25e300),
}

# Arrays: key -> (item type, items).
ARRAY_VALUES: dict[str, tuple[GGUFValueType, list[Any]]] = {
    "test.arr_u8": (VT.UINT8, [0, 1, 255]),
    "test.arr_i16": (VT.INT16, [-1, 2, -3]),
    "test.arr_u64": (VT.UINT64, [2**64 - 1, 0]),
    "test.arr_f32": (VT.FLOAT32, [0.25, -2.0]),
    "test.arr_f64": (VT.FLOAT64, [1e-300, 3.5]),
    "test.arr_bool": (VT.BOOL, [True, False, True]),
    "test.arr_str": (VT.STRING, ["a", "", "ünï"]),
    "test.arr_nested": (VT.ARRAY, [[1, 2], [3], [4, 5, 6]]),
    "test.arr_long": (VT.INT32, list(range(40))),
}

TOKENS = ["<s>", "</s>", "a", "b", "c", "ab", "bc", "abc"]
CHAT_TEMPLATE = "{% for m in messages %}{{ m.content }}{% endfor %}"


def write_writer_model(path: Path, *, alignment: int | None = None) -> Path:
    """Write a valid little llama-architecture GGUF v3 with GGUFWriter; return ``path``."""
    w = GGUFWriter(path, "llama")
    if alignment is not None:
        w.add_custom_alignment(alignment)
    w.add_name("Tiny Test Model")
    w.add_context_length(256)
    w.add_embedding_length(32)
    w.add_block_count(2)
    w.add_head_count(4)
    w.add_head_count_kv(2)
    w.add_file_type(7)  # MOSTLY_Q8_0
    w.add_chat_template(CHAT_TEMPLATE)
    w.add_token_list(TOKENS)
    for key, (vtype, value) in SCALAR_VALUES.items():
        w.add_key_value(key, value, vtype)
    for key, (item_type, items) in ARRAY_VALUES.items():
        w.add_key_value(key, items, VT.ARRAY, sub_type=item_type)
    w.add_tensor("token_embd.weight", np.arange(32 * 8, dtype=np.float32).reshape(8, 32))
    w.add_tensor("blk.0.attn_norm.weight", np.ones(32, dtype=np.float16))
    q8_bytes = GGML_QUANT_SIZES[QT.Q8_0][1]
    for i in range(2):
        w.add_tensor(
            f"blk.{i}.attn_q.weight",
            np.zeros((32, q8_bytes), dtype=np.uint8),
            raw_dtype=QT.Q8_0,
        )
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def _count(n: int, wide: bool) -> bytes:
    return struct.pack("<Q" if wide else "<I", n)


def pack_string(text: str | bytes, wide: bool = True) -> bytes:
    """A GGUF string: length (uint64, uint32 in v1) then the bytes."""
    raw = text.encode("utf-8") if isinstance(text, str) else text
    return _count(len(raw), wide) + raw


_SCALAR_FORMATS = {
    VT.UINT8: "B", VT.INT8: "b", VT.UINT16: "H", VT.INT16: "h", VT.UINT32: "I",
    VT.INT32: "i", VT.FLOAT32: "f", VT.BOOL: "B", VT.UINT64: "Q", VT.INT64: "q",
    VT.FLOAT64: "d",
}  # fmt: skip


def pack_value(vtype: int, value: Any, wide: bool = True) -> bytes:
    """A metadata value without its type prefix; ARRAY values are (item_type, items).

    Nested arrays (item_type ARRAY) hold lists of int32.
    """
    if vtype == VT.STRING:
        return pack_string(value, wide)
    if vtype == VT.ARRAY:
        item_type, items = value
        body = b"".join(
            pack_value(item_type, (VT.INT32, item) if item_type == VT.ARRAY else item, wide)
            for item in items
        )
        return struct.pack("<I", item_type) + _count(len(items), wide) + body
    return struct.pack("<" + _SCALAR_FORMATS[VT(vtype)], value)


def pack_kv(key: str | bytes, vtype: int, value: Any, wide: bool = True) -> bytes:
    """One metadata entry: key, value type, value."""
    return pack_string(key, wide) + struct.pack("<I", vtype) + pack_value(vtype, value, wide)


def pack_tensor_info(
    name: str | bytes, dims: Sequence[int], ggml_type: int, offset: int, wide: bool = True
) -> bytes:
    """One tensor-table entry (dims in ggml order, ne[0] first)."""
    dim_fmt = "Q" if wide else "I"
    return (
        pack_string(name, wide)
        + struct.pack("<I", len(dims))
        + struct.pack(f"<{len(dims)}{dim_fmt}", *dims)
        + struct.pack("<IQ", ggml_type, offset)
    )


def nbytes(ggml_type: int, dims: Sequence[int]) -> int:
    """Size of a tensor according to the gguf package."""
    block, type_size = GGML_QUANT_SIZES[QT(ggml_type)]
    return int(np.prod(dims)) // block * type_size


Tensor = tuple[str, Sequence[int], int, int]  # name, dims, ggml type, offset
_KNOWN_TYPES = {int(q) for q in QT}


def build_gguf(
    kvs: Sequence[tuple[str, int, Any]] = (),
    tensors: Sequence[Tensor] = (),
    *,
    version: int = 3,
    magic: bytes = b"GGUF",
    n_tensors: int | None = None,
    n_kv: int | None = None,
    alignment: int = 32,
    data_size: int | None = None,
    raw_kvs: bytes = b"",
    raw_tensors: bytes = b"",
) -> bytes:
    """Hand-pack a GGUF file; counts default to the entries given (plus raw bytes appended).

    The data section is zeros, ``data_size`` bytes long (default: just enough for the tensors
    as declared, which need not be valid).
    """
    wide = version >= 2
    kv_bytes = b"".join(pack_kv(k, t, v, wide) for k, t, v in kvs) + raw_kvs
    ti_bytes = b"".join(pack_tensor_info(*t, wide=wide) for t in tensors) + raw_tensors
    header = (
        magic
        + struct.pack("<I", version)
        + _count(len(tensors) if n_tensors is None else n_tensors, wide)
        + _count(len(kvs) if n_kv is None else n_kv, wide)
        + kv_bytes
        + ti_bytes
    )
    if data_size is None:
        ends = [off + nbytes(t, dims) for _, dims, t, off in tensors if t in _KNOWN_TYPES]
        data_size = max(ends, default=0)
    padding = -len(header) % alignment if (tensors or data_size) else 0
    return header + bytes(padding) + bytes(data_size)


def simple_tensors() -> list[Tensor]:
    """Two small valid F32 tensors at offsets 0 and 32."""
    return [("a.weight", [8], QT.F32, 0), ("b.weight", [8, 2], QT.F32, 32)]
