"""``python -m quantdesk.engine.estimate._llama_sim_child``: the dry-run load, in a child process.

Reads a JSON job on stdin (the sparse model path and a list of EstimateParams), loads the model
with ``no_alloc`` and ``load_mode = NONE``, creates one context per parameter set exactly as
QuantDesk's InferenceSession would (through the same llama-cpp-python defaults), and prints one
result line. llama.cpp's log is captured through ``llama_log_set``.
"""

from __future__ import annotations

import ctypes
import json
import sys
import time

_RESULT = "QUANTDESK-SIM "
_TYPES = {"f16": 1, "q8_0": 8, "q4_0": 2}


def main() -> int:
    """Run the job from stdin; print ``QUANTDESK-SIM {json}``."""
    import llama_cpp

    job = json.loads(sys.stdin.read())
    lines: list[str] = []
    pending = [""]

    @llama_cpp.llama_log_callback
    def on_log(level: int, text: bytes, _user: ctypes.c_void_p) -> None:
        pending[0] += text.decode("utf-8", errors="replace")
        while "\n" in pending[0]:
            line, pending[0] = pending[0].split("\n", 1)
            lines.append(line)

    llama_cpp.llama_log_set(on_log, ctypes.c_void_p(0))
    llama_cpp.llama_backend_init()
    params = job["params"]
    mp = llama_cpp.llama_model_default_params()
    mp.no_alloc = True
    mp.load_mode = llama_cpp.LLAMA_LOAD_MODE_NONE
    n_gpu = params[0]["n_gpu_layers"] if params else 0
    mp.n_gpu_layers = 0x7FFFFFFF if n_gpu < 0 else n_gpu
    started = time.perf_counter()
    model = llama_cpp.llama_model_load_from_file(job["path"].encode(), mp)
    load_s = time.perf_counter() - started
    if not model:
        out = {"ok": False, "message": "llama.cpp refused the model (see the log).", "log": lines}
        print(_RESULT + json.dumps(out), flush=True)
        return 0
    model_log, contexts = list(lines), []
    for p in params:
        lines.clear()
        n_batch = min(p["n_ctx"], p["n_batch"]) if p["n_ctx"] > 0 else p["n_batch"]
        threads = p["n_threads"] if p["n_threads"] > 0 else 1
        cp = llama_cpp.llama_context_default_params()
        cp.n_ctx, cp.n_batch, cp.n_ubatch = p["n_ctx"], n_batch, min(n_batch, p["n_ubatch"])
        cp.n_threads = cp.n_threads_batch = threads
        cp.n_seq_max = p["n_seq"]
        cp.flash_attn_type = 1 if p["flash_attn"] else 0
        cp.type_k = cp.type_v = _TYPES[p["kv_type"]]
        cp.swa_full, cp.offload_kqv = p["swa_full"], p["offload_kqv"]
        started = time.perf_counter()
        ctx = llama_cpp.llama_init_from_model(model, cp)
        seconds = time.perf_counter() - started
        if not ctx:
            out = {
                "ok": False,
                "message": "llama.cpp could not create a context with these "
                "parameters (see the log).",
                "log": model_log + lines,
            }
            print(_RESULT + json.dumps(out), flush=True)
            return 0
        contexts.append(
            {"n_ctx": llama_cpp.llama_n_ctx(ctx), "seconds": seconds, "log": list(lines)}
        )
        llama_cpp.llama_free(ctx)
    out = {
        "ok": True,
        "model_bytes": llama_cpp.llama_model_size(model),
        "load_s": load_s,
        "model_log": model_log,
        "contexts": contexts,
    }
    llama_cpp.llama_model_free(model)
    print(_RESULT + json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
