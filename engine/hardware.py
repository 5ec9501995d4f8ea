"""What this machine has: CPU cores and memory (psutil). GPU probes come later."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass

import psutil


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


def cpu_name() -> str:
    """The CPU's marketing name where the OS tells it, else the machine type."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware_summary() -> str:
    """One line describing the CPU and RAM, for the welcome screen."""
    physical = psutil.cpu_count(logical=False) or os.cpu_count() or 1
    logical = psutil.cpu_count(logical=True) or physical
    ram = psutil.virtual_memory().total / 2**30
    return (
        f"{cpu_name()}, {physical} cores ({logical} threads), {ram:.0f} GiB RAM; "
        f"GPU offload: {gpu_offload_status()}"
    )


def gpu_offload_status() -> str:
    """Whether the installed llama.cpp build can offload layers to a GPU at all."""
    try:
        import llama_cpp
    except ImportError:
        return "unknown (llama-cpp-python is not installed)"
    if llama_cpp.llama_supports_gpu_offload():
        return "supported by this llama.cpp build"
    return "not available (this llama.cpp build is CPU-only)"
