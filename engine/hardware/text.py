"""Words for a hardware report, shared by ``quantdesk hw`` and the GUI's hardware panel."""

from __future__ import annotations

from quantdesk.engine.gguf.model_info import human_bytes
from quantdesk.engine.hardware.report import (
    BuildDevice,
    CpuInfo,
    GpuInfo,
    HardwareReport,
    MemoryInfo,
)

GPU_SOURCES = ("NVIDIA", "AMD", "Apple Metal")  # notes shown under "GPUs"
_SIMD_LABELS = {
    "sse4_1": "SSE4.1",
    "sse4_2": "SSE4.2",
    "avx_vnni": "AVX-VNNI",
    "dotprod": "DotProd",
}


def simd_label(name: str) -> str:
    """How people write a feature: avx512_vnni -> AVX-512VNNI, sse4_1 -> SSE4.1."""
    if name in _SIMD_LABELS:
        return _SIMD_LABELS[name]
    if name.startswith("avx512"):
        return "AVX-512" + name.removeprefix("avx512").lstrip("_").upper()
    return name.upper().replace("_", "-")


def cpu_line(cpu: CpuInfo) -> str:
    """'AMD EPYC: 2 cores, 4 threads (x86_64)'."""
    return f"{cpu.name}: {cpu.physical_cores} cores, {cpu.logical_cores} threads ({cpu.arch})"


def simd_line(cpu: CpuInfo) -> str:
    """The SIMD features in one line, or why there are none."""
    if not cpu.simd:
        return "none read" if not cpu.simd_source else f"none listed in {cpu.simd_source}"
    return " ".join(simd_label(name) for name in cpu.simd)


def ram_line(memory: MemoryInfo) -> str:
    """'22.1 GB free of 25.3 GB' (free: available to a new program, as the status bar says)."""
    if not memory.ram_total:
        return "unknown"
    return f"{human_bytes(memory.ram_available)} free of {human_bytes(memory.ram_total)}"


def swap_line(memory: MemoryInfo) -> str:
    """'none' or '3.9 GB free of 4.3 GB'."""
    if not memory.swap_total:
        return "none"
    return f"{human_bytes(memory.swap_free)} free of {human_bytes(memory.swap_total)}"


def gpu_title(gpu: GpuInfo) -> str:
    """'NVIDIA #0'."""
    return f"{gpu.vendor} #{gpu.index}"


def gpu_line(gpu: GpuInfo) -> str:
    """Name, memory, driver; for Apple the unified memory and Metal's working-set limit."""
    parts = [gpu.name]
    if gpu.unified_memory:
        parts.append(f"unified memory {_size(gpu.memory_total)}")
        if gpu.working_set_limit is not None:
            parts.append(f"GPU may use {human_bytes(gpu.working_set_limit)}")
    elif gpu.memory_total is not None:
        free = f"{human_bytes(gpu.memory_free)} free of " if gpu.memory_free is not None else ""
        parts.append(f"{free}{human_bytes(gpu.memory_total)} VRAM")
    else:
        parts.append("memory not reported")
    details = ", ".join(d for d in (f"driver {gpu.driver}" if gpu.driver else "", gpu.compute) if d)
    if details:
        parts.append(details)
    parts.append(f"via {gpu.api}")
    return "; ".join(parts)


def usable_line(gpu: GpuInfo) -> str:
    """Whether the llama.cpp build can offload to this GPU, in words."""
    if gpu.usable_by_build:
        return "this llama.cpp build can offload to it"
    return "this llama.cpp build cannot use it"


def device_line(dev: BuildDevice) -> str:
    """'CUDA0: NVIDIA GeForce RTX 4090 (GPU via CUDA)'; the CPU device is just 'CPU: name'."""
    if dev.kind == "CPU":
        return f"{dev.name}: {dev.description}"
    memory = f", {human_bytes(dev.memory_free)} free" if dev.memory_free else ""
    return f"{dev.name}: {dev.description} ({dev.kind} via {dev.backend}{memory})"


def format_text(report: HardwareReport) -> str:
    """The whole report as readable text (``quantdesk hw``)."""
    cpu, mem, build = report.cpu, report.memory, report.build
    lines = [
        f"System      {report.os_name} {report.os_release} ({report.arch})",
        f"CPU         {cpu_line(cpu)}",
        f"SIMD        {simd_line(cpu)}",
    ]
    if cpu.amx:
        lines.append(f"AMX         {' '.join(simd_label(a) for a in cpu.amx)} ({cpu.amx_note})")
    lines += [f"RAM         {ram_line(mem)}", f"Swap        {swap_line(mem)}", "", "GPUs"]
    for gpu in report.gpus:
        lines += [f"  {gpu_title(gpu)}: {gpu_line(gpu)}", f"    {usable_line(gpu)}"]
        lines += (
            [f"    GPU memory limit: {gpu.working_set_source}"] if gpu.working_set_source else []
        )
    lines += [f"  {n.source}: {n.message}" for n in report.notes if n.source in GPU_SOURCES]
    lines += ["", f"llama.cpp build (llama-cpp-python {build.version or 'not loaded'})"]
    lines += [
        f"  Backends     {', '.join(build.backends) or 'none'}",
        f"  Devices      {'; '.join(device_line(d) for d in build.devices) or 'none'}",
        f"  GPU offload  {'yes' if build.gpu_offload else 'no'}",
        f"  CPU flags    {' '.join(build.cpu_features) or 'unknown'}",
        f"  Verdict      {build.verdict}",
    ]
    other = [n for n in report.notes if n.source not in GPU_SOURCES]
    if report.warnings:
        lines += ["", "Warnings"] + [f"  ! {w}" for w in report.warnings]
    if other:
        lines += ["", "Notes"] + [f"  {n.source}: {n.message}" for n in other]
    return "\n".join(lines)


def _size(value: int | None) -> str:
    return human_bytes(value) if value is not None else "unknown"
