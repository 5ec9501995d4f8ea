"""What the installed llama-cpp-python build can do: its ggml backends, devices and CPU flags.

The truth is in the library itself, so the app never promises GPU offload the build cannot
do: the ggml backend registry (``ggml_backend_reg_*`` / ``ggml_backend_dev_*`` in libggml,
which llama_cpp loads but does not wrap) lists the compiled-in backends and the devices they
found; ``llama_print_system_info()`` lists what the CPU backend was compiled for.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import re
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from quantdesk.engine.gguf.model_info import human_bytes
from quantdesk.engine.hardware.report import BuildDevice, GpuInfo, LlamaBuildInfo, ProbeNote

log = logging.getLogger(__name__)
SOURCE = "llama.cpp build"
GPU_KINDS = ("GPU", "iGPU")
_KINDS = ("CPU", "GPU", "iGPU", "accelerator", "meta")  # enum ggml_backend_dev_type
_FRIENDLY = {"MTL": "Metal"}  # ggml-metal registers itself as "MTL"
GPU_BACKENDS = ("CUDA", "ROCm", "MUSA", "Metal", "Vulkan", "SYCL", "OpenCL", "CANN", "WebGPU")
# Which GPU vendors a backend drives; Vulkan/SYCL/OpenCL devices are matched by their names.
_BACKEND_VENDORS = {"CUDA": "NVIDIA", "ROCm": "AMD", "Metal": "Apple"}
_VENDOR_WORDS = {"NVIDIA": ("nvidia", "geforce", "quadro", "tesla"), "AMD": ("amd", "radeon")}
# Backends whose memory query creates a GPU context and aborts the process on a driver error
# (CUDA_CHECK in ggml_cuda_set_device): their free memory comes from NVML / rocm-smi instead.
_NO_MEMORY_QUERY = ("CUDA", "ROCm", "MUSA")
# fmt: off
_LIB_BACKENDS = {"cpu": "CPU", "cuda": "CUDA", "hip": "ROCm", "musa": "MUSA", "metal": "Metal",
                 "vulkan": "Vulkan", "sycl": "SYCL", "opencl": "OpenCL", "blas": "BLAS",
                 "rpc": "RPC", "cann": "CANN", "webgpu": "WebGPU"}
# fmt: on
REBUILD_HINTS = {
    "NVIDIA": "CMAKE_ARGS=-DGGML_CUDA=ON",
    "AMD": "CMAKE_ARGS=-DGGML_HIP=ON (or -DGGML_VULKAN=ON)",
    "Apple": "CMAKE_ARGS=-DGGML_METAL=ON",
}
_ANY_GPU_HINT = (
    "CMAKE_ARGS=-DGGML_CUDA=ON (NVIDIA), -DGGML_HIP=ON (AMD), -DGGML_METAL=ON (Mac) "
    "or -DGGML_VULKAN=ON"
)


def probe_llama_build() -> tuple[LlamaBuildInfo, list[ProbeNote]]:
    """Backends, devices and CPU flags of the installed llama.cpp build; never raises."""
    try:
        import llama_cpp
    except Exception as exc:  # noqa: BLE001 - ImportError, or OSError from a broken library
        verdict = f"llama-cpp-python cannot be loaded ({exc}); reinstall it with `make setup`."
        return _unavailable(verdict), [ProbeNote(SOURCE, f"not loaded: {exc}")]
    from quantdesk.engine.llama.log import route_llama_logs

    route_llama_logs()  # backend registration may log (e.g. "ggml_cuda_init: found 1 CUDA")
    notes: list[ProbeNote] = []
    system_info = llama_cpp.llama_print_system_info().decode("utf-8", "replace").strip()
    libraries = shipped_libraries(Path(llama_cpp.__file__).parent / "lib")
    try:
        backends, devices = _ggml_registry()
        offload = any(d.kind in GPU_KINDS for d in devices)
    except (OSError, AttributeError, ImportError) as exc:
        log.warning("ggml backend registry not readable", exc_info=True)
        notes.append(ProbeNote(SOURCE, f"device list not readable ({exc}); used system info"))
        backends, devices = tuple(_sections(system_info)), ()
        offload = bool(llama_cpp.llama_supports_gpu_offload())
    for lib in libraries:
        backend = _LIB_BACKENDS.get(lib.removeprefix("ggml-").split("-")[0])
        if backend and backend not in backends:
            notes.append(
                ProbeNote(
                    SOURCE,
                    f"{lib} is shipped but llama.cpp did not register the {backend} backend "
                    "(its runtime libraries may be missing)",
                )
            )
    info = LlamaBuildInfo(
        available=True,
        version=getattr(llama_cpp, "__version__", ""),
        backends=backends,
        devices=devices,
        gpu_offload=offload,
        max_devices=int(llama_cpp.llama_max_devices()),
        libraries=libraries,
        cpu_features=tuple(_cpu_features(system_info)),
        system_info=system_info,
        verdict="",
    )
    return replace(info, verdict=offload_verdict(info, ())), notes


def offload_verdict(build: LlamaBuildInfo, gpus: Sequence[GpuInfo]) -> str:
    """One line: what GPU offload this build can do here, and what to do if it cannot."""
    if not build.available:
        return build.verdict
    usable = [d for d in build.devices if d.kind in GPU_KINDS]
    if usable:
        shown = ", ".join(f"{d.name} ({d.description}{_free(d, gpus)})" for d in usable)
        return f"GPU offload available: {shown}."
    if not build.gpu_offload:
        compiled = [b for b in build.backends if b in GPU_BACKENDS]
        if compiled:
            return (
                f"This llama.cpp build has {', '.join(compiled)} but found no device for it "
                "(no GPU, or its driver is missing): GPU offload is off."
            )
        vendors = [g.vendor for g in gpus if g.vendor in REBUILD_HINTS]
        hint = REBUILD_HINTS[vendors[0]] if vendors else _ANY_GPU_HINT
        return (
            "This llama.cpp build is CPU-only: GPU offload is off even if a GPU is present; "
            f"rebuild llama-cpp-python with {hint}."
        )
    return "This llama.cpp build reports GPU offload support (device list unavailable)."


def build_can_use(gpu: GpuInfo, build: LlamaBuildInfo) -> bool:
    """Whether one of the build's GPU devices drives this vendor's GPU."""
    words = _VENDOR_WORDS.get(gpu.vendor, (gpu.vendor.lower(),))
    for dev in build.devices:
        if dev.kind not in GPU_KINDS:
            continue
        if _BACKEND_VENDORS.get(dev.backend) == gpu.vendor:
            return True
        if any(word in dev.description.lower() for word in words):
            return True
    return False


def shipped_libraries(lib_dir: Path) -> tuple[str, ...]:
    """ggml backend libraries in llama_cpp's lib folder: ("ggml-cpu", "ggml-cuda", ...)."""
    pattern = re.compile(r"^(?:lib)?(ggml-[A-Za-z0-9_-]+?)(?:\.so[.0-9]*|\.dylib|\.dll)$")
    try:
        names = {m.group(1) for p in lib_dir.iterdir() if (m := pattern.match(p.name))}
    except OSError:
        return ()
    names.discard("ggml-base")
    return tuple(sorted(names))


