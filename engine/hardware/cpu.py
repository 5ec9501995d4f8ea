"""The CPU: its name, cores and the SIMD instruction sets llama.cpp's CPU backend cares about.

Read from /proc/cpuinfo on Linux, from sysctl on macOS, from Windows' registry and
IsProcessorFeaturePresent on Windows. Nothing here raises: what cannot be read is left
empty and the reason is returned as a note.
"""

from __future__ import annotations

import os
import platform
import sys

import psutil

from quantdesk.engine.errors import HardwareProbeError
from quantdesk.engine.hardware._sys_tools import DEFAULT_TIMEOUT_S, run_tool
from quantdesk.engine.hardware.report import CpuInfo, ProbeNote

SOURCE = "CPU features"
# fmt: off
# x86 flags in the order people know them; /proc/cpuinfo calls SSE3 "pni".
X86_SIMD = (
    "sse3", "ssse3", "sse4_1", "sse4_2", "avx", "avx2", "fma", "f16c", "bmi2", "avx_vnni",
    "avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd", "avx512vbmi", "avx512_vnni",
    "avx512_bf16",
)
X86_AMX = ("amx_tile", "amx_int8", "amx_bf16", "amx_fp16")
AMX_NOTE = (
    "AMX is listed apart: QuantDesk's llama.cpp build never uses AMX (it is built without "
    "GGML_AMX), so it does not speed anything up here."
)
ARM_SIMD = ("neon", "fp16", "dotprod", "i8mm", "bf16", "sve", "sve2", "sme")
# Linux /proc/cpuinfo "Features" names -> ours (32-bit ARM already says "neon").
_ARM_LINUX = {"asimd": "neon", "neon": "neon", "asimdhp": "fp16", "asimddp": "dotprod",
              "i8mm": "i8mm", "bf16": "bf16", "sve": "sve", "sve2": "sve2", "sme": "sme"}
# macOS sysctl hw.optional keys -> ours.
_ARM_MACOS = {"hw.optional.neon": "neon", "hw.optional.AdvSIMD": "neon",
              "hw.optional.arm.FEAT_FP16": "fp16", "hw.optional.arm.FEAT_DotProd": "dotprod",
              "hw.optional.arm.FEAT_I8MM": "i8mm", "hw.optional.arm.FEAT_BF16": "bf16",
              "hw.optional.arm.FEAT_SME": "sme"}
# Windows IsProcessorFeaturePresent constants (winnt.h); it reports no FMA/F16C flag.
_WINDOWS_PF = {13: "sse3", 36: "ssse3", 37: "sse4_1", 38: "sse4_2", 39: "avx", 40: "avx2",
               41: "avx512f", 19: "neon", 43: "dotprod"}
# fmt: on


def cpu_name() -> str:
    """The CPU's marketing name where the OS tells it, else the machine type."""
    try:
        if sys.platform.startswith("linux"):
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as info:
                for line in info:
                    key = line.split(":", 1)[0].strip()
                    if key in ("model name", "Model", "Hardware") and ":" in line:
                        return line.split(":", 1)[1].strip()
        elif sys.platform == "darwin":
            return run_tool(["sysctl", "-n", "machdep.cpu.brand_string"], 2.0).strip()
        elif sys.platform == "win32":
            return _windows_cpu_name()
    except (OSError, HardwareProbeError):
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def probe_cpu(timeout: float = DEFAULT_TIMEOUT_S) -> tuple[CpuInfo, list[ProbeNote]]:
    """CPU name, core counts and SIMD features, plus notes on what could not be read."""
    notes: list[ProbeNote] = []
    logical = psutil.cpu_count(logical=True) or os.cpu_count() or 1
    physical = psutil.cpu_count(logical=False) or logical
    try:
        flags, source = _simd_flags(timeout)
    except (OSError, HardwareProbeError, ValueError) as exc:
        flags, source = set(), ""
        notes.append(ProbeNote(SOURCE, f"not read: {exc}"))
    if source and not flags:
        notes.append(ProbeNote(SOURCE, f"{source} lists none of the SIMD features llama.cpp uses"))
    amx = tuple(name for name in X86_AMX if name in flags)
    info = CpuInfo(
        name=cpu_name(),
        arch=platform.machine(),
        physical_cores=physical,
        logical_cores=logical,
        simd=tuple(name for name in (*X86_SIMD, *ARM_SIMD) if name in flags),
        amx=amx,
        amx_note=AMX_NOTE if amx else "",
        simd_source=source,
    )
    return info, notes


def _simd_flags(timeout: float) -> tuple[set[str], str]:
    if sys.platform.startswith("linux"):
        return _linux_flags(), "/proc/cpuinfo"
    if sys.platform == "darwin":
        return _macos_flags(timeout), "sysctl"
    if sys.platform == "win32":
        return _windows_flags(), "IsProcessorFeaturePresent"
    raise HardwareProbeError(f"reading CPU features is not supported on {sys.platform}")


def _linux_flags() -> set[str]:
    """x86 "flags" or ARM "Features" of the first processor in /proc/cpuinfo."""
    with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as info:
        for line in info:
            key, _, value = line.partition(":")
            key = key.strip()
            if key == "flags":
                flags = set(value.split())
                return flags | {"sse3"} if "pni" in flags else flags
            if key == "Features":
                return {_ARM_LINUX[f] for f in value.split() if f in _ARM_LINUX}
    raise HardwareProbeError("/proc/cpuinfo has no 'flags' or 'Features' line")


def _macos_flags(timeout: float) -> set[str]:
    if platform.machine() == "arm64":
        values = _sysctl_pairs(run_tool(["sysctl", "hw.optional"], timeout))
        return {name for key, name in _ARM_MACOS.items() if values.get(key) == "1"}
    # Intel Mac: "machdep.cpu.features: FPU ... SSE3 ... AVX1.0 ..." and leaf7 (AVX2, AVX512F...).
    out = run_tool(["sysctl", "machdep.cpu.features", "machdep.cpu.leaf7_features"], timeout)
    words = {w.lower().replace(".", "_") for w in " ".join(_sysctl_pairs(out).values()).split()}
    words |= {"avx"} if "avx1_0" in words else set()
    return words


def _sysctl_pairs(text: str) -> dict[str, str]:
    pairs = (line.split(":", 1) for line in text.splitlines() if ":" in line)
    return {key.strip(): value.strip() for key, value in pairs}


def _windows_flags() -> set[str]:
    import ctypes

    present = ctypes.windll.kernel32.IsProcessorFeaturePresent  # type: ignore[attr-defined]
    return {name for code, name in _WINDOWS_PF.items() if present(code)}


def _windows_cpu_name() -> str:
    import winreg  # type: ignore[import-not-found]

    key = r"HARDWARE\DESCRIPTION\System\CentralProcessor\0"
    with winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE, key) as handle:  # type: ignore[attr-defined]
        name, _kind = winreg.QueryValueEx(handle, "ProcessorNameString")  # type: ignore[attr-defined]
        return str(name).strip()
