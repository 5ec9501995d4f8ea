"""The ggml tensor types and llama.cpp file types that a GGUF file can name.

The numbers mirror ``GGMLQuantizationType``, ``GGML_QUANT_SIZES`` and ``LlamaFileType`` in
the ``gguf`` Python package (llama.cpp's ``ggml.h`` / ``llama.h``). The engine never imports
that package; tests check this table against it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from quantdesk.engine.errors import InvalidGGUF

QK_K = 256
"""Elements per super-block of the k-quants and i-quants."""


@dataclass(frozen=True)
class GGMLType:
    """One ggml tensor type: ``block_size`` elements are stored in ``bytes_per_block`` bytes."""

    type_id: int
    name: str
    block_size: int
    bytes_per_block: int


def _t(type_id: int, name: str, block_size: int, bytes_per_block: int) -> tuple[int, GGMLType]:
    return type_id, GGMLType(type_id, name, block_size, bytes_per_block)


GGML_TYPES: dict[int, GGMLType] = dict(
    [
        _t(0, "F32", 1, 4),
        _t(1, "F16", 1, 2),
        _t(2, "Q4_0", 32, 2 + 16),
        _t(3, "Q4_1", 32, 2 + 2 + 16),
        _t(6, "Q5_0", 32, 2 + 4 + 16),
        _t(7, "Q5_1", 32, 2 + 2 + 4 + 16),
        _t(8, "Q8_0", 32, 2 + 32),
        _t(9, "Q8_1", 32, 4 + 4 + 32),
        _t(10, "Q2_K", QK_K, 2 + 2 + QK_K // 16 + QK_K // 4),
        _t(11, "Q3_K", QK_K, 2 + QK_K // 4 + QK_K // 8 + 12),
        _t(12, "Q4_K", QK_K, 2 + 2 + QK_K // 2 + 12),
        _t(13, "Q5_K", QK_K, 2 + 2 + QK_K // 2 + QK_K // 8 + 12),
        _t(14, "Q6_K", QK_K, 2 + QK_K // 2 + QK_K // 4 + QK_K // 16),
        _t(15, "Q8_K", QK_K, 4 + QK_K + QK_K // 8),
        _t(16, "IQ2_XXS", QK_K, 2 + QK_K // 4),
        _t(17, "IQ2_XS", QK_K, 2 + QK_K // 4 + QK_K // 32),
        _t(18, "IQ3_XXS", QK_K, 2 + QK_K // 4 + QK_K // 8),
        _t(19, "IQ1_S", QK_K, 2 + QK_K // 8 + QK_K // 16),
        _t(20, "IQ4_NL", 32, 2 + 16),
        _t(21, "IQ3_S", QK_K, 2 + QK_K // 4 + QK_K // 8 + QK_K // 32 + 4),
        _t(22, "IQ2_S", QK_K, 2 + QK_K // 4 + QK_K // 16),
        _t(23, "IQ4_XS", QK_K, 2 + 2 + QK_K // 2 + QK_K // 64),
        _t(24, "I8", 1, 1),
        _t(25, "I16", 1, 2),
        _t(26, "I32", 1, 4),
        _t(27, "I64", 1, 8),
        _t(28, "F64", 1, 8),
        _t(29, "IQ1_M", QK_K, QK_K // 8 + QK_K // 16 + QK_K // 32),
        _t(30, "BF16", 1, 2),
        _t(34, "TQ1_0", QK_K, 2 + 4 * 13),
        _t(35, "TQ2_0", QK_K, 2 + 64),
        _t(39, "MXFP4", 32, 1 + 16),
        _t(40, "NVFP4", 64, 4 + 32),
        _t(41, "Q1_0", 128, 2 + 16),
        _t(42, "Q2_0", 64, 2 + 16),
    ]
)
"""Every ggml tensor type a GGUF file may use, by type id."""

REMOVED_GGML_TYPES: dict[int, str] = {
    4: "Q4_2",
    5: "Q4_3",
    31: "Q4_0_4_4",
    32: "Q4_0_4_8",
    33: "Q4_0_8_8",
    36: "IQ4_NL_4_4",
    37: "IQ4_NL_4_8",
    38: "IQ4_NL_8_8",
}
"""Type ids llama.cpp once used and has since removed (files using them no longer load)."""

LLAMA_FILE_TYPES: dict[int, str] = {
    0: "F32",
    1: "F16",
    2: "Q4_0",
    3: "Q4_1",
    4: "Q4_1_SOME_F16",
    7: "Q8_0",
    8: "Q5_0",
    9: "Q5_1",
    10: "Q2_K",
    11: "Q3_K_S",
    12: "Q3_K_M",
    13: "Q3_K_L",
    14: "Q4_K_S",
    15: "Q4_K_M",
    16: "Q5_K_S",
    17: "Q5_K_M",
    18: "Q6_K",
    19: "IQ2_XXS",
    20: "IQ2_XS",
    21: "Q2_K_S",
    22: "IQ3_XS",
    23: "IQ3_XXS",
    24: "IQ1_S",
    25: "IQ4_NL",
    26: "IQ3_S",
    27: "IQ3_M",
    28: "IQ2_S",
    29: "IQ2_M",
    30: "IQ4_XS",
    31: "IQ1_M",
    32: "BF16",
    33: "Q4_0_4_4",
    34: "Q4_0_4_8",
    35: "Q4_0_8_8",
    36: "TQ1_0",
    37: "TQ2_0",
    38: "MXFP4_MOE",
    39: "NVFP4",
    40: "Q1_0",
    41: "Q2_0",
}
"""``general.file_type`` values (llama.cpp's ``llama_ftype``) and their usual names."""

LLAMA_FTYPE_GUESSED = 1024
"""Flag llama.cpp ORs into a file type it inferred rather than read from the file."""

INT64_MAX = 2**63 - 1


def ggml_type(type_id: int) -> GGMLType:
    """Return the :class:`GGMLType` for ``type_id``; raise InvalidGGUF if it is unknown."""
    found = GGML_TYPES.get(type_id)
    if found is not None:
        return found
    removed = REMOVED_GGML_TYPES.get(type_id)
    if removed is not None:
        raise InvalidGGUF(
            f"tensor type {type_id} ({removed}) was removed from llama.cpp and is no longer "
            "supported; download a newer conversion of this model"
        )
    raise InvalidGGUF(f"unknown ggml tensor type {type_id}")


def ggml_type_name(type_id: int) -> str:
    """Name of a ggml tensor type ("Q4_K"), or "type N" when it is unknown."""
    found = GGML_TYPES.get(type_id)
    if found is not None:
        return found.name
    return REMOVED_GGML_TYPES.get(type_id, f"type {type_id}")


def file_type_name(file_type: int) -> str:
    """Name of a ``general.file_type`` value ("Q4_K_M"), or "unknown (N)"."""
    guessed = bool(file_type & LLAMA_FTYPE_GUESSED) and file_type != LLAMA_FTYPE_GUESSED
    name = LLAMA_FILE_TYPES.get(file_type & ~LLAMA_FTYPE_GUESSED if guessed else file_type)
    if name is None:
        return f"unknown ({file_type})"
    return f"{name} (guessed)" if guessed else name


def tensor_nbytes(type_id: int, shape: Sequence[int]) -> int:
    """Bytes a tensor of ``type_id`` and ``shape`` occupies (``shape`` in ggml order, ne[0] first).

    Raises InvalidGGUF when the type is unknown, a dimension is below 1, the element count
    does not fit in int64, or the first dimension is not a multiple of the type's block size.
    """
    gtype = ggml_type(type_id)
    if not shape:
        raise InvalidGGUF("a tensor needs at least one dimension")
    n_elements = 1
    for dim in shape:
        if dim < 1:
            raise InvalidGGUF(f"tensor dimension {dim} is invalid (each must be at least 1)")
        n_elements *= dim
    if n_elements > INT64_MAX:
        raise InvalidGGUF(f"tensor shape {tuple(shape)} has more elements than fit in int64")
    if shape[0] % gtype.block_size:
        raise InvalidGGUF(
            f"first dimension {shape[0]} is not a multiple of the {gtype.name} block size "
            f"{gtype.block_size}"
        )
    return n_elements // gtype.block_size * gtype.bytes_per_block
