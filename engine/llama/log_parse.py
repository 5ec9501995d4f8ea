"""Read the buffer sizes llama.cpp prints while it loads a model and creates a context.

Lines like ``load_tensors:   CPU_Mapped model buffer size =   235.16 MiB``,
``llama_kv_cache: size =   12.00 MiB (...)``, ``sched_reserve:        CPU compute buffer size
=   514.50 MiB`` and ``llama_context:        CPU  output buffer size =     1.00 MiB`` become a
:class:`LoggedBuffers`. The same parser reads a real load (verbose llama-cpp-python) and the
weightless dry run of :mod:`quantdesk.engine.estimate.llama_sim`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

_MODEL = re.compile(r"load_tensors:\s+(\S+) model buffer size =\s+([\d.]+) MiB")
_KV_BUF = re.compile(r"llama_kv_cache:\s+(\S+) KV buffer size =\s+([\d.]+) MiB")
_KV_SIZE = re.compile(r"llama_kv_cache: size =\s+([\d.]+) MiB")
_COMPUTE = re.compile(r"sched_reserve:\s+(\S+) compute buffer size =\s+([\d.]+) MiB")
_OUTPUT = re.compile(r"llama_context:\s+(\S+)\s+output buffer size =\s+([\d.]+) MiB")
_N_CTX = re.compile(r"llama_context: n_ctx\s+= (\d+)")
_KV_DEV = re.compile(r"llama_kv_cache: layer\s+(\d+): dev = (\S+)")


@dataclass
class LoggedBuffers:
    """Buffer sizes in MiB (as printed, two decimals) keyed by llama.cpp's buffer name."""

    model: dict[str, float] = field(default_factory=dict)
    kv_buffers: dict[str, float] = field(default_factory=dict)
    kv_total: float = 0.0  # sum of the "llama_kv_cache: size =" lines (exact in dry runs too)
    compute: dict[str, float] = field(default_factory=dict)
    output: dict[str, float] = field(default_factory=dict)
    kv_layer_devices: dict[int, str] = field(default_factory=dict)
    n_ctx: int | None = None

    @property
    def compute_total(self) -> float:
        """All compute buffers together, MiB."""
        return round(sum(self.compute.values()), 2)

    @property
    def output_total(self) -> float:
        """All output buffers together, MiB."""
        return round(sum(self.output.values()), 2)


def _add(target: dict[str, float], name: str, value: str) -> None:
    target[name] = round(target.get(name, 0.0) + float(value), 2)


def parse_llama_log(lines: Iterable[str]) -> LoggedBuffers:
    """Collect the buffer sizes from llama.cpp log lines (later reserves replace earlier)."""
    out = LoggedBuffers()
    for line in lines:
        if m := _MODEL.search(line):
            _add(out.model, m.group(1), m.group(2))
        elif m := _KV_BUF.search(line):
            _add(out.kv_buffers, m.group(1), m.group(2))
        elif m := _KV_SIZE.search(line):
            out.kv_total = round(out.kv_total + float(m.group(1)), 2)
        elif m := _COMPUTE.search(line):
            out.compute[m.group(1)] = float(m.group(2))  # sched_reserve may run again
        elif m := _OUTPUT.search(line):
            out.output[m.group(1)] = float(m.group(2))
        elif m := _N_CTX.search(line):
            out.n_ctx = int(m.group(1))
        elif m := _KV_DEV.search(line):
            out.kv_layer_devices[int(m.group(1))] = m.group(2)
    return out


_LOAD_ERROR = re.compile(r"error loading model:\s*(?:error loading model \w+:\s*)?(.+)")


def load_error_reason(lines: Iterable[str]) -> str | None:
    """Why llama.cpp refused a model, from its log: the text of its first "error loading model:"
    line ("check_tensor_dims: tensor 'blk.0.ffn_gate.weight' has wrong shape; expected 64,
    256, got 64, 128, 1, 1" -> "tensor 'blk.0.ffn_gate.weight' has wrong shape; expected 64,
    256, got 64, 128, 1, 1"); None when the log says nothing specific."""
    for line in lines:
        m = _LOAD_ERROR.search(line)
        if m:
            reason = " ".join(m[1].split()).removeprefix("check_tensor_dims: ")
            return reason.rstrip(".")
    return None


def load_failure_message(name: str, log_lines: list[str]) -> str:
    """What to tell the user when llama.cpp refused to load ``name``, from its log lines."""
    reason = load_error_reason(log_lines)
    if reason:
        return f"llama.cpp could not load '{name}': {reason}."
    if log_lines:
        return f"llama.cpp could not load '{name}'. llama.cpp said: {log_lines[-1]}"
    return (
        f"llama.cpp could not load '{name}'. The file may use an architecture this llama.cpp "
        "build does not support, or there is not enough memory for the chosen context length."
    )
