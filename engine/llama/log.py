"""Send llama.cpp's own log lines to Python logging instead of the terminal.

llama-cpp-python prints some llama.cpp messages to stderr even with
``verbose=False`` (e.g. "llama_kv_cache_iswa: using full-size SWA cache"),
which litters the CLI's output. Routed here, they land in the app's log file.
"""

from __future__ import annotations

import ctypes
import logging
import threading
from collections import deque
from typing import Any

from quantdesk.engine.errors import ModelLoadError

log = logging.getLogger("quantdesk.llama_cpp")

# ggml_log_level in the llama.cpp that llama-cpp-python 0.3.36 vendors: NONE=0, DEBUG=1, INFO=2,
# WARN=3, ERROR=4, CONT=5 (continues the last line). llama-cpp-python's own table still has the
# older order, which is why it prints warnings that verbose=False should hide.
_LEVELS = {0: logging.INFO, 1: logging.DEBUG, 2: logging.INFO, 3: logging.WARNING, 4: logging.ERROR}
# The ctypes callback, made once and never dropped: a thread may be inside it (or about to
# enter it) while another thread switches llama.cpp back to stderr, and a collected callback
# would be a jump into freed memory.
_callback = None
_routed = False
_last_level = logging.INFO
_install_lock = threading.Lock()
_errors: deque[str] = deque(maxlen=8)  # llama.cpp's latest error lines, for error messages


def recent_errors(clear: bool = True) -> list[str]:
    """llama.cpp's error lines since the last call (oldest first)."""
    lines = list(_errors)
    if clear:
        _errors.clear()
    return lines


def import_llama_cpp(purpose: str) -> Any:
    """``import llama_cpp``, or a ModelLoadError saying ``purpose`` cannot happen without it."""
    try:
        import llama_cpp
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise ModelLoadError(
            f"llama-cpp-python is not installed, so {purpose}. "
            "Run the setup command from the README again.",
            details=str(exc),
        ) from exc
    return llama_cpp


def route_llama_logs() -> None:
    """Send llama.cpp's log to Python logging (thread-safe; the callback is made once)."""
    global _routed
    with _install_lock:
        if not _routed:
            import llama_cpp

            llama_cpp.llama_log_set(_the_callback(), ctypes.c_void_p(0))
            _routed = True


def restore_default_logs() -> None:
    """Let llama.cpp write its log to stderr again (verbose loads and tools that parse it)."""
    global _routed
    with _install_lock:
        if _routed:
            import llama_cpp

            llama_cpp.llama_log_set(ctypes.cast(None, llama_cpp.llama_log_callback), None)
            _routed = False


def _the_callback() -> Any:
    global _callback
    if _callback is not None:
        return _callback
    import llama_cpp

    @llama_cpp.llama_log_callback
    def _on_log(level: int, text: bytes, _user_data: ctypes.c_void_p) -> None:
        global _last_level
        py_level = _last_level if level == 5 else _LEVELS.get(level, logging.INFO)
        _last_level = py_level
        message = text.decode("utf-8", errors="replace").rstrip()
        if message:
            log.log(py_level, message)
            if py_level >= logging.ERROR:
                _errors.append(message)

    _callback = _on_log
    return _on_log
