"""Hardware probes on this real machine, vendor tools that misbehave, and `quantdesk hw`."""

from __future__ import annotations

import ctypes.util
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import llama_cpp
import psutil
import pytest

from quantdesk.engine.hardware._gpu import probe_amd
from quantdesk.engine.hardware.machine import gpu_memory_budget, probe_hardware, ram_budget
from quantdesk.engine.hardware.report import HardwareReport, ProbeNote
from tests.support.fake_tools import ROCM_JSON, fake_tool, gpu_build, needs_posix

NVML_REASON = "not detected: NVML library not found (no NVIDIA driver installed)"


def _cpuinfo_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def _gone(pid: int, within: float = 5.0) -> bool:
    """Killed within ``within`` s: no such process, or a zombie waiting for init to reap it.

    SIGKILL is asynchronous: on a loaded machine the process may still be tearing down when
    the probe returns, so this polls the process state until the deadline.
    """
    deadline = time.monotonic() + within
    while True:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


@pytest.fixture(scope="module")
def report() -> HardwareReport:
    return probe_hardware()


# -- the real machine -------------------------------------------------------------------


def test_memory_and_cpu_match_this_machine(report: HardwareReport) -> None:
    vm, swap = psutil.virtual_memory(), psutil.swap_memory()
    assert report.memory.ram_total == vm.total
    assert 0 < report.memory.ram_available <= vm.total
    assert report.memory.swap_total == swap.total
    assert report.os_name == platform.system() and report.arch == platform.machine()
    assert report.cpu.logical_cores == psutil.cpu_count(logical=True)
    assert 1 <= report.cpu.physical_cores <= report.cpu.logical_cores
    assert report.cpu.name and report.cpu.name != "unknown CPU"
    assert 0 < ram_budget() <= vm.total
    json.dumps(report.to_dict())  # everything in it is JSON-ready


@pytest.mark.skipif(not _cpuinfo_flags(), reason="no /proc/cpuinfo flags (not Linux x86)")
def test_simd_features_are_those_in_proc_cpuinfo(report: HardwareReport) -> None:
    flags = _cpuinfo_flags()
    for name in ("avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx_vnni"):
        assert (name in report.cpu.simd) == (name in flags), name
    assert ("sse3" in report.cpu.simd) == ("pni" in flags)
    amx = sorted(f for f in flags if f.startswith("amx_"))
    assert sorted(report.cpu.amx) == [
        a for a in amx if a in ("amx_tile", "amx_int8", "amx_bf16", "amx_fp16")
    ]
    assert not any(a.startswith("amx") for a in report.cpu.simd)
    assert bool(report.cpu.amx_note) == bool(report.cpu.amx)
    assert report.cpu.simd_source == "/proc/cpuinfo"


@pytest.mark.skipif(bool(ctypes.util.find_library("nvidia-ml")), reason="NVML is installed here")
def test_nvidia_is_not_detected_and_the_note_says_why(report: HardwareReport) -> None:
    assert not [g for g in report.gpus if g.vendor == "NVIDIA"]
    assert [n.message for n in report.notes_for("NVIDIA")] == [NVML_REASON]


@pytest.mark.skipif(gpu_build(), reason="this llama.cpp build ships a GPU backend")
def test_this_llama_build_is_cpu_only(report: HardwareReport) -> None:
    build = report.build
    assert build.available and build.version == llama_cpp.__version__
    # the RPC backend (GGML_RPC=ON, for models split across machines) has no device until a
    # worker is attached; llama_supports_gpu_offload() says yes for any RPC build, the device
    # list says what can really take layers
    assert build.backends in (("CPU",), ("RPC", "CPU"))
    assert build.gpu_offload is False
    assert [d.kind for d in build.devices] == ["CPU"]
    assert set(build.libraries) <= {"ggml-cpu", "ggml-rpc"} and "ggml-cpu" in build.libraries
    assert build.verdict.startswith("This llama.cpp build is CPU-only: GPU offload is off")
    assert "CMAKE_ARGS=-DGGML_" in build.verdict
    assert gpu_memory_budget(report) is None


def test_build_cpu_flags_are_llama_cpps_own(report: HardwareReport) -> None:
    info = llama_cpp.llama_print_system_info().decode()
    cpu_part = info.split("CPU : ", 1)[1]
    for flag in ("AVX", "AVX2", "FMA", "F16C", "AVX512"):
        assert (flag in report.build.cpu_features) == (f"| {flag} = 1 |" in f"| {cpu_part}")
    assert report.build.system_info == info.strip()


def test_the_cpu_and_build_agree_on_this_machine(report: HardwareReport) -> None:
    """setup_env.sh builds llama.cpp for this CPU's features: no mismatch warning expected."""
    assert not [w for w in report.warnings if "CPU" in w]


# -- vendor tools that misbehave, or answer ---------------------------------------------


@needs_posix
def test_a_hanging_rocm_smi_times_out_and_its_children_are_killed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pid_file = tmp_path / "child.pid"
    fake_tool(tmp_path / "bin", "rocm-smi", f"sleep 60 &\necho $! > {pid_file}\nwait", monkeypatch)
    started = time.monotonic()
    report = probe_hardware(tool_timeout=0.5)
    assert time.monotonic() - started < 10
    assert not [g for g in report.gpus if g.vendor == "AMD"]
    (note,) = report.notes_for("AMD")
    assert note.message == "not detected: rocm-smi did not answer within 0.5 s"
    assert _gone(int(pid_file.read_text())), "the script's own child outlived the timeout"


