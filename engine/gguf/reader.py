"""A strict reader for GGUF headers (metadata and tensor table) that works on a byte prefix.

:func:`read_header` parses ``data``, which is either a whole file or its first bytes (a remote
file fetched with HTTP range requests; ``file_size`` then gives the real size). When the header
continues past the prefix it raises :class:`NeedMoreBytes`; anything malformed raises
:class:`InvalidGGUF` with a message that says what is wrong. Only little-endian GGUF v1-v3 is
read. Tensor shapes are in ggml order (ne[0], the fastest-varying dimension, first).
"""

from __future__ import annotations

import errno
import functools
import itertools
import math
import os
import stat
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from quantdesk.engine.errors import InvalidGGUF, NeedMoreBytes
from quantdesk.engine.file_hash import file_version
from quantdesk.engine.gguf.types import INT64_MAX, ggml_type, tensor_nbytes

GGUF_MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (1, 2, 3)
DEFAULT_ALIGNMENT = 32
GGML_MAX_DIMS = 4
GGML_MAX_NAME = 64
MAX_ARRAY_NESTING = 8
FIRST_READ = 1 << 20

# GGUF metadata value types.
UINT8, INT8, UINT16, INT16, UINT32, INT32, FLOAT32, BOOL, STRING, ARRAY = range(10)
UINT64, INT64, FLOAT64 = 10, 11, 12
VALUE_TYPE_NAMES: dict[int, str] = {
    UINT8: "uint8", INT8: "int8", UINT16: "uint16", INT16: "int16", UINT32: "uint32",
    INT32: "int32", FLOAT32: "float32", BOOL: "bool", STRING: "string", ARRAY: "array",
    UINT64: "uint64", INT64: "int64", FLOAT64: "float64",
}  # fmt: skip
_SCALAR_CODES = {
    UINT8: "B", INT8: "b", UINT16: "H", INT16: "h", UINT32: "I", INT32: "i",
    FLOAT32: "f", BOOL: "B", UINT64: "Q", INT64: "q", FLOAT64: "d",
}  # fmt: skip
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")


@dataclass(frozen=True)
class TensorInfo:
    """One entry of the tensor table; ``offset`` is relative to the start of the data section."""

    name: str
    shape: tuple[int, ...]
    ggml_type: int
    type_name: str
    offset: int
    n_bytes: int
    n_elements: int


@dataclass(frozen=True)
class GGUFHeader:
    """A parsed GGUF header. ``array_types`` gives the item type of every ARRAY-typed key."""

    version: int
    metadata: dict[str, Any]
    value_types: dict[str, int]
    tensors: tuple[TensorInfo, ...]
    alignment: int
    header_size: int
    data_offset: int
    file_size: int | None
    array_types: dict[str, int] = field(default_factory=dict)


def _describe_non_gguf(head: bytes) -> str:
    """A guess at what a file that lacks the GGUF magic is instead ("" when unsure)."""
    if head.startswith(b"PK"):
        return " (it looks like a zip archive, e.g. a PyTorch checkpoint)"
    if len(head) >= 9 and head[8:9] == b"{" and head[6:8] == b"\0\0":
        return " (it looks like a safetensors file)"
    if head.lstrip()[:1] == b"{":
        return " (it looks like a JSON file)"
    if head.lstrip()[:1] == b"<":
        return " (it looks like an HTML or XML page, perhaps a failed download)"
    if head[:4] in (b"lmgg", b"fmgg", b"tjgg"):
        return " (it is an old GGML/GGJT model from before GGUF; convert it with llama.cpp)"
    if head[:1] == b"\x80":
        return " (it looks like a Python pickle, e.g. a PyTorch .bin file)"
    return ""


