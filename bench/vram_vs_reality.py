"""Estimator vs real llama.cpp CUDA allocations: VRAM per device and host RAM, on a GPU machine.

    python bench/vram_vs_reality.py --make-model /tmp/m.gguf       # random ~1.1B llama, F16
    python bench/vram_vs_reality.py --model /tmp/m.gguf [--layers=-1,8,0] [--contexts=4096,32768]
        [--jsonl results.jsonl] [--logs llama_logs.txt] [--out tables.md] [--deadline EPOCH]
    python bench/vram_vs_reality.py --report results.jsonl       # the tables again, from records

The GPU counterpart of bench/estimate_vs_reality.py (same idea: a real load in a fresh child
process, llama.cpp's verbose log parsed with ``parse_llama_log``, compared with
:func:`quantdesk.engine.estimate.memory.estimate`). Each child also reads the GPU's used memory
through NVML at each stage - before llama_cpp is imported, after the import, after the load (model
and context), after one full micro-batch of 512 tokens and after one more token (cuBLAS handles and
ggml's CUDA memory pool appear only when kernels run) - and its resident set (VmRSS/VmHWM). Needs a
CUDA build of llama-cpp-python and nvidia-ml-py; without them it still runs (CPU only). The model is
random (weights do not change any allocation): llama layout, GQA, 32000 tokens.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MIB = 1 << 20

# Llama-3.2-1B-like shape with a 32k vocabulary and an untied head: 1.10e9 parameters.
SHAPE = {"n_vocab": 32000, "n_embd": 2048, "n_layer": 16, "n_head": 32, "n_head_kv": 8,
         "n_ff": 8192, "n_ctx_train": 131072}  # fmt: skip

_CHILD = """
import json, os, sys, time
T0 = time.perf_counter()
def rss():
    out = {}
    for line in open("/proc/self/status"):
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) * 1024
    return out
try:
    import pynvml
    pynvml.nvmlInit()
    H = pynvml.nvmlDeviceGetHandleByIndex(0)
except Exception as exc:
    H = None
    print("no NVML:", exc, file=sys.stderr)
def vram():
    if H is None:
        return {}
    out = {"used": pynvml.nvmlDeviceGetMemoryInfo(H).used}
    try:
        for p in pynvml.nvmlDeviceGetComputeRunningProcesses(H):
            if p.pid == os.getpid():
                out["process"] = p.usedGpuMemory
    except Exception:
        pass
    return out
stages, seconds = {}, {}
def stage(name):
    stages[name] = {"vram": vram(), **rss()}
    seconds[name] = round(time.perf_counter() - T0, 2)
stage("before")
from quantdesk.engine.params import LoadSettings
from quantdesk.engine.run.session import InferenceSession
import llama_cpp
stage("imported")
path, ngl, n_ctx = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = InferenceSession.load(path, LoadSettings(n_ctx=n_ctx, n_gpu_layers=ngl), verbose=True)
stage("loaded")
llama = s._llama
n = min(512, llama.n_ctx() - 2)
llama.eval([llama.token_bos()] + [300 + i for i in range(n - 1)])  # one full micro-batch
stage("batch")
llama.eval([301])
stage("token")
s.close()
stage("closed")
print(json.dumps({"stages": stages, "seconds": seconds,
                  "gpu_offload": bool(llama_cpp.llama_supports_gpu_offload())}))
"""


def make_model(path: Path, seed: int = 0, **shape: int) -> Path:
    """Write a random-weight llama GGUF (F16 matrices, F32 norms) of ``SHAPE`` (or ``shape``)."""
    sys.path.insert(0, str(ROOT))
    from tests.support.tiny_models import write_llama_gguf

    return write_llama_gguf(path, {**SHAPE, **shape}, seed=seed)


def run_case(model: Path, ngl: int, n_ctx: int, timeout: float) -> tuple[dict, str]:
    """One real load in a fresh child: (record, llama.cpp's log)."""
    from dataclasses import asdict

    from quantdesk.engine.estimate.memory import EstimateParams, estimate
    from quantdesk.engine.gguf.reader import read_header_from_file
    from quantdesk.engine.llama.log_parse import parse_llama_log

    rec: dict = {"ngl": ngl, "n_ctx": n_ctx}
    started = time.perf_counter()
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _CHILD, str(model), str(ngl), str(n_ctx)],
            capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        rec["error"] = f"timed out after {timeout:.0f} s"
        err = exc.stderr or b""
        return rec, err.decode(errors="replace") if isinstance(err, bytes) else err
    rec["wall_s"] = round(time.perf_counter() - started, 1)
    rec["rc"] = proc.returncode
    if proc.returncode != 0:
        rec["error"] = " / ".join(proc.stderr.strip().splitlines()[-3:]) or "no output"
        return rec, proc.stderr
    rec.update(json.loads(proc.stdout.strip().splitlines()[-1]))
    log = parse_llama_log(proc.stderr.splitlines())
    rec["log"] = {"model": log.model, "kv": log.kv_buffers, "kv_total": log.kv_total,
                  "compute": log.compute, "output": log.output, "n_ctx": log.n_ctx,
                  "kv_layers_on": _count(log.kv_layer_devices.values())}  # fmt: skip
    baseline = rec["stages"]["imported"]["VmRSS"]
    est = estimate([read_header_from_file(model)],
                   EstimateParams(n_ctx=n_ctx, n_gpu_layers=ngl), process_baseline=baseline)
    rec["est"] = {name: {**asdict(dev), "total": dev.total} for name, dev in est.devices.items()}
    rec["est_peak_ram"], rec["est_vram"] = est.peak_ram, est.vram
    rec["est_gpu_layers"], rec["est_approximate"] = est.gpu_layers, est.approximate
    return rec, proc.stderr


