"""Plain-words text about a quantization, shared by the CLI and the Quantize dialog."""

from __future__ import annotations

import shutil
from pathlib import Path

from quantdesk.engine.estimate.fit import FitResult, fit_words
from quantdesk.engine.estimate.load_plan import Budget, fit_within
from quantdesk.engine.estimate.memory import EstimateParams
from quantdesk.engine.gguf.model_info import human_bytes
from quantdesk.engine.quantize.quantizer import QuantizePrediction, QuantizeResult, SourceInfo


def source_line(info: SourceInfo) -> str:
    """"model.gguf: F16, 543 MB, 236 tensors (F16 x127, F32 x109)"."""
    return (
        f"{info.path.name}: {info.file_type}, {human_bytes(info.size_bytes)}, "
        f"{len(info.header.tensors)} tensors ({info.precision})"
    )


def result_fit(prediction: QuantizePrediction, budget: Budget, n_ctx: int = 4096) -> FitResult:
    """How the quantized model would fit this machine at ``n_ctx`` (from the estimator)."""
    return fit_within([prediction.header], EstimateParams(n_ctx=n_ctx), budget)


def plan_lines(
    info: SourceInfo, prediction: QuantizePrediction, budget: Budget | None, output: Path
) -> list[str]:
    """Predicted size, the tensor type mix, memory need and disk space, one fact per line."""
    ratio = prediction.size_bytes / info.size_bytes if info.size_bytes else 0.0
    counts = sorted(prediction.type_mix.items(), key=lambda kv: -kv[1])
    mix = ", ".join(f"{name} x{count}" for name, count in counts)
    lines = [
        f"Predicted size: {human_bytes(prediction.size_bytes)} ({prediction.size_bytes:,} bytes, "
        f"{ratio * 100:.0f} % of the source)",
        f"Tensor types: {mix}",
    ]
    if budget is not None:
        result = result_fit(prediction, budget)
        est = result.estimate
        vram = f" + {human_bytes(est.vram)} VRAM" if est.vram else ""
        verdict = (
            "does not fit this machine"
            if result.verdict == "no_fit"
            else f"fits this machine ({fit_words(result)})"
        )
        lines.append(
            f"Memory to run it at {est.n_ctx:,} tokens of context: about "
            f"{human_bytes(est.peak_ram)} RAM{vram}; {verdict}"
        )
    folder = output.parent if output.parent.is_dir() else Path.cwd()
    free = shutil.disk_usage(folder).free
    lines.append(f"Free disk space in {folder}: {human_bytes(free)}")
    if prediction.requires_imatrix:
        lines.append(
            f"{prediction.target} needs an importance matrix: choose one, or compute one "
            "(dialog: Advanced options → Compute…; CLI: --imatrix-from TEXT)."
        )
    return lines


def result_line(result: QuantizeResult) -> str:
    """"model-Q4_K_M.gguf: 253 MB in 7.1 s (predicted 253 MB, +0.00 %)"."""
    return (
        f"{result.output.name}: {human_bytes(result.size_bytes)} in {result.seconds:.1f} s "
        f"(predicted {human_bytes(result.predicted_bytes)}, "
        f"{result.prediction_error * 100:+.2f} %)"
    )
