"""Load-test a model in a child process before the app loads it in its own.

llama.cpp aborts the whole process on some inputs (GGML_ASSERT on bad metadata)
and a llama.cpp build made for the wrong CPU dies with SIGILL on the first
token (e.g. AMX code on a machine that did not grant AMX). Neither may take the
app down, so the first load of each (model file, load settings, llama.cpp build)
happens in a throw-away child process; the verdict is cached on disk.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from quantdesk.engine.child_process import module_command
from quantdesk.engine.errors import LlamaBuildError, ModelLoadError, QuantDeskError
from quantdesk.engine.estimate.hparams import check_layer_count
from quantdesk.engine.file_hash import content_sample, file_version
from quantdesk.engine.gguf.reader import read_header_cached, regular_file
from quantdesk.engine.llama.log_parse import load_error_reason, load_failure_message
from quantdesk.engine.params import LoadSettings

PROBE_TIMEOUT_S = 900.0
_RESULT_PREFIX = "QUANTDESK-PROBE-RESULT "


@dataclass(frozen=True)
class ProbeResult:
    """The outcome of a child-process load test."""

    ok: bool
    message: str = ""
    details: str = ""
    seconds: float = 0.0
    out_of_memory: bool = False  # killed for memory (the OOM killer, or the RAM watchdog)


def _signal_message(signum: int, path: Path) -> str:
    name = (
        signal.Signals(signum).name if signum in signal.Signals._value2member_map_ else str(signum)
    )
    if signum == signal.SIGILL:
        return (
            f"llama.cpp crashed with {name} (an illegal CPU instruction) while running "
            f"'{path.name}'. This llama.cpp build uses instructions this processor cannot run "
            "(for example AMX or AVX-512). Rebuild it for this CPU with the setup command in the "
            "README (it detects the CPU features)."
        )
    if signum == signal.SIGKILL:
        return (
            f"The test load of '{path.name}' was killed ({name}), most likely because the "
            "machine ran out of memory. Try a smaller context length or a smaller quant."
        )
    if signum == signal.SIGABRT:
        return (
            f"llama.cpp aborted ({name}) while loading '{path.name}': the file's metadata is "
            "inconsistent or uses something this llama.cpp build does not support. The app kept "
            "running; try another file."
        )
    return (
        f"llama.cpp crashed ({name}) while loading '{path.name}'. The app kept running; the "
        "file may be damaged or unsupported by this llama.cpp build."
    )


def llama_build_id() -> str:
    """Identifies the installed llama.cpp build: version plus its shared libraries' stats.

    A rebuild with other CPU flags keeps the version but changes the libraries,
    so models that passed on the old build are probed again.
    """
    try:
        import llama_cpp
    except ImportError:
        return "missing"
    parts = [getattr(llama_cpp, "__version__", "?")]
    lib_dir = Path(llama_cpp.__file__).parent / "lib"
    for lib in sorted(lib_dir.glob("*")) if lib_dir.is_dir() else ():
        stat = lib.stat()
        parts.append(f"{lib.name}:{stat.st_size}:{stat.st_mtime_ns}")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def _cache_key(path: Path, settings: LoadSettings) -> str:
    """What a passed probe holds for: this file version (size, modification time, inode,
    status-change time), its header and a sample of its data, the llama.cpp build and the GPU
    layers. Content swapped in place keeping size and modification time changes the key."""
    where, stamp = file_version(path)
    raw = (f"{where}|{stamp}|{content_sample(path)}|{llama_build_id()}|"
           f"{settings.n_gpu_layers}")  # fmt: skip
    return hashlib.sha256(raw.encode()).hexdigest()[:24]


class ProbeCache:
    """Remembers which (file, build, GPU layers) already passed a child-process load."""

    def __init__(self, path: Path | None) -> None:
        self._path = path

    def _read(self) -> dict[str, float]:
        if self._path is None:
            return {}
        try:
            return json.loads(self._path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

    def passed(self, key: str) -> bool:
        """True when this key passed before."""
        return key in self._read()

    def remember(self, key: str) -> None:
        """Record a passing probe (best effort: a read-only disk only costs a re-probe)."""
        if self._path is None:
            return
        data = self._read()
        data[key] = time.time()
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self._path.with_suffix(".tmp")
            tmp.write_text(json.dumps(data), encoding="utf-8")
            os.replace(tmp, self._path)
        except OSError:
            pass


#: The RAM watchdog stops a test load when free memory falls below this share of all RAM (or
#: MEMORY_FLOOR_MIN, whichever is larger): past it the OS starts swapping hard or killing.
MEMORY_FLOOR_SHARE = 0.02
MEMORY_FLOOR_MIN = 256 * 2**20


def memory_running_out() -> int | None:
    """The available RAM in bytes when it is below the watchdog's floor, else None."""
    import psutil

    mem = psutil.virtual_memory()
    floor = max(MEMORY_FLOOR_MIN, int(mem.total * MEMORY_FLOOR_SHARE))
    return mem.available if mem.available < floor else None


