"""What a quantization produces: target file types and the options that matter.

The target list mirrors ``QUANT_OPTIONS`` of llama.cpp's ``llama-quantize`` tool (same names,
same ``llama_ftype`` values) so a type chosen here gives the file that tool gives.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from quantdesk.engine.errors import QuantizeError
from quantdesk.engine.gguf.quant_docs import FAMILY_NOTES, REFERENCE_PPL_INCREASE, quant_info
from quantdesk.engine.gguf.types import GGML_TYPES, LLAMA_FILE_TYPES

# name -> llama_ftype, in llama-quantize's order (its aliases Q3_K/Q4_K/Q5_K and COPY left out)
_TARGET_ORDER = (
    "Q1_0", "Q2_0", "Q4_0", "Q4_1", "MXFP4_MOE", "Q5_0", "Q5_1",
    "IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ2_M", "IQ1_S", "IQ1_M", "TQ1_0", "TQ2_0",
    "Q2_K", "Q2_K_S", "IQ3_XXS", "IQ3_S", "IQ3_M", "IQ3_XS", "Q3_K_S", "Q3_K_M", "Q3_K_L",
    "IQ4_NL", "IQ4_XS", "Q4_K_S", "Q4_K_M", "Q5_K_S", "Q5_K_M", "Q6_K", "Q8_0",
    "F16", "BF16", "F32",
)  # fmt: skip
_FTYPE_BY_NAME = {name: ftype for ftype, name in LLAMA_FILE_TYPES.items()}
QUANT_TARGETS: dict[str, int] = {name: _FTYPE_BY_NAME[name] for name in _TARGET_ORDER}
"""Every file type llama.cpp can quantize to: name -> ``llama_ftype``."""

_ALIASES = {"Q3_K": "Q3_K_M", "Q4_K": "Q4_K_M", "Q5_K": "Q5_K_M", "FP16": "F16", "FP32": "F32"}

#: Common types from largest to smallest (bits per weight), for "the next smaller type".
_BY_SIZE = ("F32", "BF16", "F16", "Q8_0", "Q6_K", "Q5_K_M", "Q5_K_S", "Q5_0", "Q4_K_M", "Q4_K_S",
            "IQ4_XS", "Q4_0", "Q3_K_L", "Q3_K_M", "Q3_K_S", "Q2_K")  # fmt: skip


def smaller_target(file_type: str) -> str | None:
    """The next common type smaller than ``file_type`` (Q4_K_M → Q4_K_S), or None."""
    key = _ALIASES.get(file_type.upper(), file_type.upper())
    if key not in _BY_SIZE or key == _BY_SIZE[-1]:
        return None
    return _BY_SIZE[_BY_SIZE.index(key) + 1]


IMATRIX_HINT_TYPES = frozenset(
    {"IQ1_S", "IQ1_M", "IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ2_M", "IQ3_XXS", "IQ3_XS", "Q2_K_S"}
)
"""Types whose main tensors llama.cpp refuses to make without an importance matrix.

The dry run (``predict``) is the authority for a given model; this set is for listing types
before any file is chosen.
"""


def target_name(name: str) -> str:
    """Canonical target name for ``name`` (case-insensitive, aliases resolved) or QuantizeError."""
    key = name.strip().upper()
    key = _ALIASES.get(key, key)
    if key not in QUANT_TARGETS:
        raise QuantizeError(
            f"'{name}' is not a quantization type llama.cpp offers.",
            "Types: " + ", ".join(QUANT_TARGETS),
        )
    return key


def tensor_type_id(name: str) -> int:
    """ggml tensor type id for a name such as "q8_0" or "F16" (for per-tensor overrides)."""
    key = name.strip().upper()
    for type_id, gtype in GGML_TYPES.items():
        if gtype.name == key:
            return type_id
    raise QuantizeError(
        f"'{name}' is not a ggml tensor type.",
        "Types: " + ", ".join(t.name for t in GGML_TYPES.values()),
    )


def target_summary(name: str) -> str:
    """A few sentences on a target type: bits per weight, what it is for, its family."""
    info = quant_info(name)
    text = f"{info.bits_per_weight:g} bits/weight. {info.summary}" if info else ""
    if name in REFERENCE_PPL_INCREASE:
        text += (
            f" Typical loss: perplexity +{REFERENCE_PPL_INCREASE[name]:.4g} on Llama-3-8B "
            "(llama.cpp's measurement)."
        )
    if info is not None and info.family in FAMILY_NOTES:
        text += " " + FAMILY_NOTES[info.family]
    if name in IMATRIX_HINT_TYPES:
        text += " Needs an importance matrix."
    if name in {"Q1_0", "Q2_0", "MXFP4_MOE"}:
        text = text or "A special-purpose type; pick it only when the model was made for it."
    return text.strip()


@dataclass(frozen=True)
class QuantizeOptions:
    """One quantization: target type plus llama-quantize's options that change the result."""

    target: str
    allow_requantize: bool = False
    output_tensor_type: str | None = None
    token_embedding_type: str | None = None
    leave_output_unquantized: bool = False
    pure: bool = False
    imatrix: Path | None = None
    threads: int = 0

    def normalized(self) -> QuantizeOptions:
        """A copy with canonical names; raises QuantizeError on an unknown type."""
        return QuantizeOptions(
            target=target_name(self.target),
            allow_requantize=self.allow_requantize,
            output_tensor_type=_type_or_none(self.output_tensor_type),
            token_embedding_type=_type_or_none(self.token_embedding_type),
            leave_output_unquantized=self.leave_output_unquantized,
            pure=self.pure,
            imatrix=Path(self.imatrix) if self.imatrix else None,
            threads=self.threads if self.threads > 0 else (os.cpu_count() or 1),
        )

    def child_job(self, source: Path, output: Path | None, *, dry_run: bool) -> dict[str, Any]:
        """The JSON job the quantize child process runs."""
        opts = self.normalized()
        job = asdict(opts)
        job.update(
            source=str(source),
            output=str(output) if output else "",
            ftype=QUANT_TARGETS[opts.target],
            output_tensor_type_id=_id_or_none(opts.output_tensor_type),
            token_embedding_type_id=_id_or_none(opts.token_embedding_type),
            imatrix=str(opts.imatrix) if opts.imatrix else None,
            dry_run=dry_run,
        )
        return job


def _type_or_none(name: str | None) -> str | None:
    if not name:
        return None
    type_id = tensor_type_id(name)
    return GGML_TYPES[type_id].name


def _id_or_none(name: str | None) -> int | None:
    return tensor_type_id(name) if name else None