class _Cursor:
    """Bounds-checked little-endian reads from a byte prefix of a file of known size."""

    def __init__(self, data: bytes | bytearray | memoryview, file_size: int) -> None:
        self.buf = data
        self.avail = len(data)
        self.file_size = file_size
        self.pos = 0
        self.wide = True  # v2+: counts and string lengths are uint64

    def need(self, n: int, what: str) -> int:
        """Check that ``n`` bytes from ``pos`` are present; return the position they start at."""
        start = self.pos
        end = start + n
        if end > self.avail:
            if end > self.file_size:
                raise InvalidGGUF(f"file ends at offset {self.file_size} while reading {what}")
            raise NeedMoreBytes(min(self.file_size, max(2 * self.avail, end)))
        self.pos = end
        return start

    def u32(self, what: str) -> int:
        return _U32.unpack_from(self.buf, self.need(4, what))[0]

    def u64(self, what: str) -> int:
        return _U64.unpack_from(self.buf, self.need(8, what))[0]

    def count(self, what: str) -> int:
        return self.u64(what) if self.wide else self.u32(what)

    def string(self, what: str) -> str:
        n = self.count(f"the length of {what}")
        if n > self.file_size - self.pos:
            raise InvalidGGUF(
                f"{what} is said to be {n} bytes long, past the end of the file "
                f"({self.file_size} bytes)",
                offset=self.pos,
            )
        start = self.need(n, what)
        try:
            return str(self.buf[start : start + n], "utf-8")
        except UnicodeDecodeError:
            raise InvalidGGUF(f"{what} is not valid UTF-8", offset=start) from None

    def item_type(self, what: str) -> int:
        """Read a uint32 metadata value type and check it is known."""
        vtype = self.u32(f"the value type of {what}")
        if vtype not in VALUE_TYPE_NAMES:
            raise InvalidGGUF(f"unknown value type {vtype} for {what}", offset=self.pos - 4)
        return vtype

    def value(self, vtype: int, what: str) -> Any:
        """Read one non-array metadata value of type ``vtype``."""
        if vtype == STRING:
            return self.string(what)
        return self.numbers(vtype, 1, what)[0]

    def array(self, what: str, depth: int) -> tuple[list[Any], int]:
        """Read an array value (item type, count, items); return the items and their type."""
        if depth >= MAX_ARRAY_NESTING:
            raise InvalidGGUF(f"{what} nests arrays more than {MAX_ARRAY_NESTING} deep")
        vtype = self.item_type(f"the items of {what}")
        n = self.count(f"the length of {what}")
        code = _SCALAR_CODES.get(vtype)
        item_size = struct.calcsize("<" + code) if code else (8 if self.wide else 4)
        if vtype == ARRAY:
            item_size += 4
        if n * item_size > self.file_size - self.pos:
            raise InvalidGGUF(
                f"{what} is said to hold {n} items, more than fit in the "
                f"{self.file_size - self.pos} bytes of the file that remain",
                offset=self.pos,
            )
        if code is not None:
            return self.numbers(vtype, n, what), vtype
        if vtype == STRING:
            return self.string_array(n, what), vtype
        return [self.array(f"{what}[{i}]", depth + 1)[0] for i in range(n)], vtype

    def numbers(self, vtype: int, n: int, what: str) -> list[Any]:
        """Read ``n`` numbers (or bools) of type ``vtype`` in one go."""
        code = _SCALAR_CODES[vtype]
        start = self.need(struct.calcsize("<" + code) * n, what)
        if vtype == BOOL:
            raw = bytes(self.buf[start : start + n])
            if raw.translate(None, b"\x00\x01"):
                raise InvalidGGUF(f"{what} holds a bool that is neither 0 nor 1", offset=start)
            return [b == 1 for b in raw]
        return list(struct.unpack_from(f"<{n}{code}", self.buf, start))

    def string_array(self, n: int, what: str) -> list[str]:
        buf, avail, pos = self.buf, self.avail, self.pos
        lsize, unpack = (8, _U64.unpack_from) if self.wide else (4, _U32.unpack_from)
        out: list[str] = []
        append = out.append
        i = 0
        try:
            for i in range(n):
                if pos + lsize > avail:
                    self.pos = pos
                    self.need(lsize, f"the length of {what}[{i}]")
                length = unpack(buf, pos)[0]
                pos += lsize
                if pos + length > avail:
                    self.pos = pos
                    self.need(length, f"{what}[{i}]")
                append(str(buf[pos : pos + length], "utf-8"))
                pos += length
        except UnicodeDecodeError:
            raise InvalidGGUF(f"{what}[{i}] is not valid UTF-8", offset=pos) from None
        self.pos = pos
        return out


