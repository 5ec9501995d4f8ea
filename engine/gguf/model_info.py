"""A summary of a GGUF model (architecture, size, quantization, context) built from its header.

:func:`summarize` turns a :class:`~quantdesk.engine.gguf.reader.GGUFHeader` into a
:class:`ModelReport`; :meth:`ModelReport.to_dict` gives JSON, :func:`format_text` a terminal
report (``quantdesk inspect``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from quantdesk.engine.gguf.reader import VALUE_TYPE_NAMES, GGUFHeader, TensorInfo
from quantdesk.engine.gguf.types import file_type_name

MAX_LISTED_ITEMS = 16
"""Metadata arrays longer than this are shown as "[array of N <type>]"."""

_UNQUANTIZED = {"F32", "F16", "BF16", "F64", "I8", "I16", "I32", "I64"}


@dataclass(frozen=True)
class QuantShare:
    """How many tensors (and bytes) of the model use one ggml type."""

    type_name: str
    tensor_count: int
    n_bytes: int


@dataclass(frozen=True)
class ModelReport:
    """What a person wants to know about a GGUF model before loading it."""

    path: str | None
    file_size: int | None
    gguf_version: int
    architecture: str | None
    name: str | None
    parameter_count: int
    parameter_label: str
    file_type: str | None
    file_type_guessed: bool
    quant_mix: tuple[QuantShare, ...]
    bits_per_weight: float | None
    context_length: int | None
    embedding_length: int | None
    block_count: int | None
    head_count: int | None
    head_count_kv: int | None
    vocab_size: int | None
    has_chat_template: bool
    chat_template: str | None
    tensors: tuple[TensorInfo, ...]
    metadata: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; long metadata arrays are already summarised in ``metadata``."""
        return asdict(self)


def parameter_label(count: int) -> str:
    """Short human label for a parameter count: 268M, 7.2B, 70B."""
    for unit, scale in (("T", 10**12), ("B", 10**9), ("M", 10**6), ("K", 10**3)):
        if count >= scale:
            value = count / scale
            text = f"{value:.1f}" if value < 9.95 else f"{value:.0f}"
            return text.removesuffix(".0") + unit
    return str(count)


def human_bytes(n: int) -> str:
    """Byte count in decimal units, as download sizes are usually shown: 253.1 MB."""
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"


def _summarise_value(value: Any, item_type: int | None) -> Any:
    if isinstance(value, list) and len(value) > MAX_LISTED_ITEMS:
        type_name = VALUE_TYPE_NAMES.get(item_type, "value") if item_type is not None else "value"
        return f"[array of {len(value)} {type_name}]"
    return value