def probe_load(
    path: str | Path,
    settings: LoadSettings,
    *,
    cache: ProbeCache | None = None,
    cancel: threading.Event | None = None,
    timeout_s: float = PROBE_TIMEOUT_S,
) -> ProbeResult:
    """Load ``path`` in a child process and generate two tokens; report how it went."""
    path = regular_file(path)
    check_layer_count(read_header_cached(path))  # llama.cpp would abort on it: say why instead
    cache = cache or ProbeCache(None)
    key = _cache_key(path, settings)
    if cache.passed(key):
        return ProbeResult(ok=True, message="passed before (cached)")
    # A small context keeps the probe quick; memory for the real context is the estimator's job.
    probe_settings = settings.with_(n_ctx=min(settings.n_ctx or 512, 512))
    cmd = module_command(
        "quantdesk.engine.run._probe_child", str(path), json.dumps(asdict(probe_settings))
    )
    started = time.monotonic()
    # GGML_NO_BACKTRACE: on abort ggml would otherwise attach gdb for a backtrace (seconds).
    env = {**os.environ, "GGML_NO_BACKTRACE": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        while True:
            try:
                out, err = proc.communicate(timeout=0.2)
                break
            except subprocess.TimeoutExpired:
                if (low := memory_running_out()) is not None:
                    proc.kill()
                    proc.communicate()
                    return ProbeResult(
                        ok=False,
                        message=f"The test load of '{path.name}' was stopped: free memory fell "
                        f"to {low // 2**20:,} MiB, and going on would push this computer into "
                        "heavy swapping.",
                        seconds=time.monotonic() - started,
                        out_of_memory=True,
                    )
                if (
                    cancel is not None and cancel.is_set()
                ) or time.monotonic() - started > timeout_s:
                    proc.kill()
                    proc.communicate()
                    reason = "cancelled" if cancel is not None and cancel.is_set() else "timed out"
                    return ProbeResult(
                        ok=False, message=f"The test load of '{path.name}' {reason}."
                    )
    finally:
        if proc.poll() is None:
            proc.kill()
    seconds = time.monotonic() - started
    tail = (err or "").strip()[-4000:]
    if proc.returncode < 0:
        oom = -proc.returncode == signal.SIGKILL
        return ProbeResult(False, _signal_message(-proc.returncode, path), tail, seconds, oom)
    for line in (out or "").splitlines():
        if line.startswith(_RESULT_PREFIX):
            payload = json.loads(line[len(_RESULT_PREFIX) :])
            message = payload.get("message", "")
            if not payload["ok"] and load_error_reason(tail.splitlines()):
                # the child loads verbosely: llama.cpp's reason is in its stderr
                message = load_failure_message(path.name, tail.splitlines())
            result = ProbeResult(
                payload["ok"], message, payload.get("details", "") or tail, seconds
            )
            if result.ok:
                cache.remember(key)
            return result
    return ProbeResult(
        False,
        f"The test load of '{path.name}' ended unexpectedly (exit code {proc.returncode}).",
        tail,
        seconds,
    )


def raise_for_probe(result: ProbeResult) -> None:
    """Turn a failed probe into the matching typed error."""
    if result.ok:
        return
    if "illegal CPU instruction" in result.message:
        raise LlamaBuildError(result.message, result.details)
    raise ModelLoadError(result.message, result.details)


def child_main(path: str, settings_json: str) -> int:
    """Entry point of the child: load, generate two tokens, print a one-line verdict."""
    from quantdesk.engine.chat.templates import Message
    from quantdesk.engine.events import TokenText
    from quantdesk.engine.params import SamplingSettings
    from quantdesk.engine.run.session import InferenceSession

    payload: dict[str, object]
    try:
        # verbose: llama.cpp's log (and any GGML_ASSERT text) reaches the parent as details.
        session = InferenceSession.load(
            path, LoadSettings(**json.loads(settings_json)), verbose=True
        )
        stop = threading.Event()
        events = session.generate(
            [Message("user", "Hello")],
            SamplingSettings(temperature=0.0, max_tokens=2, seed=0),
            stop,
        )
        pieces = [e.text for e in events if isinstance(e, TokenText)]
        session.close()
        payload = {"ok": True, "message": f"generated {''.join(pieces)!r}"}
    except QuantDeskError as exc:
        payload = {"ok": False, "message": exc.message, "details": exc.details}
    print(_RESULT_PREFIX + json.dumps(payload), flush=True)
    return 0
