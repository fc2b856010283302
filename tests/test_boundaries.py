"""Architecture rules: mockserver never imports Qt (napari-style boundary), and loads the window in one place."""

from __future__ import annotations

import ast
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
QT_MODULES = ("PySide6", "PyQt5", "PyQt6", "shiboken6", "qtpy", "inspector")
GUI_HOOK = ROOT / "mockserver" / "cli" / "gui.py"  # the one module that may name the window package


def _sources() -> list[pathlib.Path]:
    return sorted((ROOT / "mockserver").rglob("*.py"))


def _module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_no_qt_import_anywhere_in_mockserver_source():
    offenders = []
    for path in _sources():
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offenders += [f"{path.name}:{node.lineno} {n}" for n in names if n.split(".")[0] in QT_MODULES]
    assert offenders == []


def test_only_the_gui_hook_names_a_window_module():
    # import_module("inspector.app") is invisible to import-linter: any string that is a module of the
    # window package (or of Qt) counts, wherever it is passed.
    offenders = []
    for path in _sources():
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and path != GUI_HOOK:
                root = node.value.split(".")[0]
                if root in QT_MODULES and node.value.replace(".", "").replace("_", "").isalnum():
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.value!r}")
    assert offenders == []


def test_the_gui_hook_names_the_window_modules():
    from mockserver.cli import gui

    assert (gui.WINDOW_MODULE, gui.PICTURE_MODULE) == ("inspector.app", "inspector.screenshot")


def test_importing_every_mockserver_module_loads_no_qt():
    modules = [_module_name(p) for p in _sources() if p.name != "__main__.py"]
    assert "mockserver.cli.gui" in modules and "mockserver.core.beacon" in modules  # subpackages too
    code = ("import sys\n" + "".join(f"import {m}\n" for m in modules)
            + f"bad = [m for m in sys.modules if m.split('.')[0] in {QT_MODULES!r}]\n"
            + "print(bad)\nsys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
