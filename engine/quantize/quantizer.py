"""Quantize a local GGUF model with llama.cpp's own quantizer, safely and predictably.

``predict`` runs llama.cpp's dry run (``llama_model_quantize_params.dry_run``): it decides
every tensor's target type exactly as the real run will, without writing anything; the
output file size follows from those types to the byte. ``quantize`` then runs the real thing
in a child process (``quantize_child``) into ``<output>.part``, reports progress per tensor
from llama.cpp's log lines, and renames the file only when it is complete and its header
reads back. Cancel kills the child and deletes the part; a native crash becomes a
``QuantizeError``, never the caller's death.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from quantdesk.engine.child_process import ChildOutcome, crash_reason, run_child
from quantdesk.engine.errors import (
    ImatrixError,
    InvalidGGUF,
    QuantizeCancelled,
    QuantizeError,
)
from quantdesk.engine.file_hash import file_version
from quantdesk.engine.gguf.reader import GGUFHeader, read_header_cached
from quantdesk.engine.gguf.types import GGML_TYPES, file_type_name, tensor_nbytes
from quantdesk.engine.quantize._imatrix import Imatrix, load_imatrix
from quantdesk.engine.quantize.job_parts import PartJournal
from quantdesk.engine.quantize.options import (
    QUANT_TARGETS,
    QuantizeOptions,
    target_name,
)

CHILD_MODULE = "quantdesk.engine.quantize._quantizer_child"
DISK_MARGIN = 64 * 1024 * 1024
"""Free space kept beyond the predicted output size (the filesystem and the app need room)."""

_UNQUANTIZED = frozenset({"F32", "F16", "BF16", "F64", "I8", "I16", "I32", "I64"})
_TYPE_BY_NAME = {t.name: t for t in GGML_TYPES.values()}


@dataclass(frozen=True)
class SourceInfo:
    """What is being quantized: its header, precision and size."""

    path: Path
    header: GGUFHeader
    file_type: str
    weight_types: dict[str, int]  # ggml type name -> number of tensors
    size_bytes: int

    @property
    def is_quantized(self) -> bool:
        """True when any tensor already holds quantized (not F32/F16/BF16) data."""
        return any(t not in _UNQUANTIZED for t in self.weight_types)

    @property
    def precision(self) -> str:
        """A short description such as "F16 (2 F32 tensors)"."""
        parts = sorted(self.weight_types.items(), key=lambda kv: -kv[1])
        return ", ".join(f"{n} x{c}" for n, c in parts)


@dataclass(frozen=True)
class QuantizePrediction:
    """llama.cpp's plan for a quantization, before anything is written."""

    target: str
    size_bytes: int
    tensor_types: dict[str, str]
    requires_imatrix: bool
    header: GGUFHeader = field(repr=False)
    options: QuantizeOptions | None = None  # normalized; a plan only serves the same options

    @property
    def type_mix(self) -> dict[str, int]:
        """Target tensor type -> number of tensors (e.g. {"Q4_K": 150, "Q6_K": 20, ...})."""
        mix: dict[str, int] = {}
        for name in self.tensor_types.values():
            mix[name] = mix.get(name, 0) + 1
        return mix


@dataclass(frozen=True)
class QuantizeProgress:
    """One tensor finished: ``index`` of ``count``; ``fraction`` weighs tensors by size."""

    index: int
    count: int
    name: str
    target_type: str
    fraction: float


@dataclass(frozen=True)
class QuantizeResult:
    """A finished quantization."""

    output: Path
    size_bytes: int
    predicted_bytes: int
    seconds: float
    source_bytes: int
    target: str

    @property
    def prediction_error(self) -> float:
        """(predicted - real) / real."""
        return (self.predicted_bytes - self.size_bytes) / self.size_bytes

    def to_json(self) -> dict[str, Any]:
        """Plain data for ``--json`` output."""
        return {
            "output": str(self.output),
            "target": self.target,
            "size_bytes": self.size_bytes,
            "predicted_bytes": self.predicted_bytes,
            "prediction_error": self.prediction_error,
            "source_bytes": self.source_bytes,
            "seconds": round(self.seconds, 3),
        }


