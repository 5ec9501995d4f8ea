"""More than one machine, on llama.cpp's own RPC backend (ggml-rpc).

A worker (``quantdesk rpc-worker``) runs llama.cpp's RPC server over its CPU: the same
``ggml_backend_rpc_start_server`` llama.cpp's ``rpc-server`` tool calls. A process that loads a
model split across workers adds each worker's devices (``ggml_backend_rpc_add_server``, as
llama.cpp's ``--rpc`` option does); llama.cpp then offloads ``n_gpu_layers`` layers to them,
shared out by ``tensor_split``, and keeps the rest on the local CPU.

Two facts shape how the app uses it:

* RPC traffic is neither authenticated nor encrypted: anyone who reaches a worker's port can
  make it allocate memory and run computations. Workers listen on 127.0.0.1 unless told
  otherwise, and say so when they are told otherwise.
* llama.cpp aborts the whole process when a worker cannot be reached or stops answering
  (``GGML_ABORT`` in ggml-rpc). Worker memory is therefore asked in a child process
  (:func:`worker_memory`), and the app never talks RPC from its GUI process.
"""

from __future__ import annotations

import ctypes
import functools
import ipaddress
import json
import os
import secrets
import socket
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

from quantdesk.engine.child_process import emit, exit_with_parent, module_command, run_child
from quantdesk.engine.errors import ModelLoadError, QuantDeskError
from quantdesk.engine.estimate.fit import budgets, largest_true
from quantdesk.engine.estimate.hparams import model_shape
from quantdesk.engine.estimate.memory import EstimateParams, MemoryEstimate, estimate
from quantdesk.engine.gguf.model_info import human_bytes
from quantdesk.engine.gguf.reader import GGUFHeader
from quantdesk.engine.hardware.llama_build import ggml_library, load_llama_library
from quantdesk.engine.params import AUTO_GPU_LAYERS, LoadSettings

DEFAULT_PORT = 50052  # llama.cpp's rpc-server default
CONNECT_TIMEOUT_S = 3.0


class RPCError(QuantDeskError):
    """A worker address is malformed, a worker does not answer, or the build has no RPC."""


@dataclass(frozen=True)
class WorkerMemory:
    """What a worker's device reports (bytes)."""

    endpoint: str
    free: int
    total: int


def parse_endpoint(text: str) -> str:
    """``host:port`` as llama.cpp takes it (``host`` alone: port 50052)."""
    value = text.strip()
    host, sep, port = value.rpartition(":")
    if not sep:
        host, port = value, str(DEFAULT_PORT)
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise RPCError(f"'{text}' is not a worker address such as 192.168.1.20:{DEFAULT_PORT}.")
    return f"{host}:{int(port)}"


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this computer only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@functools.lru_cache(maxsize=1)
def rpc_library() -> ctypes.CDLL:
    """llama.cpp's RPC backend library (the copy libggml loads), with the prototypes of the
    calls QuantDesk makes."""
    ptr, size = ctypes.c_void_p, ctypes.c_size_t
    rpc = load_llama_library("ggml-rpc", (
        ("ggml_backend_rpc_start_server", None,
         [ctypes.c_char_p, ctypes.c_char_p, size, size, ctypes.POINTER(ptr)]),
        ("ggml_backend_rpc_add_server", ptr, [ctypes.c_char_p]),
        ("ggml_backend_rpc_get_device_memory", None,
         [ctypes.c_char_p, ctypes.c_uint32, ctypes.POINTER(size), ctypes.POINTER(size)]),
    ))  # fmt: skip
    if rpc is None:
        raise RPCError(
            "This llama.cpp build has no RPC backend: scripts/setup_env.sh builds "
            "llama-cpp-python with GGML_RPC=ON (run it again), or install a build made with "
            "-DGGML_RPC=ON."
        )
    return rpc


def rpc_available() -> bool:
    """Whether the installed llama.cpp was built with its RPC backend."""
    try:
        rpc_library()
    except (RPCError, ImportError, OSError):
        return False
    return True