def _as_int(value: Any) -> int | None:
    """An int metadata value; for per-layer lists (some architectures) the largest entry."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, list) and value and all(isinstance(v, int) for v in value):
        return max(value)
    return None


def _guess_file_type(tensors: tuple[TensorInfo, ...]) -> str | None:
    """The most common type of the 2-D weight tensors, preferring quantized types."""
    weights = [t for t in tensors if len(t.shape) == 2 and t.name.endswith(".weight")]
    if not weights:
        return None
    quantized = [t for t in weights if t.type_name not in _UNQUANTIZED] or weights
    counts = Counter(t.type_name for t in quantized)
    sizes: Counter[str] = Counter()
    for t in quantized:
        sizes[t.type_name] += t.n_bytes
    return max(counts, key=lambda name: (counts[name], sizes[name]))


def summarize(header: GGUFHeader, path: str | Path | None = None) -> ModelReport:
    """Build a :class:`ModelReport` from a parsed header (``path`` names the file, if any)."""
    meta = header.metadata
    arch = meta.get("general.architecture")
    arch = arch if isinstance(arch, str) else None

    def arch_int(key: str) -> int | None:
        return _as_int(meta.get(f"{arch}.{key}")) if arch else None

    name = meta.get("general.name")
    if not isinstance(name, str) or not name.strip():
        name = Path(path).stem if path is not None else None
    file_type_id = _as_int(meta.get("general.file_type"))
    guessed = file_type_id is None
    file_type = _guess_file_type(header.tensors) if guessed else file_type_name(file_type_id)

    by_type: dict[str, list[int]] = {}
    for t in header.tensors:
        share = by_type.setdefault(t.type_name, [0, 0])
        share[0] += 1
        share[1] += t.n_bytes
    quant_mix = tuple(
        QuantShare(type_name, count, n_bytes)
        for type_name, (count, n_bytes) in sorted(by_type.items(), key=lambda kv: -kv[1][1])
    )
    n_params = sum(t.n_elements for t in header.tensors)
    n_bytes = sum(t.n_bytes for t in header.tensors)
    tokens = meta.get("tokenizer.ggml.tokens")
    vocab = len(tokens) if isinstance(tokens, list) else arch_int("vocab_size")
    template = meta.get("tokenizer.chat_template")
    template = template if isinstance(template, str) else None
    return ModelReport(
        path=str(path) if path is not None else None,
        file_size=header.file_size,
        gguf_version=header.version,
        architecture=arch,
        name=name,
        parameter_count=n_params,
        parameter_label=parameter_label(n_params),
        file_type=file_type,
        file_type_guessed=guessed and file_type is not None,
        quant_mix=quant_mix,
        bits_per_weight=round(8 * n_bytes / n_params, 2) if n_params else None,
        context_length=arch_int("context_length"),
        embedding_length=arch_int("embedding_length"),
        block_count=arch_int("block_count"),
        head_count=arch_int("attention.head_count"),
        head_count_kv=arch_int("attention.head_count_kv"),
        vocab_size=vocab,
        has_chat_template=template is not None,
        chat_template=template,
        tensors=header.tensors,
        metadata={
            key: _summarise_value(value, header.array_types.get(key)) for key, value in meta.items()
        },
    )


def _num(value: int | None) -> str:
    return "unknown" if value is None else f"{value:,}"


def format_text(report: ModelReport, include_tensors: bool = False) -> str:
    """A readable multi-line report for a terminal; the tensor table only if asked."""
    size = f" ({human_bytes(report.file_size)})" if report.file_size is not None else ""
    file_type = report.file_type or "unknown"
    if report.file_type_guessed:
        file_type += " (guessed from the tensor types)"
    bpw = f", {report.bits_per_weight} bits per weight" if report.bits_per_weight else ""
    template = "none"
    if report.chat_template is not None:
        template = f"yes ({len(report.chat_template):,} characters)"
    rows = [
        ("File", f"{report.path or '(no path)'}{size}"),
        ("Name", report.name or "unknown"),
        ("Architecture", report.architecture or "unknown"),
        ("Parameters", f"{report.parameter_label} ({report.parameter_count:,})"),
        ("File type", f"{file_type}{bpw}"),
        ("Context length", _num(report.context_length)),
        ("Embedding length", _num(report.embedding_length)),
        ("Layers", _num(report.block_count)),
        ("Attention heads", f"{_num(report.head_count)} (KV heads: {_num(report.head_count_kv)})"),
        ("Vocabulary", _num(report.vocab_size)),
        ("Chat template", template),
        ("GGUF version", str(report.gguf_version)),
        ("Tensors", f"{len(report.tensors):,}"),
    ]
    lines = [f"{label + ':':<18}{value}" for label, value in rows]
    lines.append("Quantization mix:")
    for share in report.quant_mix:
        lines.append(
            f"  {share.type_name:<8}{share.tensor_count:>6} tensors"
            f"  {human_bytes(share.n_bytes):>10}"
        )
    if include_tensors:
        lines.append("Tensor table:")
        width = max((len(t.name) for t in report.tensors), default=4)
        lines.append(f"  {'name':<{width}}  {'type':<8}{'shape':<24}{'size':>10}  offset")
        for t in report.tensors:
            shape = " x ".join(str(d) for d in t.shape)
            lines.append(
                f"  {t.name:<{width}}  {t.type_name:<8}{shape:<24}"
                f"{human_bytes(t.n_bytes):>10}  {t.offset}"
            )
    return "\n".join(lines)
