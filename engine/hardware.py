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


def hardware_summary() -> str:
    """One line describing the CPU and RAM, for the welcome screen."""
    physical = psutil.cpu_count(logical=False) or os.cpu_count() or 1
    logical = psutil.cpu_count(logical=True) or physical
    ram = psutil.virtual_memory().total / 2**30
    cpu = platform.processor() or platform.machine()
    return (
        f"{cpu}, {physical} cores ({logical} threads), {ram:.0f} GiB RAM; GPU offload: not detected"
    )