def inspect_source(source: str | Path) -> SourceInfo:
    """Read and check the source model's header; QuantizeError explains what is wrong.

    The header is parsed once per file version (a 262k-token vocabulary takes a quarter of a
    second in Python), so predict-then-quantize reads it once.
    """
    path = Path(source)
    try:
        if not path.exists():
            raise FileNotFoundError
        header = read_header_cached(path)
    except FileNotFoundError:
        raise QuantizeError(f"'{path}' does not exist.") from None
    except InvalidGGUF as exc:
        raise QuantizeError(f"'{path.name}' cannot be quantized: {exc}") from None
    if int(header.metadata.get("split.count", 1) or 1) > 1:
        raise QuantizeError(
            f"'{path.name}' is one part of a split model. Merge the parts into one file first "
            "(llama-gguf-split --merge), then quantize that file."
        )
    if not header.tensors:
        raise QuantizeError(f"'{path.name}' holds no tensors; there is nothing to quantize.")
    types: dict[str, int] = {}
    for tensor in header.tensors:
        types[tensor.type_name] = types.get(tensor.type_name, 0) + 1
    raw_type = header.metadata.get("general.file_type")
    file_type = file_type_name(int(raw_type)) if raw_type is not None else "unknown"
    return SourceInfo(path, header, file_type, types, path.stat().st_size)


def _imatrix(path: Path) -> Imatrix:
    """An importance matrix, read once per file version (checked, then used for the header)."""
    try:
        version = file_version(path)
    except OSError:
        return load_imatrix(path)  # the loader says why it cannot be read
    return _cached_imatrix(*version)


@functools.lru_cache(maxsize=2)
def _cached_imatrix(path: str, stamp: str) -> Imatrix:
    return load_imatrix(path)


def check_options(info: SourceInfo, options: QuantizeOptions) -> QuantizeOptions:
    """Normalize the options against the source; QuantizeError/ImatrixError when they clash."""
    opts = options.normalized()
    if info.is_quantized and not opts.allow_requantize:
        raise QuantizeError(
            f"'{info.path.name}' is already quantized ({info.file_type}). Quantizing it again "
            "adds a second rounding error on top of the first, so the result is worse than the "
            "same type made from F16/BF16 weights. Use the original F16/BF16/F32 file, or "
            "allow requantizing to do it anyway."
        )
    if opts.imatrix is not None:
        _imatrix(opts.imatrix)  # raises ImatrixError with the reason
    return opts


def predict(
    source: str | Path, options: QuantizeOptions, cancel: threading.Event | None = None
) -> QuantizePrediction:
    """llama.cpp's dry run: every tensor's target type and the exact output size."""
    info = inspect_source(source)
    opts = check_options(info, options)
    events: list[dict[str, Any]] = []
    job = opts.child_job(info.path, None, dry_run=True)
    outcome = run_child(CHILD_MODULE, [], events.append, job=job, cancel=cancel, timeout_s=600)
    if outcome.cancelled:
        raise QuantizeCancelled("Quantization cancelled; no file was written.")
    _raise_for_outcome(outcome, events, info, opts)
    types = {e["name"]: e["target_type"].upper() for e in events if e["type"] == "tensor"}
    header = predicted_header(info.header, types, opts)
    size = header.data_offset + sum(_padded(t.n_bytes, header.alignment) for t in header.tensors)
    requires = any(e["type"] == "requires_imatrix" for e in events) and opts.imatrix is None
    return QuantizePrediction(opts.target, size, types, requires, header, opts)


