"""Architecture rules: mockserver never imports Qt (napari-style boundary)."""

from __future__ import annotations

import ast
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
QT_MODULES = ("PySide6", "PyQt5", "PyQt6", "shiboken6", "qtpy", "inspector")


def test_no_qt_import_anywhere_in_mockserver_source():
    offenders = []
    for path in (ROOT / "mockserver").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offenders += [f"{path.name}:{node.lineno} {n}" for n in names if n.split(".")[0] in QT_MODULES]
    assert offenders == []


def test_importing_every_mockserver_module_loads_no_qt():
    modules = sorted(p.stem for p in (ROOT / "mockserver").glob("*.py") if p.stem not in ("__init__", "__main__"))
    code = ("import sys\n" + "".join(f"import mockserver.{m}\n" for m in modules)
            + f"bad = [m for m in sys.modules if m.split('.')[0] in {QT_MODULES!r}]\n"
            + "print(bad)\nsys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