def reachable(endpoint: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Raise RPCError unless something accepts connections at ``endpoint`` (checked before
    llama.cpp talks to it: llama.cpp aborts the process on a worker it cannot reach)."""
    host, _, port = endpoint.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except OSError as exc:
        raise RPCError(
            f"The RPC worker at {endpoint} does not answer ({exc.strerror or exc}). Start it "
            f"there with `quantdesk rpc-worker --host <its address> --port {port}`."
        ) from exc


def serve_worker(host: str, port: int, threads: int, cache_dir: Path | None = None) -> None:
    """Run llama.cpp's RPC server over this computer's CPU until the process ends."""
    rpc, ggml = rpc_library(), ggml_library()
    cpu = ggml.ggml_backend_dev_by_type(0)  # GGML_BACKEND_DEVICE_TYPE_CPU
    if not cpu:
        raise RPCError("llama.cpp reports no CPU device to serve.")
    devices = (ctypes.c_void_p * 1)(cpu)
    endpoint = f"{host}:{port}".encode()
    cache = str(cache_dir).encode() if cache_dir is not None else None
    rpc.ggml_backend_rpc_start_server(endpoint, cache, threads, 1, devices)


_attached: dict[str, list[int]] = {}  # endpoint -> its devices, in this process


def attach_workers(endpoints: tuple[str, ...]) -> list[int]:
    """Make the workers' devices llama.cpp devices of this process (in the order given; once
    per endpoint, as llama.cpp's ``--rpc`` does); returns their handles."""
    devices: list[int] = []
    for endpoint in endpoints:
        if endpoint not in _attached:
            reachable(endpoint)
            rpc, ggml = rpc_library(), ggml_library()
            reg = rpc.ggml_backend_rpc_add_server(endpoint.encode())
            if not reg:
                raise ModelLoadError(f"The RPC worker at {endpoint} offers no device.")
            ggml.ggml_backend_register(reg)
            count = ggml.ggml_backend_reg_dev_count(reg)
            _attached[endpoint] = [ggml.ggml_backend_reg_dev_get(reg, i) for i in range(count)]
        devices += _attached[endpoint]
    return devices


def _device_memory(endpoint: str) -> WorkerMemory:
    """Ask a worker for its device's memory, in this process (see :func:`worker_memory`)."""
    reachable(endpoint)
    free, total = ctypes.c_size_t(), ctypes.c_size_t()
    rpc_library().ggml_backend_rpc_get_device_memory(endpoint.encode(), 0, free, total)
    return WorkerMemory(endpoint, free.value, total.value)


def worker_memory(endpoint: str, timeout_s: float = 30.0) -> WorkerMemory:
    """The memory a worker reports, asked from a child process (a worker that dies mid-answer
    aborts only that process)."""
    endpoint = parse_endpoint(endpoint)
    reachable(endpoint)
    answers: list[dict] = []
    outcome = run_child(__name__, ["memory", endpoint], answers.append, timeout_s=timeout_s)
    for answer in answers:
        if "error" in answer:
            raise RPCError(answer["error"])
        return WorkerMemory(endpoint, int(answer["free"]), int(answer["total"]))
    why = "it did not answer in time" if outcome.timed_out else outcome.output_tail[-300:]
    raise RPCError(f"The RPC worker at {endpoint} could not be asked for its memory: {why}")


def plan_split(headers: Sequence[GGUFHeader], load: LoadSettings, workers_free: list[int],
               local_free: int) -> tuple[int, tuple[float, ...]]:  # fmt: skip
    """``(n_gpu_layers, tensor_split)``: how many layers go to the workers (llama.cpp offloads
    the last ``n_gpu_layers``, shared out by ``tensor_split``; the rest stay here).

    The layers are shared in proportion to the memory each side has free, then moved so that
    the memory estimator's figures fit: at least as many on the workers as this computer's RAM
    needs gone, at most as many as the workers' memory holds together (the estimator's device
    figures, with its safety margins). ModelLoadError when no split fits.
    """
    if not workers_free:
        return 0, ()
    total = model_shape(headers).n_layer + 1
    pool = sum(workers_free)
    wanted = max(1, min(total, round(total * pool / max(1, pool + max(0, local_free)))))
    params = EstimateParams.from_load_settings(load.with_(n_gpu_layers=0))
    ram, vram = budgets(local_free, pool)

    def on_workers(k: int) -> MemoryEstimate:
        return estimate(headers, params.with_(n_gpu_layers=k), offload=True, gpu_backend=False)

    def worker_bytes(k: int) -> int:
        """What k offloaded layers take on the workers: their weights and KV cache (the
        estimator's offloaded device), plus a compute buffer like this CPU's (a worker computes
        on its CPU: none of a GPU runtime's overhead)."""
        if k == 0:
            return 0
        est = on_workers(k)
        offloaded = next((d for name, d in est.devices.items() if name != "CPU"), None)
        if offloaded is None:
            return 0
        return offloaded.weights + offloaded.kv_cache + est.devices["CPU"].compute_resident

    most = largest_true(0, total, lambda k: worker_bytes(k) <= vram)
    fewest = total - largest_true(0, total, lambda k: on_workers(total - k).peak_ram <= ram)
    if most < 0 or fewest > total or fewest > most:
        raise ModelLoadError(
            "The model does not fit across this computer and the workers: about "
            f"{human_bytes(worker_bytes(total))} on the workers ({human_bytes(max(0, vram))} "
            f"usable) or {human_bytes(on_workers(0).peak_ram)} here "
            f"({human_bytes(max(0, ram))} usable)."
        )
    return min(max(wanted, fewest), most), tuple(float(f) for f in workers_free)


def split_across_workers(settings: LoadSettings, headers: Sequence[GGUFHeader]) -> LoadSettings:
    """Attach ``settings.rpc_workers`` to this process and, for "auto" GPU layers, plan the
    split (:func:`plan_split`) from the memory the workers report and this computer's."""
    devices = attach_workers(settings.rpc_workers)
    if settings.n_gpu_layers != AUTO_GPU_LAYERS:
        return settings
    ggml = ggml_library()
    free_each = []
    for device in devices:
        free, total = ctypes.c_size_t(), ctypes.c_size_t()
        ggml.ggml_backend_dev_memory(device, free, total)
        free_each.append(free.value)
    layers, split = plan_split(headers, settings, free_each, psutil.virtual_memory().available)
    return settings.with_(n_gpu_layers=layers, tensor_split=settings.tensor_split or split)


@dataclass
class SplitServer:
    """A ``quantdesk serve`` child process running a model split across RPC workers (the
    process that talks RPC, so that a worker going away ends only it)."""

    url: str
    api_key: str
    model_id: str
    process: subprocess.Popen
    plan: str = ""  # "12 of 19 layers on 2 RPC worker(s), the rest here"

    def stop(self) -> None:
        """End the child process (and so the model's memory on the workers)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_split_server(model: Path, workers: tuple[str, ...], load: LoadSettings,
                       log_file: Path, probe_cache: Path | None = None) -> SplitServer:  # fmt: skip
    """Start a server of ``model`` split across ``workers`` (:mod:`quantdesk.engine.serve.serving`
    in a child process) on a free loopback port with a fresh API key, and wait until it serves
    (RPCError with its last output when it does not)."""
    for endpoint in workers:
        reachable(endpoint)
    key = secrets.token_urlsafe(16)
    split = LoadSettings(n_ctx=load.n_ctx, n_threads=load.n_threads,
                         n_gpu_layers=AUTO_GPU_LAYERS, rpc_workers=workers)  # fmt: skip
    extra = ["--probe-cache", str(probe_cache)] if probe_cache is not None else []
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "w", encoding="utf-8") as log:
        process = subprocess.Popen(
            module_command("quantdesk.engine.serve.serving", str(model), json.dumps(asdict(split)),
                           "--port", "0", "--api-key", key, "--parent-pid", str(os.getpid()),
                           *extra),
            stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL, text=True,
        )  # fmt: skip
    plan, line = "", ""
    for line in process.stdout or ():  # "Split: ..." then "Serving ID at URL (...)"
        if line.startswith("Split: "):
            plan = line.removeprefix("Split: ").strip()
            continue
        break
    if " at http" not in line:
        process.wait()
        said = log_file.read_text(encoding="utf-8", errors="replace").strip().splitlines()
        raise RPCError(
            f"The model could not be loaded across the workers: {said[-1] if said else line}",
            details="\n".join(said[-40:]),
        )
    model_id, url = line.split(" at ", 1)[0].removeprefix("Serving "), line.split(" at ")[1]
    return SplitServer(url.split()[0], key, model_id, process, plan)


def _main(argv: list[str]) -> int:
    """Child side of :func:`worker_memory`:
    ``python -m quantdesk.engine.cluster.rpc memory HOST:PORT``."""
    if len(argv) == 2 and argv[0] == "memory":
        exit_with_parent()  # a worker busy with another client would keep it waiting
        try:
            memory = _device_memory(argv[1])
        except QuantDeskError as exc:
            emit({"error": exc.message})
            return 1
        emit({"free": memory.free, "total": memory.total})
        return 0
    print(json.dumps({"error": f"usage: {__name__} memory HOST:PORT"}))
    return 2


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