def predicted_header(
    source: GGUFHeader, tensor_types: dict[str, str], options: QuantizeOptions
) -> GGUFHeader:
    """The output's header: source metadata plus what llama.cpp adds, tensors at new types."""
    from dataclasses import replace

    meta = dict(source.metadata)
    extra = 0
    added = {"general.quantization_version": 4, "general.file_type": 4}
    if options.imatrix is not None:
        imatrix = _imatrix(options.imatrix)
        added["quantize.imatrix.file"] = 8 + len(str(options.imatrix).encode()[:127])
        if imatrix.datasets:
            added["quantize.imatrix.dataset"] = 8 + len(imatrix.datasets[0].encode()[:127])
        added["quantize.imatrix.entries_count"] = 4
        if imatrix.chunk_count > 0:
            added["quantize.imatrix.chunks_count"] = 4
    for key, value_size in added.items():
        if key not in meta:
            extra += 8 + len(key.encode()) + 4 + value_size
    for key in ("split.no", "split.count", "split.tensors.count"):
        if key in meta:
            extra -= _kv_size(source, key)
            meta.pop(key)
    meta["general.file_type"] = QUANT_TARGETS[options.target]
    tensors = []
    for t in source.tensors:
        type_name = tensor_types.get(t.name, t.type_name)
        gtype = _TYPE_BY_NAME.get(type_name)
        if gtype is None:
            raise QuantizeError(f"llama.cpp chose an unknown tensor type '{type_name}'.")
        n_bytes = tensor_nbytes(gtype.type_id, t.shape)
        tensors.append(replace(t, ggml_type=gtype.type_id, type_name=gtype.name, n_bytes=n_bytes))
    offset = 0
    placed = []
    for t in tensors:
        placed.append(replace(t, offset=offset))
        offset += _padded(t.n_bytes, source.alignment)
    header_size = source.header_size + extra
    data_offset = _padded(header_size, source.alignment)
    return replace(
        source,
        metadata=meta,
        tensors=tuple(placed),
        header_size=header_size,
        data_offset=data_offset,
        file_size=data_offset + offset,
    )


def _kv_size(header: GGUFHeader, key: str) -> int:
    value = header.metadata[key]
    size = 8 + len(key.encode()) + 4
    if isinstance(value, str):
        return size + 8 + len(value.encode())
    return size + {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}.get(
        header.value_types.get(key, 4), 4
    )