@needs_posix
@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("echo 'Segmentation fault (core dumped)'", "not the expected JSON: Segmentation fault"),
        ('echo \'{"card0": {"VRAM Total\'', "not the expected JSON"),
        ("echo '[1, 2, 3]'", "not the expected JSON: [1, 2, 3]"),
        ("echo '{\"system\": {}}'", "rocm-smi lists no GPU"),
        ("echo 'ERROR: rsmi_init() failed' >&2; exit 1", "exit status 1: ERROR: rsmi_init()"),
        ("", "not the expected JSON: nothing"),
    ],
)
def test_rocm_smi_garbage_gives_a_note_not_an_exception(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str, expected: str
) -> None:
    fake_tool(tmp_path / "bin", "rocm-smi", body, monkeypatch)
    gpus, notes = probe_amd(timeout=5)
    assert gpus == []
    (note,) = notes
    assert note.source == "AMD" and note.message.startswith("not detected: ")
    assert expected in note.message


@needs_posix
def test_rocm_smi_json_gives_an_amd_gpu_the_cpu_build_cannot_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    args_file = tmp_path / "args"
    body = (
        f'echo "$@" > {args_file}\n'
        "echo 'WARNING: AMD GPU device(s) is/are in a low-power state. Check power control'\n"
        f"echo '{ROCM_JSON}'"
    )
    fake_tool(tmp_path / "bin", "rocm-smi", body, monkeypatch)
    report = probe_hardware()
    assert "--showmeminfo vram" in args_file.read_text() and "--json" in args_file.read_text()
    (gpu,) = [g for g in report.gpus if g.vendor == "AMD"]
    assert (gpu.name, gpu.index, gpu.api, gpu.driver) == (
        "Radeon RX 7900 XTX",
        0,
        "rocm-smi",
        "6.8.5",
    )
    assert (gpu.memory_total, gpu.memory_used) == (25753026560, 2**30)
    assert gpu.memory_free == 25753026560 - 2**30
    assert not report.notes_for("AMD")
    if not gpu_build():
        assert gpu.usable_by_build is False
        assert gpu_memory_budget(report) is None
        assert any(
            w.startswith("GPU present but this llama.cpp build cannot use it: Radeon RX 7900 XTX")
            and "-DGGML_HIP=ON" in w
            for w in report.warnings
        )
        assert "-DGGML_HIP=ON" in report.build.verdict


@needs_posix
@pytest.mark.parametrize(
    ("static", "name"),
    [
        ('[{"gpu": 0, "asic": {"market_name": "AMD Radeon PRO W7600"}}]', "AMD Radeon PRO W7600"),
        ('{"gpu_data": [{"gpu": 0, "asic": "N/A"}]}', "AMD GPU 0"),
        ("amd-smi: unknown option", "AMD GPU 0"),
    ],
)
def test_amd_smi_is_used_when_rocm_smi_is_absent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, static: str, name: str
) -> None:
    metric = (
        '[{"gpu": 0, "mem_usage": {"total_vram": {"value": 16368, "unit": "MB"},'
        ' "used_vram": {"value": 368, "unit": "MB"}, "free_vram": {"value": 16000, "unit": "MB"}}}]'
    )
    body = f"""case "$1" in
  metric) echo '{metric}' ;;
  static) echo '{static}' ;;
  *) exit 2 ;;
esac"""
    bin_dir = tmp_path / "bin"
    fake_tool(bin_dir, "amd-smi", body, monkeypatch)
    monkeypatch.setenv("PATH", str(bin_dir))  # no rocm-smi anywhere
    gpus, notes = probe_amd(timeout=5)
    assert notes == []
    (gpu,) = gpus
    assert (gpu.name, gpu.api) == (name, "amd-smi")
    assert (gpu.memory_total, gpu.memory_free) == (16368 * 2**20, 16000 * 2**20)


def test_no_amd_tool_on_path_gives_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    why = "not detected: neither rocm-smi nor amd-smi is on PATH (no ROCm tools installed)"
    assert probe_amd() == ([], [ProbeNote("AMD", why)])


# -- quantdesk hw ------------------------------------------------------------------------


def _quantdesk(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "quantdesk", *args], capture_output=True, text=True, timeout=120
    )


def test_quantdesk_hw_json_parses() -> None:
    result = _quantdesk("hw", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["memory"]["ram_total"] == psutil.virtual_memory().total
    assert data["cpu"]["logical_cores"] == psutil.cpu_count(logical=True)
    assert data["build"]["backends"] and isinstance(data["notes"], list)


def test_quantdesk_hw_text_names_cpu_memory_gpus_and_build(report: HardwareReport) -> None:
    result = _quantdesk("hw")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"CPU         {report.cpu.name}:" in out
    assert "RAM " in out and "Swap " in out and "\nGPUs\n" in out
    assert f"  Backends     {', '.join(report.build.backends)}" in out
    assert report.build.verdict in out
    for note in report.notes_for("NVIDIA"):
        assert f"NVIDIA: {note.message}" in out
