"""What this machine has, and what the installed llama.cpp build can use of it.

:func:`probe_hardware` gathers the CPU (cpu_probe), RAM and swap (psutil), GPUs by vendor
(gpu_probe) and the llama.cpp build's backends (llama_build) into one
:class:`~quantdesk.engine.hardware.report.HardwareReport`. Every probe is guarded: a missing
driver, tool or library becomes a "not detected" note with the reason, never an exception.
The live figures for the status bar (:func:`memory_snapshot`) stay cheap.
"""

from __future__ import annotations

import logging
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TypeVar

import psutil

from quantdesk.engine.gguf.model_info import human_bytes
from quantdesk.engine.hardware._gpu import probe_amd, probe_apple, probe_nvidia
from quantdesk.engine.hardware._sys_tools import DEFAULT_TIMEOUT_S
from quantdesk.engine.hardware.cpu import cpu_name, probe_cpu
from quantdesk.engine.hardware.llama_build import (
    GPU_KINDS,
    REBUILD_HINTS,
    build_can_use,
    offload_verdict,
    probe_llama_build,
)
from quantdesk.engine.hardware.report import (
    CpuInfo,
    GpuInfo,
    HardwareReport,
    LlamaBuildInfo,
    MemoryInfo,
    ProbeNote,
)

__all__ = [
    "HardwareReport",
    "MemorySnapshot",
    "cpu_name",
    "gpu_memory_budget",
    "gpu_offload_status",
    "hardware_summary",
    "memory_snapshot",
    "probe_hardware",
    "ram_budget",
]
log = logging.getLogger(__name__)
T = TypeVar("T")
# llama.cpp CPU build flags (llama_print_system_info) -> the CPU feature each one needs.
# fmt: off
_BUILD_NEEDS = {
    "SSE3": "sse3", "SSSE3": "ssse3", "AVX": "avx", "AVX2": "avx2", "FMA": "fma",
    "F16C": "f16c", "BMI2": "bmi2", "AVX_VNNI": "avx_vnni", "AVX512": "avx512f",
    "AVX512_VBMI": "avx512vbmi", "AVX512_VNNI": "avx512_vnni", "AVX512_BF16": "avx512_bf16",
    "NEON": "neon", "DOTPROD": "dotprod", "MATMUL_INT8": "i8mm", "SVE": "sve",
}
# CPU features that make llama.cpp markedly faster when the build uses them.
_WORTH_BUILDING_FOR = {"avx2": "AVX2", "fma": "FMA", "f16c": "F16C", "avx512f": "AVX512",
                       "dotprod": "DOTPROD"}
# fmt: on
_FULL_LISTS = ("/proc/cpuinfo", "sysctl")  # sources that list every feature we compare


@dataclass(frozen=True)
class MemorySnapshot:
    """Memory figures in bytes."""

    process_rss: int
    total: int
    available: int


def memory_snapshot() -> MemorySnapshot:
    """This process's resident memory and the system's total/available RAM."""
    vm = psutil.virtual_memory()
    return MemorySnapshot(psutil.Process().memory_info().rss, vm.total, vm.available)


def probe_hardware(tool_timeout: float = DEFAULT_TIMEOUT_S) -> HardwareReport:
    """Probe everything; never raises. ``tool_timeout`` bounds each external tool (seconds)."""
    started = time.monotonic()
    notes: list[ProbeNote] = []

    def guarded(source: str, probe: Callable[[], tuple[T, list[ProbeNote]]], fallback: T) -> T:
        try:
            value, found_notes = probe()
        except Exception as exc:  # noqa: BLE001 - a probe bug must not take the app down
            log.warning("%s probe failed", source, exc_info=True)
            notes.append(ProbeNote(source, f"probe failed: {type(exc).__name__}: {exc}"))
            return fallback
        notes.extend(found_notes)
        return value

    cpu = guarded("CPU features", lambda: probe_cpu(tool_timeout), _unknown_cpu())
    memory = guarded("Memory", lambda: (_memory(), []), MemoryInfo(0, 0, 0, 0))
    build = guarded("llama.cpp build", probe_llama_build, _unknown_build())
    gpus: list[GpuInfo] = []
    gpus += guarded("NVIDIA", probe_nvidia, [])
    gpus += guarded("AMD", lambda: probe_amd(tool_timeout), [])
    gpus += guarded("Apple Metal", lambda: probe_apple(memory.ram_total, build, tool_timeout), [])
    gpus = [replace(g, usable_by_build=g.usable_by_build or build_can_use(g, build)) for g in gpus]
    build = replace(build, verdict=offload_verdict(build, gpus))
    return HardwareReport(
        os_name=platform.system(),
        os_release=platform.release(),
        arch=platform.machine(),
        cpu=cpu,
        memory=memory,
        gpus=tuple(gpus),
        build=build,
        notes=tuple(notes),
        warnings=tuple(_warnings(cpu, gpus, build)),
        probe_seconds=time.monotonic() - started,
    )


