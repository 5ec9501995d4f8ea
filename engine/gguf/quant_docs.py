"""What each llama.cpp quantization type means, in plain words.

Post-training quantization (PTQ) stores each weight in fewer bits after
training, with no retraining: a block of weights shares a scale (and sometimes
a minimum), and each weight keeps only a small integer. llama.cpp's K-quants
use two levels of scales (super-blocks of 256 weights) and mix precisions
across tensors (the attention V and FFN down projections get more bits in the
_M and _L variants); IQ types add lattice codebooks and an importance matrix so
the bits go where they matter most. Fewer bits: smaller and faster, but more
rounding error, which shows first in facts, arithmetic and long reasoning.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class QuantInfo:
    """A quantization type: nominal bits per weight and a one-line explanation."""

    name: str
    bits_per_weight: float
    family: str  # "float", "legacy", "k-quant", "i-quant", "ternary"
    summary: str


def _q(name: str, bpw: float, family: str, summary: str) -> QuantInfo:
    return QuantInfo(name, bpw, family, summary)


_ALL = (
    _q("F32", 32.0, "float", "Full 32-bit floats: the unquantized reference, 4 bytes per weight."),
    _q("F16", 16.0, "float", "16-bit floats: practically lossless, twice the size of 8-bit."),
    _q("BF16", 16.0, "float", "bfloat16: the format most models are trained in; lossless."),
    _q(
        "Q8_0",
        8.5,
        "legacy",
        "8-bit integers per block of 32 with one scale (INT8): "
        "quality indistinguishable from F16 in practice, half its size.",
    ),
    _q("Q6_K", 6.56, "k-quant", "6-bit K-quant: near-lossless; a safe choice when it fits."),
    _q("Q5_K_M", 5.69, "k-quant", "5-bit K-quant, mixed precision: very close to the original."),
    _q("Q5_K_S", 5.54, "k-quant", "5-bit K-quant, small: slightly lower quality than Q5_K_M."),
    _q("Q5_1", 6.0, "legacy", "Legacy 5-bit with scale and minimum; superseded by Q5_K."),
    _q("Q5_0", 5.5, "legacy", "Legacy 5-bit with one scale per 32 weights; superseded by Q5_K."),
    _q(
        "Q4_K_M",
        4.89,
        "k-quant",
        "4-bit K-quant, mixed precision (INT4 class): the usual "
        "sweet spot, small quality loss for about 30 % of the F16 size.",
    ),
    _q(
        "Q4_K_S",
        4.58,
        "k-quant",
        "4-bit K-quant, small: a bit smaller and a bit worse than Q4_K_M.",
    ),
    _q("Q4_1", 5.0, "legacy", "Legacy 4-bit with scale and minimum; superseded by Q4_K."),
    _q(
        "Q4_0",
        4.5,
        "legacy",
        "Legacy 4-bit, one scale per 32 weights; fast on ARM (repacked), "
        "lower quality than Q4_K_M.",
    ),
    _q("IQ4_XS", 4.25, "i-quant", "4-bit i-quant: about Q4_K_S quality in less space."),
    _q("IQ4_NL", 4.5, "i-quant", "4-bit non-linear i-quant with blocks of 32."),
    _q("MXFP4", 4.25, "float", "4-bit micro-scaled floats (OCP MXFP4), used by some new models."),
    _q("Q3_K_L", 4.27, "k-quant", "3-bit K-quant, large: noticeable loss; for tight memory."),
    _q("Q3_K_M", 3.91, "k-quant", "3-bit K-quant, mixed: noticeable loss in facts and reasoning."),
    _q("Q3_K_S", 3.5, "k-quant", "3-bit K-quant, small: clear quality loss."),
    _q("IQ3_M", 3.66, "i-quant", "3-bit i-quant, medium: better than Q3_K_S at similar size."),
    _q("IQ3_S", 3.44, "i-quant", "3-bit i-quant."),
    _q("IQ3_XS", 3.3, "i-quant", "3-bit i-quant, extra small."),
    _q("IQ3_XXS", 3.06, "i-quant", "3-bit i-quant, smallest 3-bit type."),
    _q(
        "Q2_K",
        2.96,
        "k-quant",
        "2-bit K-quant (INT2 class): large quality loss; last resort "
        "for big models that do not fit otherwise.",
    ),
    _q("IQ2_M", 2.7, "i-quant", "2-bit i-quant, medium: needs an importance matrix."),
    _q("IQ2_S", 2.5, "i-quant", "2-bit i-quant: needs an importance matrix."),
    _q("IQ2_XS", 2.31, "i-quant", "2-bit i-quant, extra small: heavy loss."),
    _q("IQ2_XXS", 2.06, "i-quant", "2-bit i-quant, smallest: heavy loss; only for huge models."),
    _q("IQ1_M", 1.75, "i-quant", "1.75-bit i-quant: severe loss; experimental."),
    _q("IQ1_S", 1.56, "i-quant", "1.56-bit i-quant: severe loss; experimental."),
    _q(
        "TQ2_0", 2.06, "ternary", "Ternary (-1, 0, 1) weights for models trained that way (BitNet)."
    ),
    _q("TQ1_0", 1.69, "ternary", "Ternary weights, packed tighter; only for BitNet-style models."),
)

QUANT_INFO: dict[str, QuantInfo] = {q.name: q for q in _ALL}


def quant_info(name: str) -> QuantInfo | None:
    """The explanation of quant type ``name`` (case-insensitive; FP16 = F16), if known."""
    key = name.upper().replace("FP16", "F16").replace("FP32", "F32")
    return QUANT_INFO.get(key)


def quality_rank(name: str) -> float:
    """A sortable quality figure: nominal bits per weight (unknown types rank lowest)."""
    info = quant_info(name)
    return info.bits_per_weight if info is not None else 0.0


PRIMER = (
    "Quantization stores each weight in fewer bits after training (post-training "
    "quantization, no retraining): smaller files, less memory and faster generation, paid "
    "for with rounding error. K-quants (Q2_K…Q6_K) mix precisions: the _S, _M and _L "
    "variants give the tensors that matter most (attention V, FFN down) more bits. I-quants "
    "(IQ…) squeeze more quality out of few bits with codebooks; an importance matrix "
    "(imatrix), measured on sample text, tells the quantizer which weights matter, which "
    "helps every low-bit type and is required below about 3 bits."
)
"""The short explanation shown above the Quantize dialog's type picker."""