def _padded(n: int, alignment: int) -> int:
    return -(-n // alignment) * alignment


def part_path(output: Path) -> Path:
    """Where the output is written until it is complete (never shown as a model)."""
    return output.with_name(output.name + ".part")


def default_output(source: str | Path, target: str) -> Path:
    """``<folder>/<name without its quant suffix>-<TARGET>.gguf`` next to the source."""
    src = Path(source)
    stem = src.stem
    lowered = stem.lower()
    for name in sorted(list(QUANT_TARGETS) + ["FP16", "FP32"], key=len, reverse=True):
        for sep in ("-", ".", "_"):
            suffix = (sep + name).lower()
            if lowered.endswith(suffix):
                stem = stem[: -len(suffix)]
                break
        else:
            continue
        break
    return src.with_name(f"{stem}-{target_name(target)}.gguf")


def quantize(
    source: str | Path,
    output: str | Path,
    options: QuantizeOptions,
    *,
    on_progress: Callable[[QuantizeProgress], None] | None = None,
    cancel: threading.Event | None = None,
    prediction: QuantizePrediction | None = None,
    journal: PartJournal | None = None,
) -> QuantizeResult:
    """Quantize ``source`` into ``output`` (child process); see the module docstring.

    ``journal`` registers the ``.part`` file while it is written, so one left by a kill is
    removed at the next start (:class:`~quantdesk.engine.quantize.job_parts.PartJournal`)."""
    started = time.monotonic()
    info = inspect_source(source)
    opts = check_options(info, options)
    out = Path(output)
    if out.resolve() == info.path.resolve():
        raise QuantizeError("The output file must differ from the source file.")
    if out.exists():
        raise QuantizeError(f"'{out}' already exists; choose another name or remove it first.")
    fits = prediction is not None and prediction.options == opts
    plan = prediction if fits and prediction is not None else predict(info.path, opts, cancel)
    if plan.requires_imatrix:
        raise ImatrixError(imatrix_reason(opts.target))
    _check_disk(out, plan.size_bytes)
    part = part_path(out)
    part.unlink(missing_ok=True)
    weights = {t.name: t.n_bytes for t in info.header.tensors}
    total = sum(weights.values()) or 1
    done = 0
    events: list[dict[str, Any]] = []

    def on_event(event: dict[str, Any]) -> None:
        nonlocal done
        if event["type"] != "tensor":
            events.append(event)
        else:
            done += weights.get(event["name"], 0)
            if on_progress is not None:
                on_progress(
                    QuantizeProgress(
                        event["index"],
                        event["count"],
                        event["name"],
                        event["target_type"].upper(),
                        min(1.0, done / total),
                    )
                )

    job = opts.child_job(info.path, part, dry_run=False)
    with journal.track(part) if journal is not None else contextlib.nullcontext():
        try:
            outcome = run_child(CHILD_MODULE, [], on_event, job=job, cancel=cancel)
            if outcome.cancelled:
                raise QuantizeCancelled("Quantization cancelled; no file was written.")
            _raise_for_outcome(outcome, events, info, opts, out)
            _check_output(part, plan)
            os.replace(part, out)
        finally:
            part.unlink(missing_ok=True)
    return QuantizeResult(
        out, out.stat().st_size, plan.size_bytes, time.monotonic() - started,
        info.size_bytes, opts.target,
    )  # fmt: skip


def imatrix_reason(target: str) -> str:
    """Why a type cannot be made without an importance matrix, in plain words."""
    return (
        f"{target} needs an importance matrix (imatrix). At fewer than about 3 bits per "
        "weight llama.cpp only keeps quality by knowing which weights matter most, which an "
        "imatrix measured on sample text tells it; without one the result would be garbage, "
        "so llama.cpp refuses. Choose an imatrix file (.gguf or .dat, made by llama-imatrix "
        "for this model), or pick a type of 3 bits or more (e.g. Q3_K_M, IQ4_XS, Q4_K_M)."
    )


def _check_disk(out: Path, size: int) -> None:
    folder = out.parent
    if not folder.is_dir():
        raise QuantizeError(f"The folder '{folder}' does not exist.")
    free = shutil.disk_usage(folder).free
    if free < size + DISK_MARGIN:
        raise QuantizeError(
            f"Not enough disk space in '{folder}': the result needs about "
            f"{size / 2**20:,.0f} MiB and {free / 2**20:,.0f} MiB are free."
        )


def _check_output(part: Path, plan: QuantizePrediction) -> None:
    """The dry run predicts the file to the byte: a complete file has exactly that size."""
    try:
        size = part.stat().st_size
        with open(part, "rb") as f:
            magic = f.read(4)
    except OSError as exc:
        raise QuantizeError(f"The quantized file cannot be read: {exc.strerror or exc}") from None
    if magic != b"GGUF" or size != plan.size_bytes:
        raise QuantizeError(
            f"llama.cpp wrote an incomplete or unexpected file ({size:,} bytes, "
            f"{plan.size_bytes:,} expected); it was deleted."
        )


def _raise_for_outcome(
    outcome: ChildOutcome,
    events: list[dict[str, Any]],
    info: SourceInfo,
    opts: QuantizeOptions,
    output: Path | None = None,
) -> None:
    if outcome.cancelled:
        raise QuantizeCancelled("Quantization cancelled.")
    if outcome.timed_out:
        raise QuantizeError(f"Quantizing '{info.path.name}' took too long and was stopped.")
    if outcome.signal_name:
        raise QuantizeError(
            f"Quantizing '{info.path.name}' failed: {crash_reason(outcome.signal_name)}. "
            "The app kept running and no file was written.",
            outcome.output_tail,
        )
    result = next((e for e in events if e["type"] == "result"), None)
    if result is not None and result["ok"]:
        return
    errors = [e["text"] for e in events if e["type"] == "error_line"]
    text = " ".join(errors) + " " + (result["message"] if result else "")
    details = "\n".join(errors) or outcome.output_tail
    if "requires an imatrix" in text or "Missing importance matrix" in text:
        raise ImatrixError(imatrix_reason(opts.target), details)
    if "imatrix size" in text:
        raise ImatrixError(
            "The importance matrix does not match this model (its sizes differ); it was made "
            "for another model. Use the imatrix computed for this model.",
            details,
        )
    if "requantizing from type" in text:
        raise QuantizeError(
            f"'{info.path.name}' holds quantized tensors; allow requantizing to go on.", details
        )
    if output is not None and ("iostream" in text or "write" in text.lower()):
        free = shutil.disk_usage(output.parent).free
        raise QuantizeError(
            f"Writing '{output.name}' failed ({free / 2**20:,.0f} MiB free now in "
            f"'{output.parent}'): most likely the disk filled up. Nothing was kept; free some "
            "space and try again.",
            details,
        )
    reason = (errors[-1] if errors else (result or {}).get("message")) or "no reason given"
    raise QuantizeError(f"llama.cpp could not quantize '{info.path.name}': {reason}", details)
