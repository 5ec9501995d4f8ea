"""The hardware report: what this machine has and what the llama.cpp build can use of it.

Plain frozen dataclasses, filled by :func:`quantdesk.engine.hardware.machine.probe_hardware`
and shown by the CLI (``quantdesk hw``) and the GUI's hardware panel. Sizes are bytes; a size
the probe could not learn is None, never a made-up number.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class ProbeNote:
    """Why a probe found nothing (or less than it looks for): ``source`` names the probe."""

    source: str  # "NVIDIA", "AMD", "Apple Metal", "CPU features", ...
    message: str  # "not detected: NVML library not found (no NVIDIA driver installed)"


@dataclass(frozen=True)
class CpuInfo:
    """The processor and the SIMD instruction sets it reports."""

    name: str
    arch: str  # platform.machine(): x86_64, arm64, aarch64, AMD64
    physical_cores: int
    logical_cores: int
    simd: tuple[str, ...]  # lower-case names: avx, avx2, fma, f16c, avx512f, neon, dotprod...
    amx: tuple[str, ...]  # amx_tile, amx_int8, amx_bf16 (listed apart: see amx_note)
    amx_note: str  # empty when the CPU has no AMX
    simd_source: str  # where the features were read: "/proc/cpuinfo", "sysctl", ...


@dataclass(frozen=True)
class MemoryInfo:
    """System RAM and swap, bytes."""

    ram_total: int
    ram_available: int
    swap_total: int
    swap_free: int


@dataclass(frozen=True)
class GpuInfo:
    """One GPU as its vendor's tool reports it."""

    vendor: str  # "NVIDIA", "AMD", "Apple"
    index: int
    name: str
    api: str  # how it was read: "NVML", "rocm-smi", "amd-smi", "Metal (llama.cpp)", "sysctl"
    memory_total: int | None
    memory_free: int | None
    memory_used: int | None
    driver: str = ""  # driver version, where the tool tells it
    compute: str = ""  # e.g. "CUDA 12.4" (the newest CUDA the driver supports)
    unified_memory: bool = False  # Apple: the GPU shares system RAM
    working_set_limit: int | None = None  # Apple: how much of it Metal lets one process use
    working_set_source: str = ""  # how working_set_limit was learned (exact or an estimate)
    usable_by_build: bool = False  # the installed llama.cpp build can offload to this GPU


@dataclass(frozen=True)
class BuildDevice:
    """A device registered in the installed llama.cpp (ggml) build."""

    backend: str  # ggml backend registry name: "CPU", "CUDA", "Metal", "Vulkan", "ROCm"...
    name: str  # "CPU", "CUDA0", "MTL0", "Vulkan0"
    description: str  # "AMD EPYC", "NVIDIA GeForce RTX 4090"
    kind: str  # "CPU", "GPU", "iGPU", "accelerator", "meta"
    memory_free: int | None
    memory_total: int | None


@dataclass(frozen=True)
class LlamaBuildInfo:
    """What the installed llama-cpp-python build was compiled with."""

    available: bool  # llama_cpp imports
    version: str  # llama-cpp-python's version
    backends: tuple[str, ...]  # compiled-in ggml backends, e.g. ("CPU",) or ("CPU", "CUDA")
    devices: tuple[BuildDevice, ...]
    gpu_offload: bool  # at least one GPU device llama.cpp can offload layers to
    max_devices: int
    libraries: tuple[str, ...]  # ggml libraries shipped in llama_cpp/lib: "ggml-cpu", ...
    cpu_features: tuple[str, ...]  # what the CPU backend was compiled for: "AVX2", "FMA"...
    system_info: str  # llama_print_system_info(), verbatim
    verdict: str  # one line a person reads: what offload this build can do and what to do


@dataclass(frozen=True)
class HardwareReport:
    """Everything the probes found, plus the reasons for what they did not find."""

    os_name: str  # "Linux", "Darwin", "Windows"
    os_release: str
    arch: str
    cpu: CpuInfo
    memory: MemoryInfo
    gpus: tuple[GpuInfo, ...]
    build: LlamaBuildInfo
    notes: tuple[ProbeNote, ...]  # "not detected" reasons and probe failures
    warnings: tuple[str, ...]  # things to act on: a GPU this build cannot use, a CPU mismatch
    probe_seconds: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (tuples become lists)."""
        return asdict(self)

    def notes_for(self, source: str) -> tuple[ProbeNote, ...]:
        """The notes one probe left, e.g. ``notes_for("NVIDIA")``."""
        return tuple(note for note in self.notes if note.source == source)