def _count(values) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return out


def _m(n: float | None) -> str:
    return "-" if n is None else f"{n / MIB:.1f}"


def _pct(est: float | None, real: float | None) -> str:
    return "-" if not est or not real else f"{(est - real) / real * 100:+.1f} %"


def _used(rec: dict, stage: str) -> int | None:
    v = rec["stages"][stage]["vram"].get("used")
    base = rec["stages"]["before"]["vram"].get("used")
    return None if v is None or base is None else v - base


def render(records: list[dict]) -> list[str]:
    """Markdown tables: VRAM (GPU device) and host memory, estimate vs llama.cpp vs NVML."""
    vram = [
        "| ngl | n_ctx | layers on GPU (KV log) | weights est / CUDA0 | KV est / CUDA0 | compute "
        "est / CUDA0 | est VRAM (buffers + overhead) | CUDA0 buffers logged | NVML Δ loaded | "
        "NVML Δ after 512+1 tokens | est vs NVML peak | NVML peak − logged buffers |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    host = [
        "| ngl | n_ctx | weights est / CPU_Mapped | KV est / CPU | compute est / CPU+CUDA_Host |"
        " output est / log | est peak RAM | VmHWM (peak RSS) | est vs VmHWM |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in records:
        if "error" in r:
            vram.append(f"| {r['ngl']} | {r['n_ctx']} | failed: {r['error']} |")
            continue
        lg, gpu, cpu = r["log"], r["est"].get("GPU", {}), r["est"]["CPU"]
        cuda = {k: v for k, v in lg["model"].items() if k.startswith("CUDA")}
        logged = (sum(cuda.values()) + lg["kv"].get("CUDA0", 0) + lg["compute"].get("CUDA0", 0))
        peak = max(filter(None, (_used(r, s) for s in ("loaded", "batch", "token"))), default=None)
        rest = None if peak is None else peak - logged * MIB
        vram.append(
            f"| {r['ngl']} | {r['n_ctx']} | {lg['kv_layers_on']} | "
            f"{_m(gpu.get('weights', 0))} / {sum(cuda.values()):.1f} | "
            f"{_m(gpu.get('kv_cache', 0))} / {lg['kv'].get('CUDA0', 0):.1f} | "
            f"{_m(gpu.get('compute', 0))} / {lg['compute'].get('CUDA0', 0):.1f} | "
            f"{_m(r['est_vram'] or 0)} | {logged:.1f} | {_m(_used(r, 'loaded'))} | {_m(peak)} | "
            f"{_pct(r['est_vram'] or 0, peak)} | {_m(rest)} |"
        )
        host_compute = lg["compute"].get("CPU", 0) + lg["compute"].get("CUDA_Host", 0)
        hwm = r["stages"]["token"]["VmHWM"]
        host.append(
            f"| {r['ngl']} | {r['n_ctx']} | {_m(cpu['weights'])} / "
            f"{lg['model'].get('CPU_Mapped', 0):.1f} | {_m(cpu['kv_cache'])} / "
            f"{lg['kv'].get('CPU', 0):.1f} | {_m(cpu['compute'])} / {host_compute:.1f} | "
            f"{_m(cpu['output'])} / {sum(lg['output'].values()):.1f} | {_m(r['est_peak_ram'])} | "
            f"{_m(hwm)} | {_pct(r['est_peak_ram'], hwm)} |"
        )
    return ["### VRAM (MiB)", *vram, "", "### Host memory (MiB)", *host]


def main() -> int:
    """Make the model, run the grid, or re-render saved records."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--make-model", type=Path)
    ap.add_argument("--shape", default="", help="e.g. n_embd=256,n_layer=4 (with --make-model)")
    ap.add_argument("--model", type=Path)
    ap.add_argument("--report", type=Path)
    ap.add_argument("--layers", default="-1,8,0")
    ap.add_argument("--contexts", default="4096,32768")
    ap.add_argument("--jsonl", type=Path)
    ap.add_argument("--logs", type=Path)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--deadline", type=float, default=0.0, help="epoch seconds: no case after")
    ap.add_argument("--case-timeout", type=float, default=150.0)
    a = ap.parse_args()
    if a.make_model:
        t = time.perf_counter()
        shape = dict(kv.split("=") for kv in a.shape.split(",") if kv)
        make_model(a.make_model, **{k: int(v) for k, v in shape.items()})
        size = a.make_model.stat().st_size
        print(f"wrote {a.make_model} ({size / 1e9:.2f} GB) in {time.perf_counter() - t:.1f} s")
        return 0
    if a.report:
        records = [json.loads(ln) for ln in a.report.read_text().splitlines() if ln.strip()]
    else:
        records = []
        for ngl in (int(x) for x in a.layers.split(",")):
            for n_ctx in (int(x) for x in a.contexts.split(",")):
                if a.deadline and time.time() + 30 > a.deadline:
                    print(f"skipped ngl={ngl} n_ctx={n_ctx}: deadline", flush=True)
                    continue
                left = a.deadline - time.time() if a.deadline else a.case_timeout
                rec, log = run_case(a.model, ngl, n_ctx, min(a.case_timeout, left))
                records.append(rec)
                print(json.dumps({k: rec.get(k) for k in ("ngl", "n_ctx", "wall_s", "error")}),
                      flush=True)  # fmt: skip
                if a.jsonl:
                    with a.jsonl.open("a") as f:
                        f.write(json.dumps(rec) + "\n")
                if a.logs:
                    with a.logs.open("a") as f:
                        f.write(f"===== ngl={ngl} n_ctx={n_ctx}\n{log}\n")
    text = "\n".join(render(records))
    print(text)
    if a.out:
        a.out.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
