"""ARCHITECTURE.md's layout is the tree as it is: every module is listed in its folder, and nothing else."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("mockserver", "inspector")


def documented_modules(text: str) -> set[str]:
    """The ``pkg/sub/name.py`` paths named in the Layout section's tree (folders by indentation)."""
    block = text.split("## Layout", 1)[1].split("```", 2)[1]
    folders: list[tuple[int, str]] = []  # (indent, name) of the open folders
    found: set[str] = set()
    for line in block.splitlines():
        match = re.match(r"( *)(\S+)", line)
        if not match or not match.group(2).replace("/", "").replace(".", "").replace("_", "").isalnum():
            continue
        indent, first = len(match.group(1)), match.group(2)
        while folders and folders[-1][0] >= indent:
            folders.pop()
        if first.endswith("/"):
            folders.append((indent, first.rstrip("/")))
            continue
        prefix = "/".join(name for _, name in folders)
        # a line may name several modules before its description: "bridge.py wake.py  store events …"
        for word in line.strip().split("  ")[0].split():
            if word.endswith(".py"):
                found.add(f"{prefix}/{word}" if prefix else word)
    return found


def real_modules() -> set[str]:
    return {str(path.relative_to(ROOT)) for package in PACKAGES for path in (ROOT / package).rglob("*.py")
            if path.name != "__init__.py"}


def test_every_module_is_listed_where_it_lives():
    documented = {path for path in documented_modules((ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8"))
                  if path.startswith(PACKAGES)}
    assert sorted(real_modules() - documented) == []  # modules the layout does not name
    assert sorted(documented - real_modules()) == []  # names in the layout with no module


def test_the_parser_reads_folders_by_indentation():
    text = "## Layout\n```\npkg/   x\n  a.py   the a\n  sub/   y\n    b.py c.py  two\n  d.py   back up\n```\n"
    assert documented_modules(text) == {"pkg/a.py", "pkg/sub/b.py", "pkg/sub/c.py", "pkg/d.py"}
