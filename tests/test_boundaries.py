"""Architecture rules: mockserver never imports Qt or the window (napari-style boundary), in any subpackage.

Imports are read three ways: ``import``/``from`` statements, ``import_module``
/ ``__import__`` calls (with a literal or a module-level constant), and any
string in the source that names a module of the window or Qt (how a module
name reaches ``import_module`` through a list or a variable). Only the GUI
hook ``mockserver/cli/gui.py`` may name the window's modules, and only those below.
"""

from __future__ import annotations

import ast
import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
QT_MODULES = ("PySide6", "PyQt5", "PyQt6", "shiboken6", "qtpy", "inspector")
# The window is loaded only by the hook, and only when the user asked for it (no command, or `screenshot`).
GUI_HOOKS = {"inspector.app", "inspector.screenshot"}
GUI_HOOK = ROOT / "mockserver" / "cli" / "gui.py"
_MODULE_NAME = re.compile(rf"^({'|'.join(QT_MODULES)})(\.[A-Za-z_]\w*)*$")
_IMPORT_CALLS = ("import_module", "__import__")


def _constants(tree: ast.Module) -> dict[str, str]:
    """Module-level ``NAME = "text"`` assignments."""
    found = {}
    for node in tree.body:
        if isinstance(node, ast.Assign | ast.AnnAssign) and isinstance(node.value, ast.Constant) \
                and isinstance(node.value.value, str):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            found.update({t.id: node.value.value for t in targets if isinstance(t, ast.Name)})
    return found


def imported_names(source: str, filename: str = "<source>") -> list[tuple[int, str]]:
    """(line, module name) for each import ``source`` makes or names, the three ways above."""
    tree = ast.parse(source, filename=filename)
    constants = _constants(tree)
    names: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append((node.lineno, node.module))
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            arg = node.args[0]
            if called in _IMPORT_CALLS:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    names.append((node.lineno, arg.value))
                elif isinstance(arg, ast.Name) and arg.id in constants:
                    names.append((node.lineno, constants[arg.id]))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and _MODULE_NAME.match(node.value):
            names.append((node.lineno, node.value))
    return sorted(set(names))


def _forbidden(path: pathlib.Path, name: str) -> bool:
    if name.split(".")[0] not in QT_MODULES:
        return False
    return not (name in GUI_HOOKS and path == GUI_HOOK)


def mockserver_modules() -> list[str]:
    """Every module of the mockserver package, subpackages included, as dotted names."""
    names = []
    for path in sorted((ROOT / "mockserver").rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__main__":  # runs the CLI when imported
            continue
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def test_no_qt_import_anywhere_in_mockserver_source():
    offenders = []
    for path in (ROOT / "mockserver").rglob("*.py"):
        offenders += [f"{path.relative_to(ROOT)}:{line} {name}"
                      for line, name in imported_names(path.read_text(), str(path)) if _forbidden(path, name)]
    assert offenders == []


def test_the_gui_hooks_are_the_only_names_of_the_window_and_they_exist():
    named = {name for _, name in imported_names(GUI_HOOK.read_text()) if name.split(".")[0] in QT_MODULES}
    assert named == GUI_HOOKS
    assert all((ROOT / (name.replace(".", "/") + ".py")).is_file() for name in GUI_HOOKS)


def test_imports_are_read_from_statements_calls_constants_and_strings():
    source = '''
import PySide6.QtCore
from inspector.window import MainWindow
from . import sibling
import importlib
GUI = "inspector.jobs"
importlib.import_module("PySide6.QtWidgets")
importlib.import_module(GUI)
__import__("shiboken6")
MODULES = ["mockserver.formats.har", "inspector.app"]
print("the inspector window", "inspector")
'''
    assert imported_names(source) == [
        (2, "PySide6.QtCore"), (3, "inspector.window"), (5, "importlib"), (6, "inspector.jobs"),
        (7, "PySide6.QtWidgets"), (8, "inspector.jobs"), (9, "shiboken6"), (10, "inspector.app"),
        (11, "inspector")]
    hook, elsewhere = GUI_HOOK, ROOT / "mockserver" / "cli" / "main.py"
    assert not _forbidden(hook, "inspector.app") and _forbidden(elsewhere, "inspector.app")
    assert _forbidden(hook, "inspector.window") and not _forbidden(elsewhere, "mockserver.core")


def test_every_module_in_every_subpackage_is_found():
    modules = mockserver_modules()
    assert {"mockserver", "mockserver.core.beacon", "mockserver.serving.app", "mockserver.cli.main",
            "mockserver.storage", "mockserver.pytest_plugin"} <= set(modules)
    assert "mockserver.__main__" not in modules
    assert len(modules) == len(list((ROOT / "mockserver").rglob("*.py"))) - 1


def test_importing_every_mockserver_module_loads_no_qt():
    code = ("import sys\n" + "".join(f"import {m}\n" for m in mockserver_modules())
            + f"bad = [m for m in sys.modules if m.split('.')[0] in {QT_MODULES!r}]\n"
            + "print(bad)\nsys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
