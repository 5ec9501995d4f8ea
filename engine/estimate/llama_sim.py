"""Ask llama.cpp itself what it would allocate, without any weights (a dry-run load).

llama.cpp can load a model with ``no_alloc`` (model params) and ``load_mode = NONE``: it reads
the header, places every tensor, sizes the KV cache and reserves the compute graph, but
allocates and reads nothing - the context honours ``no_alloc`` too (the KV buffers are dummies
and the compute size comes from ``ggml_backend_sched_reserve_size``). It only needs a file
whose header is real and whose size is right, so :func:`simulate_load` writes the header bytes
and extends the file to its full size as a sparse file. The load runs in a child process
because llama.cpp aborts the process on some malformed inputs.

In a dry run llama.cpp prints 0.00 MiB for weight and KV *buffers* (they are dummies); the KV
``size =`` lines, the compute and the output buffers carry the real figures, and
``llama_model_size`` gives the total weight bytes.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from quantdesk.engine.child_process import module_command
from quantdesk.engine.errors import SimulationError
from quantdesk.engine.estimate.memory import MIB, EstimateParams, MemoryEstimate, estimate
from quantdesk.engine.gguf.reader import read_header, read_header_from_file
from quantdesk.engine.llama.log_parse import LoggedBuffers, parse_llama_log

SIM_TIMEOUT_S = 120.0
_SPLIT = re.compile(r"^(.*)-(\d{5})-of-(\d{5})\.gguf$")
_RESULT = "QUANTDESK-SIM "


@dataclass(frozen=True)
class SimulatedLoad:
    """llama.cpp's own figures for one set of load parameters (MiB, as it prints them)."""

    params: EstimateParams
    buffers: LoggedBuffers
    model_bytes: int  # llama_model_size: all weights
    n_ctx: int  # what llama_n_ctx reports (padded)
    seconds: float  # this context inside the child (the model load is shared, see load_s)
    load_s: float  # model dry-run load in the child
    log: tuple[str, ...]

    @property
    def kv_mib(self) -> float:
        """KV cache, MiB."""
        return self.buffers.kv_total

    @property
    def compute_mib(self) -> float:
        """All compute buffers, MiB."""
        return self.buffers.compute_total

    @property
    def output_mib(self) -> float:
        """Output (logits) buffer, MiB."""
        return self.buffers.output_total


Source = str | os.PathLike[str] | bytes | Sequence[tuple[bytes, int]]


def _shards(source: Source, file_size: int | None) -> list[tuple[bytes, int]]:
    """(header bytes, file size) of every shard of the model."""
    if isinstance(source, bytes):
        if file_size is None:
            raise SimulationError("The file size is needed to simulate a load from header bytes.")
        return [(source[: read_header(source, file_size).data_offset], file_size)]
    if not isinstance(source, str | os.PathLike):
        return [(data[: read_header(data, size).data_offset], size) for data, size in source]
    path = Path(source)
    paths = [path]
    if m := _SPLIT.match(path.name):
        paths = [
            path.with_name(f"{m.group(1)}-{i:05d}-of-{m.group(3)}.gguf")
            for i in range(1, int(m.group(3)) + 1)
        ]
    out = []
    for p in paths:
        header = read_header_from_file(p)
        with open(p, "rb") as f:
            out.append((f.read(header.data_offset), header.file_size or 0))
    return out


def _write_sparse(folder: Path, shards: list[tuple[bytes, int]]) -> Path:
    """Write each shard as its real header followed by a hole up to its real size."""
    n = len(shards)
    names = (
        ["model.gguf"] if n == 1 else [f"model-{i:05d}-of-{n:05d}.gguf" for i in range(1, n + 1)]
    )
    for name, (head, size) in zip(names, shards, strict=True):
        with open(folder / name, "wb") as f:
            f.write(head)
            f.truncate(size)
    return folder / names[0]


