"""Importance-matrix files, read the way llama.cpp's ``llama-quantize`` reads them.

An importance matrix (imatrix) holds, for each weight matrix, the mean squared activation
seen on each input column while the model ran over some text. Low-bit quantizers (IQ1/IQ2,
Q2_K_S) use it to spend their few bits on the columns that matter. Two formats exist:

* GGUF (what ``llama-imatrix`` writes today): tensors ``<name>.in_sum2`` and ``<name>.counts``
  (F32), metadata ``imatrix.datasets``, ``imatrix.chunk_count``, ``imatrix.chunk_size``;
  the values are ``in_sum2 / count`` per expert (1 where the count is 0).
* legacy ``.dat``: ``n_entries``, then per entry ``len, name, ncall, nval, float[nval]``, then
  optionally ``chunk_count, len, dataset``; the values are ``sums / ncall``.

The result feeds llama.cpp's ``llama_model_imatrix_data`` array (see ``quantize_child``).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from quantdesk.engine.errors import ImatrixError, InvalidGGUF
from quantdesk.engine.gguf.reader import read_header_from_file

_GGUF_MAGIC = b"GGUF"
_F32 = 0


@dataclass
class Imatrix:
    """Per-tensor importance values (float32), plus what llama-quantize records about them."""

    values: dict[str, np.ndarray] = field(default_factory=dict)
    datasets: list[str] = field(default_factory=list)
    chunk_count: int = 0

    def __len__(self) -> int:
        return len(self.values)


def load_imatrix(path: str | Path) -> Imatrix:
    """Read an imatrix file (GGUF or legacy format); raise ImatrixError with the reason."""
    p = Path(path)
    try:
        with open(p, "rb") as f:
            magic = f.read(4)
    except OSError as exc:
        raise ImatrixError(
            f"The importance matrix '{p}' cannot be read: {exc.strerror or exc}"
        ) from None
    result = _load_gguf(p) if magic == _GGUF_MAGIC else _load_legacy(p)
    if not result.values:
        raise ImatrixError(f"The importance matrix '{p.name}' holds no data.")
    for name, values in result.values.items():
        if not np.all(np.isfinite(values)):
            raise ImatrixError(
                f"The importance matrix '{p.name}' holds non-finite values for '{name}'; "
                "it is damaged. Compute it again."
            )
    return result


def _load_gguf(p: Path) -> Imatrix:
    try:
        header = read_header_from_file(p)
    except InvalidGGUF as exc:
        raise ImatrixError(f"The importance matrix '{p.name}' is not valid: {exc}") from None
    meta = header.metadata
    if not all(k in meta for k in ("imatrix.datasets", "imatrix.chunk_count")):
        raise ImatrixError(
            f"'{p.name}' is a GGUF file but not an importance matrix (no imatrix metadata). "
            "Did you pick a model file instead of its imatrix?"
        )
    by_name = {t.name: t for t in header.tensors}
    result = Imatrix(
        datasets=[str(d) for d in meta.get("imatrix.datasets", [])],
        chunk_count=int(meta.get("imatrix.chunk_count", 0)),
    )
    with open(p, "rb") as f:
        for name, sums_info in by_name.items():
            if not name.endswith(".in_sum2"):
                continue
            base = name[: -len(".in_sum2")]
            counts_info = by_name.get(base + ".counts")
            if counts_info is None:
                raise ImatrixError(f"'{p.name}' has sums but no counts for '{base}'.")
            if sums_info.ggml_type != _F32 or counts_info.ggml_type != _F32:
                raise ImatrixError(f"'{p.name}': sums and counts for '{base}' must be F32.")
            sums = _read_f32(f, header.data_offset + sums_info.offset, sums_info.n_elements)
            counts = np.rint(
                _read_f32(f, header.data_offset + counts_info.offset, counts_info.n_elements)
            ).astype(np.float32)
            per_expert = sums.reshape(len(counts), -1)
            safe = np.where(counts > 0, counts, 1.0).astype(np.float32)[:, None]
            values = np.where(counts[:, None] > 0, per_expert / safe, np.float32(1.0))
            result.values[base] = values.astype(np.float32).reshape(-1)
    return result


def _read_f32(f, offset: int, count: int) -> np.ndarray:  # noqa: ANN001 - a binary file
    f.seek(offset)
    data = f.read(count * 4)
    if len(data) != count * 4:
        raise ImatrixError("The importance matrix file is truncated.")
    return np.frombuffer(data, dtype="<f4").copy()


def _load_legacy(p: Path) -> Imatrix:
    data = p.read_bytes()
    pos = 0

    def take(fmt: str) -> tuple:
        nonlocal pos
        size = struct.calcsize(fmt)
        if pos + size > len(data):
            raise ImatrixError(
                f"'{p.name}' is not an importance matrix (neither GGUF nor the legacy .dat "
                "format), or it is truncated."
            )
        out = struct.unpack_from(fmt, data, pos)
        pos += size
        return out

    (n_entries,) = take("<i")
    if n_entries < 1 or n_entries > 1_000_000:
        raise ImatrixError(f"'{p.name}' is not an importance matrix file.")
    result = Imatrix()
    for _ in range(n_entries):
        (length,) = take("<i")
        if length < 1 or length > 4096:
            raise ImatrixError(f"'{p.name}' is not an importance matrix file.")
        name = take(f"<{length}s")[0].split(b"\0", 1)[0].decode("utf-8", "replace")
        ncall, nval = take("<ii")
        if nval < 1:
            raise ImatrixError(f"'{p.name}': entry '{name}' has no values.")
        sums = np.array(take(f"<{nval}f"), dtype=np.float32)
        result.values[name] = sums / np.float32(ncall) if ncall > 0 else sums
    if pos < len(data):
        try:
            (result.chunk_count,) = take("<i")
            (length,) = take("<i")
            if length > 0:
                result.datasets.append(take(f"<{length}s")[0].decode("utf-8", "replace"))
        except ImatrixError:
            pass  # the trailer is optional, as in llama.cpp
    return result
