"""Sizes: no module over 600 lines and no function over 90 in mockserver/ and inspector/ (issue 13).

Today's offenders are listed with their current size. The list only shrinks:
the test fails when a new offender appears, when a listed one grows, and when
a listed one shrinks or is gone (lower or drop its entry, so the list stays
true and the next growth is caught).
"""

from __future__ import annotations

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = ("mockserver", "inspector")
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 90

# path -> lines, and "path::qualified name" -> lines (def line to last line), as they are today.
MODULE_ALLOWED: dict[str, int] = {}
FUNCTION_ALLOWED: dict[str, int] = {}


def function_sizes(source: str) -> dict[str, int]:
    """Qualified name (``Class.method``, ``outer.inner``) -> lines, for every function in ``source``."""
    sizes: dict[str, int] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                name = prefix + child.name
                sizes[name] = (child.end_lineno or child.lineno) - child.lineno + 1
                visit(child, name + ".")
            elif isinstance(child, ast.ClassDef):
                visit(child, prefix + child.name + ".")
            else:
                visit(child, prefix)

    visit(ast.parse(source), "")
    return sizes


def measure() -> tuple[dict[str, int], dict[str, int]]:
    """(modules over the limit, functions over the limit) in PACKAGES, keyed as the allow-lists are."""
    modules, functions = {}, {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            key, source = path.relative_to(ROOT).as_posix(), path.read_text(encoding="utf-8")
            lines = len(source.splitlines())
            if lines > MAX_MODULE_LINES:
                modules[key] = lines
            functions.update({f"{key}::{name}": size for name, size in function_sizes(source).items()
                              if size > MAX_FUNCTION_LINES})
    return modules, functions


def problems(measured: dict[str, int], allowed: dict[str, int], limit: int) -> list[str]:
    """What is wrong with ``measured`` against the allow-list: new, grown, shrunk or gone entries."""
    found = []
    for key, size in sorted(measured.items()):
        if key not in allowed:
            found.append(f"{key}: {size} lines, over {limit} (split it)")
        elif size > allowed[key]:
            found.append(f"{key}: grew from {allowed[key]} to {size} lines (over {limit}: split it, do not grow it)")
        elif size < allowed[key]:
            found.append(f"{key}: shrank to {size} lines; lower its entry from {allowed[key]}")
    found += [f"{key}: no longer over {limit}; drop its entry" for key in sorted(set(allowed) - set(measured))]
    return found


def test_no_module_is_over_600_lines_but_the_listed_ones_as_they_are():
    modules, _ = measure()
    assert problems(modules, MODULE_ALLOWED, MAX_MODULE_LINES) == []


def test_no_function_is_over_90_lines_but_the_listed_ones_as_they_are():
    _, functions = measure()
    assert problems(functions, FUNCTION_ALLOWED, MAX_FUNCTION_LINES) == []


def test_function_sizes_count_methods_and_nested_functions_from_def_to_last_line():
    source = ("class A:\n    def m(self):\n        def inner():\n            pass\n        return 1\n"
              "\n\ndef f():\n    pass\n")
    assert function_sizes(source) == {"A.m": 4, "A.m.inner": 2, "f": 2}


def test_the_allow_list_catches_new_grown_shrunk_and_gone_entries():
    allowed = {"a.py": 700, "b.py": 650, "c.py": 610, "d.py": 620}
    measured = {"a.py": 700, "b.py": 651, "c.py": 605, "e.py": 601}
    assert problems(measured, allowed, 600) == [
        "b.py: grew from 650 to 651 lines (over 600: split it, do not grow it)",
        "c.py: shrank to 605 lines; lower its entry from 610",
        "e.py: 601 lines, over 600 (split it)",
        "d.py: no longer over 600; drop its entry",
    ]
