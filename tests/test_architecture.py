"""Shape rules: one import name, and an engine that never imports Qt."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import quantdesk.engine


def _python(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd)


def test_no_engine_module_imports_qt(tmp_path: Path) -> None:
    modules = [m.name for m in pkgutil.iter_modules(quantdesk.engine.__path__, "quantdesk.engine.")]
    assert "quantdesk.engine.gguf" in modules and "quantdesk.engine.session" in modules
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "qt = sorted(m for m in sys.modules if m.startswith(('PySide6', 'shiboken6')))\n"
        "print(qt)\n"
    )
    result = _python(code, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_only_quantdesk_is_installed_as_a_top_level_name(tmp_path: Path) -> None:
    code = (
        "import importlib.util as u\n"
        "print([n for n in ('app', 'ui', 'engine') if u.find_spec(n)])\n"
        "import quantdesk.engine.gguf, quantdesk.ui, quantdesk.cli\n"
    )
    result = _python(code, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_the_cli_does_not_import_qt(tmp_path: Path) -> None:
    code = "import sys, quantdesk.cli, quantdesk.main\nprint('PySide6' in sys.modules)\n"
    assert _python(code, tmp_path).stdout.strip() == "False"


def test_the_qt_binding_does_not_leak_references_to_none() -> None:
    """PySide6 6.12.0 on CPython 3.11 lost a reference to None per void call, then aborted."""
    from PySide6.QtCore import QObject

    probe = QObject()
    before = sys.getrefcount(None)
    for _ in range(5000):
        probe.setObjectName("probe")
    assert abs(sys.getrefcount(None) - before) < 50


def test_every_cli_command_module_is_registered_by_its_typed_name() -> None:
    import quantdesk.cli
    from quantdesk.cli import SUBCOMMANDS
    from quantdesk.cli._commands import COMMANDS

    modules = {m.name for m in pkgutil.iter_modules(quantdesk.cli.__path__)
               if not m.name.startswith("_")}  # fmt: skip
    assert {module.__name__.rsplit(".", 1)[1] for module in COMMANDS.values()} == modules
    assert tuple(COMMANDS) == SUBCOMMANDS  # main() knows them without importing them
    assert all(name == module.__name__.rsplit(".", 1)[1].replace("_", "-")
               for name, module in COMMANDS.items())  # fmt: skip
