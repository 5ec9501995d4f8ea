"""Shape rules: one import name, and an engine that never imports Qt."""

from __future__ import annotations

import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

import quantdesk.engine
from tests.support import REPO


def _python(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd)


def test_no_engine_module_imports_qt(tmp_path: Path) -> None:
    engine = quantdesk.engine
    modules = [m.name for m in pkgutil.walk_packages(engine.__path__, "quantdesk.engine.")]
    assert "quantdesk.engine.gguf.reader" in modules and "quantdesk.engine.run.session" in modules
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
        "import quantdesk.engine.gguf.reader, quantdesk.ui, quantdesk.cli\n"
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


def test_the_version_is_pyprojects() -> None:
    import re

    from quantdesk import __version__

    text = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    assert re.search(r'^version = "([^"]+)"$', text, re.MULTILINE)[1] == __version__


ROOT = REPO


def test_the_layers_hold_and_a_ui_module_importing_the_app_breaks_them(tmp_path: Path) -> None:
    """import-linter's contracts (pyproject.toml) pass on the tree; the same tree with one ui
    module that imports the app fails them."""
    lint = ["bash", str(ROOT / "scripts" / "lint_imports.sh")]
    kept = subprocess.run(lint, capture_output=True, text=True, cwd=ROOT)
    assert kept.returncode == 0, kept.stdout[-3000:] + kept.stderr[-2000:]
    assert "0 broken" in kept.stdout
    tree = tmp_path / "tree"  # the project again, with the one wrong import added
    tree.mkdir()
    for name in ("app", "engine", "scripts", ".venv", "pyproject.toml"):
        (tree / name).symlink_to(ROOT / name)
    shutil.copytree(ROOT / "ui", tree / "ui", ignore=shutil.ignore_patterns("__pycache__"))
    (tree / "ui" / "reaches_in.py").write_text(
        '"""A widget that reaches into the app."""\n\nfrom quantdesk.gui import controller\n')
    broken = subprocess.run(["bash", str(tree / "scripts" / "lint_imports.sh")],
                            capture_output=True, text=True, cwd=tree)  # fmt: skip
    assert broken.returncode != 0
    assert "The UI presents: it never reaches into the app BROKEN" in broken.stdout
    assert "quantdesk.ui.reaches_in -> quantdesk.gui" in broken.stdout


def test_all_of_the_app_lies_in_the_packages_the_contracts_name() -> None:
    """Top-level app modules would escape the contracts: there are none but the entry points."""
    import quantdesk

    top = {m.name for m in pkgutil.iter_modules(quantdesk.__path__)}
    assert top == {"__main__", "main", "cli", "config", "gui"}


def test_every_package_is_in_pyprojects_list() -> None:
    """A package missing from [tool.setuptools] packages would be missing from the wheel."""
    import re

    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    listed = set(re.findall(r'"(quantdesk[\w.]*)"', text.split("packages = [", 1)[1].split("]")[0]))
    folders = {"app": "quantdesk", "ui": "quantdesk.ui", "engine": "quantdesk.engine"}
    found = {
        ".".join([name, *init.parent.relative_to(ROOT / top).parts])
        for top, name in folders.items()
        for init in (ROOT / top).rglob("__init__.py")
        if "__pycache__" not in init.parts
    }
    assert listed == found


def test_docs_architecture_names_every_package_and_module() -> None:
    """docs/architecture.md is rewritten from the tree: a package or module it does not name in
    its folder's section fails here (a package as `name/`, a module by its file name)."""
    doc = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    sections = {part.split("\n", 1)[0].strip(): part for part in doc.split("\n## ")[1:]}
    missing = []
    for top in ("app", "ui", "engine"):
        section = sections[f"{top}/"]
        for path in sorted((ROOT / top).rglob("*.py")):
            if "__pycache__" in path.parts:
                continue
            if path.name == "__init__.py":
                if path.parent != ROOT / top and f"`{path.parent.name}/`" not in section:
                    missing.append(str(path.parent.relative_to(ROOT)) + "/")
            elif path.name not in section:
                missing.append(str(path.relative_to(ROOT)))
    assert missing == []


def test_every_gui_module_is_kept_from_the_composition_root() -> None:
    """The contract that no controller imports the composition root (so none is given the
    whole app) names every GUI module but the root and the entry points (``__init__``, and
    ``self_test``, which runs the whole app headless): a new one is in it."""
    import re

    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    block = text.split('name = "No controller is given the whole app', 1)[1].split("]", 1)[0]
    kept = set(re.findall(r'"quantdesk\.gui\.(\w+)"', block))
    entry_points = {"__init__", "controller", "self_test"}
    modules = {p.stem for p in (ROOT / "app" / "gui").glob("*.py")} - entry_points
    assert kept == modules


def test_every_engine_package_has_its_layer() -> None:
    """The layers contract (pyproject.toml) names every engine package: a new one cannot
    escape it."""
    import re

    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    block = text.split('containers = ["quantdesk.engine"]', 1)[1].split("]", 1)[0]
    layered = {name for line in re.findall(r'"([^"]+)"', block) for name in line.split(" | ")}
    packages = {p.parent.name for p in (ROOT / "engine").glob("*/__init__.py")}
    assert layered == packages


def test_a_private_module_is_imported_only_by_its_own_package() -> None:
    """``_name`` is its package's own (its subpackages' too): a module of another package that
    imports it fails."""
    import re

    folders = {"app": "quantdesk", "ui": "quantdesk.ui", "engine": "quantdesk.engine"}
    private = re.compile(r"(?:from|import)\s+(quantdesk[\w.]*)\.(_[a-z]\w*)\b|"
                         r"from\s+(quantdesk[\w.]*)\s+import\s+(_[a-z]\w*)\b")  # fmt: skip
    crossing = []
    for top, name in folders.items():
        for path in (ROOT / top).rglob("*.py"):
            if "__pycache__" in path.parts:
                continue
            package = ".".join([name, *path.parent.relative_to(ROOT / top).parts])
            for match in private.finditer(path.read_text(encoding="utf-8")):
                owner = match.group(1) or match.group(3)
                if package != owner and not package.startswith(owner + "."):
                    crossing.append(f"{path.relative_to(ROOT)} imports {match.group(0)}")
    assert crossing == []
