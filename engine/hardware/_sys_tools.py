"""Run a system tool (sysctl, rocm-smi, amd-smi) for a hardware probe, never for long.

A probe must not hang the app because a vendor tool does: each run has a timeout, and on
timeout the tool's whole process group is killed (a shell-script wrapper's children would
otherwise keep its output pipe open and the wait going). Every failure becomes a
:class:`HardwareProbeError` whose message says what went wrong in words.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Sequence

from quantdesk.engine.errors import HardwareProbeError

DEFAULT_TIMEOUT_S = 5.0


def run_tool(argv: Sequence[str], timeout: float = DEFAULT_TIMEOUT_S) -> str:
    """Run ``argv`` (its first item looked up on PATH) and return its standard output.

    Raises HardwareProbeError when the tool is not on PATH, cannot start, takes longer than
    ``timeout`` seconds, or exits with a non-zero status.
    """
    tool = argv[0]
    exe = shutil.which(tool)
    if exe is None:
        raise HardwareProbeError(f"{tool} is not on PATH")
    posix = sys.platform != "win32"
    try:
        proc = subprocess.Popen(
            [exe, *argv[1:]],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            start_new_session=posix,
        )
    except OSError as exc:
        raise HardwareProbeError(f"{tool} could not be started: {exc.strerror or exc}") from exc
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill(proc, posix)
        raise HardwareProbeError(f"{tool} did not answer within {timeout:g} s") from None
    if proc.returncode != 0:
        first = (err.strip() or out.strip()).splitlines()[:1]
        said = f": {first[0][:200]}" if first else ""
        raise HardwareProbeError(f"{tool} failed with exit status {proc.returncode}{said}")
    return out


def _kill(proc: subprocess.Popen[str], posix: bool) -> None:
    try:
        if posix:
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
    except OSError:
        pass
    try:
        proc.communicate(timeout=2)
    except subprocess.TimeoutExpired:  # a grandchild in another group still holds the pipe
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
        proc.wait(timeout=2)