def simulate_loads(
    source: Source,
    params: Sequence[EstimateParams],
    *,
    file_size: int | None = None,
    timeout_s: float = SIM_TIMEOUT_S,
) -> list[SimulatedLoad]:
    """Dry-run load the model once and create one context per entry of ``params``.

    ``source`` is a local GGUF path (split shards are found next to it), the header bytes of
    a remote file (with ``file_size``), or a list of (header bytes, size) per shard.
    Raises SimulationError when llama.cpp refuses the model or crashes.
    """
    if len({p.n_gpu_layers for p in params}) > 1:
        raise SimulationError("One dry run loads the model once: use one n_gpu_layers value.")
    shards = _shards(source, file_size)
    with tempfile.TemporaryDirectory(prefix="quantdesk-sim-") as tmp:
        first = _write_sparse(Path(tmp), shards)
        job = {"path": str(first), "params": [asdict(p) for p in params]}
        env = {**os.environ, "GGML_NO_BACKTRACE": "1"}
        cmd = module_command("quantdesk.engine.estimate._llama_sim_child")
        try:
            proc = subprocess.run(
                cmd,
                input=json.dumps(job),
                capture_output=True,
                text=True,
                timeout=timeout_s,
                env=env,
            )
        except subprocess.TimeoutExpired:
            raise SimulationError(
                f"llama.cpp's dry-run load took longer than {timeout_s:.0f} s."
            ) from None
    if proc.returncode < 0:
        name = signal.Signals(-proc.returncode).name
        raise SimulationError(
            f"llama.cpp crashed ({name}) during the dry-run load: the file's metadata is "
            "inconsistent or unsupported by this llama.cpp build.",
            details=proc.stderr[-4000:],
        )
    payload = next(
        (ln[len(_RESULT) :] for ln in proc.stdout.splitlines() if ln.startswith(_RESULT)), None
    )
    if payload is None:
        raise SimulationError(
            "llama.cpp's dry-run load ended without a result.", details=proc.stderr[-4000:]
        )
    data = json.loads(payload)
    if not data["ok"]:
        raise SimulationError(data["message"], details="\n".join(data.get("log", []))[-4000:])
    model_log = data["model_log"]
    return [
        SimulatedLoad(
            params=p,
            buffers=parse_llama_log(model_log + r["log"]),
            model_bytes=data["model_bytes"],
            n_ctx=r["n_ctx"],
            seconds=r["seconds"],
            load_s=data["load_s"],
            log=tuple(model_log + r["log"]),
        )  # fmt: skip
        for p, r in zip(params, data["contexts"], strict=True)
    ]


def simulate_load(
    source: Source,
    file_size: int | None = None,
    params: EstimateParams | None = None,
    *,
    timeout_s: float = SIM_TIMEOUT_S,
) -> SimulatedLoad:
    """Dry-run load for one set of parameters (see :func:`simulate_loads`)."""
    return simulate_loads(
        source, [params or EstimateParams()], file_size=file_size, timeout_s=timeout_s
    )[0]


def estimate_via_llama(
    source: Source, params: EstimateParams | None = None, *, file_size: int | None = None
) -> MemoryEstimate:
    """The analytic estimate with KV, compute and output figures taken from llama.cpp itself.

    Slower (a child process and a dry-run load: about a second for a 262k-token vocabulary)
    but exact for any architecture this llama.cpp supports; weights and host overhead still
    come from the analytic model, since a dry run reports no weight buffers.
    """
    params = params or EstimateParams()
    shards = _shards(source, file_size)
    headers = [read_header(head, size) for head, size in shards]
    sim = simulate_loads(shards, [params])[0]
    est = estimate(headers, params)
    cpu = est.devices["CPU"]
    kv_gpu = est.devices["GPU"].kv_cache if "GPU" in est.devices else 0
    compute = round(sim.buffers.compute.get("CPU", sim.compute_mib) * MIB)
    devices = dict(est.devices)
    devices["CPU"] = replace(
        cpu, kv_cache=max(0, round(sim.kv_mib * MIB) - kv_gpu), compute=compute,
        output=round(sim.output_mib * MIB), compute_resident=min(cpu.compute_resident, compute),
    )  # fmt: skip
    note = "KV, compute and output buffers as llama.cpp's own dry-run load reports them."
    return replace(est, devices=devices, explanation=est.explanation + (note,))