def _read_tensor_info(cur: _Cursor, index: int) -> tuple[str, tuple[int, ...], int, int]:
    name = cur.string(f"the name of tensor #{index}")
    label = f"tensor {name!r}"
    if len(name.encode("utf-8")) >= GGML_MAX_NAME:
        raise InvalidGGUF(f"{label} has a name longer than {GGML_MAX_NAME - 1} bytes")
    n_dims = cur.u32(f"the dimension count of {label}")
    if not 1 <= n_dims <= GGML_MAX_DIMS:
        raise InvalidGGUF(
            f"{label} has {n_dims} dimensions (must be 1 to {GGML_MAX_DIMS})", offset=cur.pos - 4
        )
    dim_code = "Q" if cur.wide else "I"
    start = cur.need(n_dims * (8 if cur.wide else 4), f"the shape of {label}")
    shape = struct.unpack_from(f"<{n_dims}{dim_code}", cur.buf, start)
    if any(d < 1 or d > INT64_MAX for d in shape):
        raise InvalidGGUF(f"{label} has invalid shape {shape} (each dimension must be >= 1)")
    type_id = cur.u32(f"the type of {label}")
    offset = cur.u64(f"the data offset of {label}")
    return name, shape, type_id, offset


def _tensor_table(
    raw: list[tuple[str, tuple[int, ...], int, int]],
    alignment: int,
    data_offset: int,
    file_size: int,
) -> tuple[TensorInfo, ...]:
    """Validate types, sizes, alignment and placement of the tensors; build TensorInfos."""
    tensors: list[TensorInfo] = []
    seen: set[str] = set()
    for name, shape, type_id, offset in raw:
        label = f"tensor {name!r}"
        if name in seen:
            raise InvalidGGUF(f"duplicate tensor name {name!r}")
        seen.add(name)
        try:
            type_name = ggml_type(type_id).name
            n_bytes = tensor_nbytes(type_id, shape)
        except InvalidGGUF as exc:
            raise InvalidGGUF(f"{label}: {exc.message}") from None
        if offset % alignment:
            raise InvalidGGUF(f"{label} data offset {offset} is not a multiple of {alignment}")
        end = data_offset + offset + n_bytes
        if end > file_size:
            raise InvalidGGUF(
                f"{label} data runs past the end of the file: ends at {end}, "
                f"file is {file_size} bytes"
            )
        tensors.append(
            TensorInfo(name, shape, type_id, type_name, offset, n_bytes, math.prod(shape))
        )
    ordered = sorted(tensors, key=lambda t: t.offset)
    for prev, nxt in itertools.pairwise(ordered):
        if nxt.offset < prev.offset + prev.n_bytes:
            raise InvalidGGUF(
                f"tensor {nxt.name!r} (data at {nxt.offset}) overlaps tensor {prev.name!r} "
                f"(data at {prev.offset}..{prev.offset + prev.n_bytes})"
            )
    return tuple(tensors)