def llama_library_file(name: str) -> Path | None:
    """The file of llama.cpp's library ``name`` ("ggml", "ggml-rpc") that libllama itself loads
    (by its soname). A wheel cannot hold symbolic links, so libggml.so and libggml.so.0 are
    separate copies; a copy libllama does not use has a device registry of its own (devices
    registered there never reach a model; llama_cpp._ggml loads such a copy)."""
    import llama_cpp

    folder = Path(llama_cpp.__file__).parent / "lib"
    for file_name in (f"lib{name}.so.0", f"lib{name}.0.dylib", f"{name}.dll", f"lib{name}.so",
                      f"lib{name}.dylib"):  # fmt: skip
        if (folder / file_name).is_file():
            return folder / file_name
    return None


def load_llama_library(name: str, prototypes: Sequence[tuple]) -> ctypes.CDLL | None:
    """llama.cpp's library ``name`` as libllama uses it (:func:`llama_library_file`) with
    ``prototypes`` ((function, restype, argtypes), ...) declared; None when it is not shipped."""
    file = llama_library_file(name)
    if file is None:
        return None
    lib = ctypes.CDLL(str(file))
    for fn, res, args in prototypes:
        getattr(lib, fn).restype, getattr(lib, fn).argtypes = res, args
    return lib


@functools.lru_cache(maxsize=1)
def ggml_library() -> ctypes.CDLL:
    """The libggml libllama uses (the process's device registry), with the prototypes of the
    calls QuantDesk makes."""
    ptr, size = ctypes.c_void_p, ctypes.c_size_t
    g = load_llama_library("ggml", (
        ("ggml_backend_reg_count", size, []),
        ("ggml_backend_reg_get", ptr, [size]),
        ("ggml_backend_reg_name", ctypes.c_char_p, [ptr]),
        ("ggml_backend_reg_dev_count", size, [ptr]),
        ("ggml_backend_reg_dev_get", ptr, [ptr, size]),
        ("ggml_backend_register", None, [ptr]),
        ("ggml_backend_dev_count", size, []),
        ("ggml_backend_dev_get", ptr, [size]),
        ("ggml_backend_dev_by_type", ptr, [ctypes.c_int]),
        ("ggml_backend_dev_name", ctypes.c_char_p, [ptr]),
        ("ggml_backend_dev_description", ctypes.c_char_p, [ptr]),
        ("ggml_backend_dev_type", ctypes.c_int, [ptr]),
        ("ggml_backend_dev_backend_reg", ptr, [ptr]),
        ("ggml_backend_dev_memory", None, [ptr, ctypes.POINTER(size), ctypes.POINTER(size)]),
    ))  # fmt: skip
    if g is None:
        raise OSError("llama-cpp-python ships no libggml")
    return g


