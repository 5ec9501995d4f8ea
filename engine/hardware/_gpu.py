"""GPUs by vendor: NVIDIA through NVML, AMD through rocm-smi / amd-smi, Apple through Metal.

Each probe returns the GPUs it found and, when it found none, a note saying why ("not
detected: NVML library not found (no NVIDIA driver installed)"). None of them raises, and
the external tools run with a timeout (:func:`quantdesk.engine.hardware._sys_tools.run_tool`).
"""

from __future__ import annotations

import json
import platform
import shutil
import sys
from typing import Any

from quantdesk.engine.errors import HardwareProbeError
from quantdesk.engine.hardware._sys_tools import DEFAULT_TIMEOUT_S, run_tool
from quantdesk.engine.hardware.report import GpuInfo, LlamaBuildInfo, ProbeNote

GIB = 2**30
MIB = 2**20
Found = tuple[list[GpuInfo], list[ProbeNote]]


def probe_nvidia() -> Found:
    """NVIDIA GPUs via NVML (nvidia-ml-py): name, memory, driver and CUDA version."""
    try:
        import pynvml
    except ImportError:
        return [], [ProbeNote("NVIDIA", "not detected: nvidia-ml-py (pynvml) is not installed")]
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        return [], [ProbeNote("NVIDIA", f"not detected: {_nvml_reason(pynvml, exc)}")]
    try:
        driver = _text(pynvml.nvmlSystemGetDriverVersion())
        cuda = pynvml.nvmlSystemGetCudaDriverVersion()  # 12040 -> CUDA 12.4
        compute = f"CUDA {cuda // 1000}.{cuda % 1000 // 10}" if cuda else ""
        gpus = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            try:
                mem = pynvml.nvmlDeviceGetMemoryInfo(handle)
                total, free, used = int(mem.total), int(mem.free), int(mem.used)
            except pynvml.NVMLError:  # e.g. NOT_SUPPORTED on some integrated boards
                total = free = used = None
            name = _text(pynvml.nvmlDeviceGetName(handle))
            gpus.append(GpuInfo("NVIDIA", index, name, "NVML", total, free, used, driver, compute))
    except pynvml.NVMLError as exc:
        return [], [ProbeNote("NVIDIA", f"NVML started but failed: {_nvml_reason(pynvml, exc)}")]
    finally:
        try:
            pynvml.nvmlShutdown()
        except pynvml.NVMLError:
            pass
    if not gpus:
        return [], [ProbeNote("NVIDIA", f"not detected: driver {driver} reports no GPUs")]
    return gpus, []


def _nvml_reason(pynvml: Any, exc: Exception) -> str:
    reasons = {
        "NVML_ERROR_LIBRARY_NOT_FOUND": "NVML library not found (no NVIDIA driver installed)",
        "NVML_ERROR_DRIVER_NOT_LOADED": "the NVIDIA driver is installed but not loaded "
        "(reboot, or load the nvidia kernel module)",
        "NVML_ERROR_NO_PERMISSION": "no permission to talk to the NVIDIA driver",
        "NVML_ERROR_LIB_RM_VERSION_MISMATCH": "the NVIDIA driver library and kernel module "
        "versions differ (reboot after the driver update)",
    }
    code = getattr(exc, "value", None)
    for constant, reason in reasons.items():
        if code is not None and code == getattr(pynvml, constant, object()):
            return reason
    return f"NVML error: {exc}"


def probe_amd(timeout: float = DEFAULT_TIMEOUT_S) -> Found:
    """AMD GPUs via ``rocm-smi`` (or ``amd-smi``) when one is on PATH."""
    tools = [t for t in ("rocm-smi", "amd-smi") if shutil.which(t)]
    if not tools:
        why = "not detected: neither rocm-smi nor amd-smi is on PATH (no ROCm tools installed)"
        return [], [ProbeNote("AMD", why)]
    failures = []
    for tool in tools:
        try:
            gpus = _rocm_smi(timeout) if tool == "rocm-smi" else _amd_smi(timeout)
        except HardwareProbeError as exc:
            failures.append(exc.message)
            continue
        if gpus:
            return gpus, []
        failures.append(f"{tool} lists no GPU")
    return [], [ProbeNote("AMD", f"not detected: {'; '.join(failures)}")]


def _rocm_smi(timeout: float) -> list[GpuInfo]:
    # Shape (rocm_smi.py --json): {"card0": {"Card Series": "...", "VRAM Total Memory (B)":
    # "17095983104", "VRAM Total Used Memory (B)": "59891712", ...}, "system": {...}}, sometimes
    # after warning lines; values are strings.
    data = _json_object(
        run_tool(["rocm-smi", "--showproductname", "--showmeminfo", "vram", "--json"], timeout),
        "rocm-smi",
    )
    system = data.get("system")
    driver = str(system.get("Driver version", "")) if _is_dict(system) else ""
    gpus = []
    cards = sorted((k for k in data if k.startswith("card")), key=lambda k: _int(k[4:]) or 0)
    for key in cards:
        card = data[key]
        if not _is_dict(card):
            continue
        total = _int(card.get("VRAM Total Memory (B)"))
        used = _int(card.get("VRAM Total Used Memory (B)"))
        free = total - used if total is not None and used is not None else None
        name = (
            _first_known(
                card, ("Card Series", "Card series", "Card SKU", "Card Model", "Card model")
            )
            or f"AMD GPU ({key})"
        )
        gpus.append(GpuInfo("AMD", _int(key[4:]) or 0, name, "rocm-smi", total, free, used, driver))
    return gpus