FAMILY_NOTES = {
    "float": "No quantization: a float format (F32 and BF16 are lossless, F16 practically so).",
    "legacy": "A legacy block format, kept for compatibility; K-quants of similar size do better.",
    "k-quant": "K-quant: blocks of 256 weights with two levels of scales, mixed precision "
    "across tensors.",
    "i-quant": "I-quant: codebook quantization; an importance matrix improves it noticeably.",
    "ternary": "Ternary: only for models trained with -1/0/+1 weights (BitNet-style); "
    "ordinary models turn to nonsense.",
}
"""One line per quant family, shown under the chosen type."""


REFERENCE_PPL_INCREASE = {
    "Q4_0": 0.4685, "Q4_1": 0.4511, "Q5_0": 0.1316, "Q5_1": 0.1062, "Q2_K": 3.5199,
    "Q2_K_S": 3.1836, "Q3_K_S": 1.6321, "Q3_K_M": 0.6569, "Q3_K_L": 0.5562, "Q4_K_S": 0.2689,
    "Q4_K_M": 0.1754, "Q5_K_S": 0.1049, "Q5_K_M": 0.0569, "Q6_K": 0.0217, "Q8_0": 0.0026,
}  # fmt: skip
"""Perplexity increase over F16 that llama.cpp's llama-quantize lists for Llama-3-8B."""