def gpu_memory_budget(report: HardwareReport | None = None) -> int | None:
    """Free memory (bytes) of the best GPU the llama.cpp build can offload to, else None."""
    report = report or probe_hardware()
    free = [g.memory_free for g in report.gpus if g.usable_by_build and g.memory_free]
    free += [d.memory_free for d in report.build.devices if d.kind in GPU_KINDS and d.memory_free]
    return max(free, default=None)


def ram_budget() -> int:
    """RAM available to a new model right now (bytes)."""
    return int(psutil.virtual_memory().available)


def hardware_summary() -> str:
    """One line describing the CPU and RAM, for the welcome screen."""
    physical = psutil.cpu_count(logical=False) or psutil.cpu_count() or 1
    logical = psutil.cpu_count(logical=True) or physical
    ram = human_bytes(psutil.virtual_memory().total)  # the status bar's unit: "of 25.3 GB"
    return (
        f"{cpu_name()}, {physical} cores ({logical} threads), {ram} RAM; "
        f"GPU offload: {gpu_offload_status()}"
    )


def gpu_offload_status() -> str:
    """Whether the installed llama.cpp build can offload layers to a GPU at all."""
    build, _notes = probe_llama_build()
    if not build.available:
        return "unknown (llama-cpp-python cannot be loaded)"
    if build.gpu_offload:
        gpus = [d.backend for d in build.devices if d.kind in GPU_KINDS]
        return f"supported by this llama.cpp build ({', '.join(dict.fromkeys(gpus))})"
    return "not available (this llama.cpp build is CPU-only)"


def _warnings(cpu: CpuInfo, gpus: list[GpuInfo], build: LlamaBuildInfo) -> list[str]:
    warnings = [
        f"GPU present but this llama.cpp build cannot use it: {gpu.name}. Rebuild "
        f"llama-cpp-python with {REBUILD_HINTS.get(gpu.vendor, 'a GPU backend')} to offload to it."
        for gpu in gpus
        if not gpu.usable_by_build
    ]
    if cpu.simd_source not in _FULL_LISTS or not build.cpu_features:
        return warnings
    have, compiled = set(cpu.simd), set(build.cpu_features)
    missing = [flag for flag, need in _BUILD_NEEDS.items() if flag in compiled and need not in have]
    if missing:
        warnings.append(
            f"This llama.cpp build uses CPU instructions this CPU lacks ({', '.join(missing)}): "
            "loading a model will likely crash. Rebuild llama-cpp-python on this machine."
        )
    unused = [flag for need, flag in _WORTH_BUILDING_FOR.items() if need in have]
    unused = [flag for flag in unused if flag not in compiled]
    if unused:
        warnings.append(
            f"This CPU has {', '.join(unused)} but the llama.cpp build does not use it: models "
            "run slower than they could. Rebuild llama-cpp-python on this machine."
        )
    return warnings


def _memory() -> MemoryInfo:
    vm, swap = psutil.virtual_memory(), psutil.swap_memory()
    return MemoryInfo(int(vm.total), int(vm.available), int(swap.total), int(swap.free))


def _unknown_cpu() -> CpuInfo:
    return CpuInfo(cpu_name(), platform.machine(), 1, 1, (), (), "", "")


def _unknown_build() -> LlamaBuildInfo:
    return LlamaBuildInfo(False, "", (), (), False, 0, (), (), "", "llama.cpp build not probed")