def read_header(data: bytes | bytearray | memoryview, file_size: int | None = None) -> GGUFHeader:
    """Parse the GGUF header at the start of ``data``.

    ``data`` is the whole file when ``file_size`` is None, else its first bytes and
    ``file_size`` the size of the whole file. Raises NeedMoreBytes when the header continues
    past ``data``, InvalidGGUF when the file is malformed or ends inside the header.
    """
    if isinstance(data, memoryview) and (data.ndim != 1 or data.itemsize != 1):
        data = data.cast("B")
    if file_size is None:
        file_size = len(data)
    if file_size < len(data):
        raise ValueError(f"file_size {file_size} is smaller than the {len(data)} bytes given")
    if file_size == 0:
        raise InvalidGGUF("the file is empty")
    cur = _Cursor(data, file_size)
    head = bytes(data[:16])
    if head[:4] != GGUF_MAGIC[: len(head)]:
        raise InvalidGGUF(
            "not a GGUF model file: GGUF files begin with the letters 'GGUF', this one begins "
            f"with the bytes {head[:4].hex(' ')}" + _describe_non_gguf(head)
        )
    cur.need(4, "the GGUF magic number")
    version = cur.u32("the GGUF version")
    if version not in SUPPORTED_VERSIONS:
        if int.from_bytes(head[4:8], "big") in SUPPORTED_VERSIONS:
            raise InvalidGGUF("big-endian GGUF files are not supported")
        raise InvalidGGUF(f"unsupported GGUF version {version} (QuantDesk reads versions 1-3)")
    cur.wide = version >= 2
    n_tensors = cur.count("the tensor count")
    n_kv = cur.count("the metadata key count")
    csize = 8 if cur.wide else 4
    remaining = file_size - cur.pos
    if n_tensors * (2 * csize + 16) + n_kv * (csize + 5) > remaining:
        raise InvalidGGUF(
            f"the header declares {n_tensors} tensors and {n_kv} metadata keys, which cannot "
            f"fit in the {remaining} bytes of the file that follow",
            offset=cur.pos,
        )

    metadata: dict[str, Any] = {}
    value_types: dict[str, int] = {}
    array_types: dict[str, int] = {}
    for i in range(n_kv):
        key = cur.string(f"metadata key #{i}")
        if key in metadata:
            raise InvalidGGUF(f"duplicate metadata key {key!r}")
        vtype = cur.item_type(f"key {key!r}")
        if vtype == ARRAY:
            metadata[key], array_types[key] = cur.array(f"the value of key {key!r}", 0)
        else:
            metadata[key] = cur.value(vtype, f"the value of key {key!r}")
        value_types[key] = vtype

    alignment = DEFAULT_ALIGNMENT
    if "general.alignment" in metadata:
        alignment = metadata["general.alignment"]
        if value_types["general.alignment"] != UINT32:
            vname = VALUE_TYPE_NAMES[value_types["general.alignment"]]
            raise InvalidGGUF(f"general.alignment must be a uint32, not {vname}")
        if alignment <= 0 or alignment & (alignment - 1):
            raise InvalidGGUF(f"general.alignment {alignment} is not a power of two")

    raw = [_read_tensor_info(cur, i) for i in range(n_tensors)]
    header_size = cur.pos
    data_offset = -(-header_size // alignment) * alignment
    tensors = _tensor_table(raw, alignment, data_offset, file_size)
    return GGUFHeader(
        version, metadata, value_types, tensors, alignment, header_size, data_offset,
        file_size, array_types,
    )  # fmt: skip


def read_header_cached(path: str | os.PathLike[str]) -> GGUFHeader:
    """:func:`read_header_from_file`, read once per file version (:func:`file_version`) in this
    process: planning a load, the load and the quantizer's steps ask for the same header."""
    try:
        version = file_version(path)
    except OSError:
        return read_header_from_file(path)  # the reader says why it cannot be read
    return _header_of_version(*version)


@functools.lru_cache(maxsize=4)  # a big vocabulary's header is tens of MB of Python objects
def _header_of_version(path: str, stamp: str) -> GGUFHeader:
    return read_header_from_file(path)


def regular_file(path: str | os.PathLike[str]) -> Path:
    """``path`` when it is a regular file; else InvalidGGUF saying what it is instead: missing,
    a folder, a pipe, device or socket (reading a FIFO waits for ever), a loop of symbolic
    links, unreadable."""
    p = Path(path)
    try:
        mode = p.stat().st_mode
    except FileNotFoundError:
        raise InvalidGGUF(f"{p} does not exist") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise InvalidGGUF(
                f"{p} is a loop of symbolic links that never reaches a file"
            ) from None
        raise InvalidGGUF(f"{p} cannot be read: {exc.strerror or exc}") from None
    if stat.S_ISDIR(mode):
        raise InvalidGGUF(f"{p} is a folder, not a GGUF file")
    if not stat.S_ISREG(mode):
        raise InvalidGGUF(
            f"{p} is not a regular file (a pipe, device or socket), so it is not read"
        )
    return p


def read_header_from_file(path: str | os.PathLike[str]) -> GGUFHeader:
    """Read the GGUF header of a local file, reading only as much of it as the header needs.

    Reads 1 MiB first and grows the read (at least doubling) while the header continues.
    Only regular files are read (:func:`regular_file`).
    """
    p = regular_file(path)
    try:
        with open(p, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            data = f.read(min(size, FIRST_READ))
            while True:
                try:
                    return read_header(data, size)
                except NeedMoreBytes as more:
                    chunk = f.read(max(more.needed, 2 * len(data)) - len(data))
                    if not chunk:
                        raise InvalidGGUF(f"{p} became shorter while it was being read") from None
                    data += chunk
    except FileNotFoundError:
        raise InvalidGGUF(f"{p} does not exist") from None
    except PermissionError:
        raise InvalidGGUF(f"{p} cannot be read: permission denied") from None
    except OSError as exc:
        raise InvalidGGUF(f"{p} cannot be read: {exc.strerror or exc}") from None