def _amd_smi(timeout: float) -> list[GpuInfo]:
    # amd-smi metric --mem-usage --json: [{"gpu": 0, "mem_usage": {"total_vram": {"value": 16368,
    # "unit": "MB"}, "used_vram": ..., "free_vram": ...}}] (older releases: plain numbers, MB;
    # newer ones wrap the list in {"gpu_data": [...]}). amd-smi's "MB" are MiB.
    metrics = _gpu_list(run_tool(["amd-smi", "metric", "--mem-usage", "--json"], timeout))
    names: dict[int, str] = {}
    try:
        for item in _gpu_list(run_tool(["amd-smi", "static", "--asic", "--json"], timeout)):
            asic = item.get("asic")
            name = asic.get("market_name") if _is_dict(asic) else None
            if name:
                names[_int(item.get("gpu")) or 0] = str(name)
    except HardwareProbeError:
        pass  # memory without a name is still worth showing
    gpus = []
    for item in metrics:
        index = _int(item.get("gpu")) or 0
        usage = item.get("mem_usage") if _is_dict(item.get("mem_usage")) else {}
        total, used, free = (_mib(usage.get(k)) for k in ("total_vram", "used_vram", "free_vram"))
        if free is None and total is not None and used is not None:
            free = total - used
        name = names.get(index) or f"AMD GPU {index}"
        gpus.append(GpuInfo("AMD", index, name, "amd-smi", total, free, used))
    return gpus


def probe_apple(ram_total: int, build: LlamaBuildInfo, timeout: float = DEFAULT_TIMEOUT_S) -> Found:
    """The Apple GPU on macOS: unified memory, and how much of it Metal lets llama.cpp use.

    ggml-metal takes its memory figures from Metal itself: total = the device's
    ``recommendedMaxWorkingSetSize``, free = that minus ``currentAllocatedSize``
    (ggml-metal-device.m, ``ggml_metal_device_get_memory``). With a Metal build they are
    read exactly; without one the limit is ``iogpu.wired_limit_mb`` when set, else an estimate.
    """
    if sys.platform != "darwin":
        return [], []
    metal = [d for d in build.devices if d.backend == "Metal"]
    if metal:
        return [
            GpuInfo(
                "Apple",
                i,
                d.description,
                "Metal (llama.cpp)",
                ram_total,
                d.memory_free,
                None,
                unified_memory=platform.machine() == "arm64",
                working_set_limit=d.memory_total,
                working_set_source="exact: Metal's recommendedMaxWorkingSetSize",
                usable_by_build=True,
            )
            for i, d in enumerate(metal)
        ], []
    if platform.machine() != "arm64":
        return [], [
            ProbeNote(
                "Apple Metal",
                "not detected: an Intel Mac's GPU is read only "
                "through Metal, and this llama.cpp build has no Metal",
            )
        ]
    try:
        chip = run_tool(["sysctl", "-n", "machdep.cpu.brand_string"], timeout).strip()
    except HardwareProbeError:
        chip = "Apple silicon"
    limit, source = _working_set_without_metal(ram_total, timeout)
    gpu = GpuInfo(
        "Apple",
        0,
        f"{chip} GPU",
        "sysctl",
        ram_total,
        None,
        None,
        unified_memory=True,
        working_set_limit=limit,
        working_set_source=source,
    )
    return [gpu], []


def _working_set_without_metal(ram_total: int, timeout: float) -> tuple[int, str]:
    try:
        wired_mb = _int(run_tool(["sysctl", "-n", "iogpu.wired_limit_mb"], timeout).strip())
    except HardwareProbeError:
        wired_mb = None
    if wired_mb:  # 0 means "macOS default"; Metal's recommendation follows a set limit
        return wired_mb * MIB, "set by sysctl iogpu.wired_limit_mb"
    share = 2 / 3 if ram_total <= 36 * GIB else 3 / 4
    return int(ram_total * share), (
        "estimate: macOS lets the GPU use about 2/3 of RAM up to 36 GiB and 3/4 above; the "
        "exact figure (Metal's recommendedMaxWorkingSetSize) needs a Metal build of llama.cpp"
    )


def _json_object(text: str, tool: str) -> dict[str, Any]:
    start = text.find("{")
    try:
        data, _end = json.JSONDecoder().raw_decode(text, start) if start >= 0 else (None, 0)
    except ValueError:
        data = None
    if not _is_dict(data):
        sample = " ".join(text.split())[:80] or "nothing"
        raise HardwareProbeError(f"{tool} printed output that is not the expected JSON: {sample}")
    return data


def _gpu_list(text: str) -> list[dict[str, Any]]:
    start = min((i for i in (text.find("["), text.find("{")) if i >= 0), default=-1)
    try:
        data, _end = json.JSONDecoder().raw_decode(text, start) if start >= 0 else (None, 0)
    except ValueError:
        data = None
    if _is_dict(data):
        data = data.get("gpu_data", [data])
    if not isinstance(data, list):
        sample = " ".join(text.split())[:80] or "nothing"
        raise HardwareProbeError(f"amd-smi printed output that is not the expected JSON: {sample}")
    return [item for item in data if _is_dict(item)]


def _is_dict(value: Any) -> bool:
    return isinstance(value, dict)


def _int(value: Any) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def _mib(value: Any) -> int | None:
    if _is_dict(value):
        value = value.get("value")
    number = _int(value)
    return number * MIB if number is not None else None


def _first_known(card: dict[str, Any], keys: tuple[str, ...]) -> str:
    for key in keys:
        value = str(card.get(key) or "").strip()
        if value and value.upper() != "N/A":
            return value
    return ""


def _text(value: str | bytes) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