def llama_cpp_source() -> str:
    """The ggml version and llama.cpp commit the installed build was compiled from
    ("ggml 0.25.3, commit 0c1e570"), or "unknown" for a build that does not say."""
    try:
        lib = ggml_library()
        version, commit = lib.ggml_version, lib.ggml_commit
    except (OSError, AttributeError):
        return "unknown"
    for fn in (version, commit):
        fn.restype, fn.argtypes = ctypes.c_char_p, []
    ggml = (version() or b"?").decode("ascii", "replace")
    source = (commit() or b"?").decode("ascii", "replace")
    return f"ggml {ggml}, llama.cpp commit {source}"


def _ggml_registry() -> tuple[tuple[str, ...], tuple[BuildDevice, ...]]:
    g = ggml_library()
    size = ctypes.c_size_t

    def text(raw: bytes | None) -> str:
        return (raw or b"").decode("utf-8", "replace")

    def friendly(reg: int | None) -> str:
        name = text(g.ggml_backend_reg_name(reg))
        return _FRIENDLY.get(name, name)

    backends = tuple(friendly(g.ggml_backend_reg_get(i)) for i in range(g.ggml_backend_reg_count()))
    devices = []
    for i in range(g.ggml_backend_dev_count()):
        dev = g.ggml_backend_dev_get(i)
        backend = friendly(g.ggml_backend_dev_backend_reg(dev))
        kind_id = g.ggml_backend_dev_type(dev)
        free = total = None
        if backend not in _NO_MEMORY_QUERY:
            c_free, c_total = size(0), size(0)
            g.ggml_backend_dev_memory(dev, ctypes.byref(c_free), ctypes.byref(c_total))
            free, total = c_free.value or None, c_total.value or None
        devices.append(
            BuildDevice(
                backend=backend,
                name=text(g.ggml_backend_dev_name(dev)),
                description=text(g.ggml_backend_dev_description(dev)),
                kind=_KINDS[kind_id] if 0 <= kind_id < len(_KINDS) else f"type {kind_id}",
                memory_free=free,
                memory_total=total,
            )
        )
    return backends, tuple(devices)


def _cpu_features(system_info: str) -> list[str]:
    return [k for k, v in _sections(system_info).get("CPU", {}).items() if v == "1"]


def compiled_cpu_features() -> frozenset[str]:
    """Features the installed llama.cpp CPU backend was built with ("AVX2", "REPACK"...).

    Raises ImportError/OSError when llama.cpp cannot be loaded.
    """
    import llama_cpp

    return frozenset(_cpu_features(llama_cpp.llama_print_system_info().decode("utf-8", "replace")))


def _sections(system_info: str) -> dict[str, dict[str, str]]:
    """'CPU : SSE3 = 1 | AVX = 1 | CUDA : ARCHS = 890 | ' -> {"CPU": {...}, "CUDA": {...}}."""
    sections: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for token in (t.strip() for t in system_info.split("|")):
        if " : " in token:
            name, token = (part.strip() for part in token.split(" : ", 1))
            current = sections.setdefault(_FRIENDLY.get(name, name), {})
        if current is not None and " = " in token:
            key, value = (part.strip() for part in token.split(" = ", 1))
            current[key] = value
    return sections


def _free(dev: BuildDevice, gpus: Sequence[GpuInfo]) -> str:
    free = dev.memory_free
    if free is None:
        match = [g.memory_free for g in gpus if g.usable_by_build and g.memory_free is not None]
        free = match[0] if len(match) == 1 else None
    return f", {human_bytes(free)} free" if free is not None else ""


def _unavailable(verdict: str) -> LlamaBuildInfo:
    return LlamaBuildInfo(
        available=False,
        version="",
        backends=(),
        devices=(),
        gpu_offload=False,
        max_devices=0,
        libraries=(),
        cpu_features=(),
        system_info="",
        verdict=verdict,
    )
