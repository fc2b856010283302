"""The doc test's machinery: the examples in README.md and docs/*.md, read, run and checked.

The rules (``tests/test_docs.py`` states them in full):

* ```` ```console ```` blocks are run: ``$ `` lines are commands (``telemetry-inspector`` is
  ``python -m mockserver``; also ``echo``, ``cat``, ``ls``, and ``curl`` to loopback), the lines after
  one its expected output (stdout and stderr together), ``...`` alone any lines, ``...`` in a line any
  text, ``[exit N]`` its exit status (default 0). One private home and working folder per file.
* ```` ```sh ```` blocks: each ``telemetry-inspector …`` command is parsed by the real parser.
* Relative links and images point at files in the repository, anchors at headings (GitHub's slugs).
* Tables render whole under GitHub's cmark-gfm: every row has the header's cells, no stray ``|---|``.

Every check returns its problems as ``FILE:LINE: what`` lines (none: all good).
"""

from __future__ import annotations

import html.parser
import itertools
import os
import re
import shlex
import subprocess
import sys
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cmarkgfm
from cmarkgfm.cmark import Options
from markdown_it import MarkdownIt
from markdown_it.token import Token

ROOT = Path(__file__).resolve().parents[2]
SERVE_DIRECTIVE = re.compile(r"<!--\s*doctest:\s*serve\b(?P<args>[^>]*?)\s*-->")
EXIT = re.compile(r"\[exit (\d+)\]")
ALLOWED = ("telemetry-inspector", "echo", "cat", "ls", "curl")
LOOPBACK = ("127.0.0.1", "localhost", "::1")
COMMAND_TIMEOUT = 120  # seconds: only so that a hanging command fails instead of hanging the suite
NOT_CHECKED = "# not checked"
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
_SEPARATORS = frozenset(("|", "||", "&&", ";", "&", "(", ")"))


def doc_files(root: Path = ROOT) -> list[Path]:
    """The Markdown files whose examples are tested: README.md and docs/*.md, those that exist."""
    return [p for p in [root / "README.md", *sorted((root / "docs").glob("*.md"))] if p.is_file()]


def tokens(text: str) -> list[Token]:
    """``text`` parsed as CommonMark with GFM tables (markdown-it-py)."""
    return MarkdownIt("commonmark").enable(["table", "strikethrough"]).parse(text)


def _where(path: Path, line: int) -> str:
    shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    return f"{shown}:{line}"


def _fences(text: str, info: str) -> Iterator[tuple[int, list[str]]]:
    """(first content line, 1-based; its lines) of each fenced block whose info string is ``info``."""
    for token in tokens(text):
        if token.type == "fence" and token.info.strip().split(" ")[0] == info and token.map:
            yield token.map[0] + 2, token.content.splitlines()


# -- console blocks ------------------------------------------------------------------------------------


@dataclass
class Command:
    """One ``$ `` command of a console block, what it must print and its exit status."""

    line: int
    text: str
    expected: list[str] = field(default_factory=list)
    status: int = 0


def console_commands(text: str) -> list[Command]:
    """Every command of every console block, in order (a trailing ``\\`` continues a command)."""
    commands: list[Command] = []
    for first, lines in _fences(text, "console"):
        current: Command | None = None
        for n, line in enumerate(lines, first):
            status = EXIT.fullmatch(line.strip())
            if current is not None and current.text.endswith("\\") and not current.expected:
                current.text = current.text[:-1] + "\n" + line
            elif line.startswith("$ "):
                current = Command(n, line[2:])
                commands.append(current)
            elif current is not None and status:
                current.status = int(status.group(1))
            elif current is not None:
                current.expected.append(line)
    for command in commands:
        while command.expected and not command.expected[-1].strip():
            command.expected.pop()
    return commands


def serve_args(text: str) -> list[str] | None:
    """The options of ``<!-- doctest: serve … -->`` when the file asks for a running inspector."""
    found = SERVE_DIRECTIVE.search(text)
    return shlex.split(found.group("args")) if found else None


def lines_match(expected: Sequence[str], actual: Sequence[str]) -> bool:
    """Whether ``actual`` is ``expected``: ``...`` alone matches any lines (none too), ``...`` within a
    line any text; trailing blanks are ignored."""
    patterns = [None if line.strip() == "..." else
                re.compile(".*".join(map(re.escape, line.rstrip().split("...")))) for line in expected]
    got = [line.rstrip() for line in actual]
    reachable = {0}  # positions in ``got`` the patterns so far can end at
    for pattern in patterns:
        if pattern is None:
            reachable = set(range(min(reachable), len(got) + 1)) if reachable else set()
        else:
            reachable = {i + 1 for i in reachable if i < len(got) and pattern.fullmatch(got[i])}
    return len(got) in reachable


def refused_command(command: str) -> str | None:
    """Why ``command`` may not run in a console block (None when it may)."""
    if "$(" in command or "`" in command:
        return "command substitution is not allowed"
    try:
        lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        words = list(lexer)
    except ValueError as exc:
        return f"cannot be read: {exc}"
    segments: list[list[str]] = [[]]
    for word in words:
        if word in _SEPARATORS:
            segments.append([])
        else:
            segments[-1].append(word)
    for segment in segments:
        program = next((w for w in segment if not _ASSIGNMENT.match(w)), None)
        if program is None:
            continue
        if program not in ALLOWED:
            return f"{program} is not one of {', '.join(ALLOWED)}"
        if program == "curl":
            hosts = {urllib.parse.urlsplit(w).hostname for w in segment if re.match(r"https?://", w)}
            if not hosts or not hosts <= set(LOOPBACK):
                return "curl goes to loopback only (127.0.0.1, localhost, ::1)"
    return None


@dataclass
class Workspace:
    """Where one file's commands run: a fresh home, a working folder, ``telemetry-inspector`` on PATH."""

    base: Path
    home: Path = field(init=False)
    work: Path = field(init=False)
    env: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        self.home, self.work, tools = self.base / "home", self.base / "work", self.base / "bin"
        for folder in (self.home, self.work, tools):
            folder.mkdir(parents=True, exist_ok=True)
        self.home.chmod(0o700)
        script = tools / "telemetry-inspector"
        script.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m mockserver "$@"\n')
        script.chmod(0o755)
        env = {k: v for k, v in os.environ.items() if not k.startswith("TELEMETRY_INSPECTOR_")}
        self.env = {**env, "TELEMETRY_INSPECTOR_HOME": str(self.home), "PATH": f"{tools}{os.pathsep}{env['PATH']}",
                    "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1", "PYTHONUTF8": "1", "COLUMNS": "80"}

    def run(self, command: str) -> tuple[int, list[str]]:
        """Run ``command`` with bash in the working folder: its exit status and its output's lines."""
        done = subprocess.run(["bash", "-c", command], cwd=self.work, env=self.env, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace",
                              timeout=COMMAND_TIMEOUT)
        lines = done.stdout.splitlines()
        while lines and not lines[-1].strip():
            lines.pop()
        return done.returncode, lines


def console_problems(path: Path, base: Path, text: str | None = None,
                     start_server: Callable[[Workspace, list[str]], Any] | None = None) -> list[str]:
    """Run every console command of ``path`` in order in one :class:`Workspace` under ``base``.

    ``start_server(workspace, args)`` starts the inspector the file asks for and returns something
    with ``stop()``; it is needed only when the file has a serve directive.
    """
    text = path.read_text(encoding="utf-8") if text is None else text
    commands = console_commands(text)
    if not commands:
        return []
    workspace = Workspace(base)
    args = serve_args(text)
    if args is not None and start_server is None:
        return [f"{_where(path, 1)}: asks for a running inspector, and none can be started here"]
    server = start_server(workspace, args) if args is not None and start_server else None
    problems = []
    try:
        for command in commands:
            where = _where(path, command.line)
            refused = refused_command(command.text)
            if refused:
                problems.append(f"{where}: $ {command.text}: {refused}")
                continue
            status, output = workspace.run(command.text)
            if status != command.status or not lines_match(command.expected, output):
                problems.append(f"{where}: $ {command.text}: exit {status} (expected {command.status}); printed:\n"
                                + "\n".join(f"    {line}" for line in output)
                                + "\n  expected:\n" + "\n".join(f"    {line}" for line in command.expected))
    finally:
        if server is not None:
            server.stop()
    return problems


# -- sh blocks -------------------------------------------------------------------------------------------


def sh_commands(text: str) -> list[tuple[int, list[str]]]:
    """(line, arguments after ``telemetry-inspector``) of each such command in the sh blocks, lines
    ending in ``# not checked`` left out. A command may follow ``$ ``, env assignments, ``&&`` or ``;``."""
    found = []
    for first, lines in _fences(text, "sh"):
        joined: list[tuple[int, str]] = []
        for n, line in enumerate(lines, first):
            if joined and joined[-1][1].endswith("\\"):
                joined[-1] = (joined[-1][0], joined[-1][1][:-1] + " " + line)
            else:
                joined.append((n, line))
        for n, line in joined:
            if line.rstrip().endswith(NOT_CHECKED):
                continue
            try:
                lexer = shlex.shlex(line.removeprefix("$ "), posix=True, punctuation_chars=";&|()")
                lexer.whitespace_split = True
                lexer.commenters = "#"
                words = list(lexer)
            except ValueError:
                continue  # not a line a shell reads whole (a quote opened for a later line): not ours to judge
            segment: list[str] = []
            for word in [*words, ";"]:
                if word not in _SEPARATORS:
                    segment.append(word)
                    continue
                program = list(itertools.dropwhile(_ASSIGNMENT.match, segment))  # FOO=1 only before the program
                if program[:1] == ["telemetry-inspector"]:
                    found.append((n, program[1:]))
                segment = []
    return found


def sh_problems(path: Path, parse: Callable[[list[str]], object], text: str | None = None) -> list[str]:
    """The sh blocks' ``telemetry-inspector`` commands the parser refuses (``parse`` raises)."""
    text = path.read_text(encoding="utf-8") if text is None else text
    problems = []
    for line, argv in sh_commands(text):
        try:
            parse(argv)
        except SystemExit as exc:  # --help or --version: accepted
            if exc.code not in (0, None):
                problems.append(f"{_where(path, line)}: telemetry-inspector {shlex.join(argv)}: exit {exc.code}")
        except Exception as exc:  # noqa: BLE001 - the parser's refusal, whatever its type, is the finding
            problems.append(f"{_where(path, line)}: telemetry-inspector {shlex.join(argv)}: {exc}")
    return problems


# -- links, images and anchors ---------------------------------------------------------------------------

_HTML_TARGET = re.compile(r"""\b(?:href|src)\s*=\s*["']([^"']+)["']""", re.IGNORECASE)
_HTML_ANCHOR = re.compile(r"""<a\s[^>]*\b(?:id|name)\s*=\s*["']([^"']+)["']""", re.IGNORECASE)
_PUNCTUATION = re.compile(r"[^\w\- ]")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading's text: lower case, punctuation but ``-`` and ``_`` dropped, each
    space a ``-``."""
    return _PUNCTUATION.sub("", heading.strip().lower()).replace(" ", "-")


def _inline_text(token: Token) -> str:
    return "".join(c.content for c in token.children or () if c.type in ("text", "code_inline"))


def anchors(text: str) -> set[str]:
    """Every anchor of a Markdown text: its headings' slugs (the second of a name ``-1``, and so on)
    and the ids and names of its HTML ``<a>`` tags."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    parsed = tokens(text)
    for n, token in enumerate(parsed):
        if token.type == "heading_open":
            base = slug(_inline_text(parsed[n + 1]))
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
        elif token.type in ("html_block", "html_inline") or token.type == "inline":
            for piece in [token, *(token.children or ())]:
                if piece.type in ("html_block", "html_inline"):
                    found.update(_HTML_ANCHOR.findall(piece.content))
    return found


def link_targets(text: str) -> list[tuple[int, str]]:
    """(line, target) of every link and image, Markdown or HTML, outside code."""
    source = text.splitlines()
    targets = []

    def line_of(target: str, first: int, last: int) -> int:
        """The line of the block (``first``..``last``, 0-based) that holds ``target`` (markdown-it knows
        only the block's lines; its targets come percent-encoded)."""
        spelled = (target, urllib.parse.unquote(target))
        return next((n + 1 for n in range(first, last) if any(s in source[n] for s in spelled)), first + 1)

    for token in tokens(text):
        first, last = token.map if token.map else (0, 0)
        found = _HTML_TARGET.findall(token.content) if token.type == "html_block" else []
        for child in token.children or ():
            if child.type == "link_open":
                found.append(str(child.attrs.get("href", "")))
            elif child.type == "image":
                found.append(str(child.attrs.get("src", "")))
            elif child.type == "html_inline":
                found += _HTML_TARGET.findall(child.content)
        targets += [(line_of(target, first, last), target) for target in found]
    return targets


def link_problems(path: Path, root: Path = ROOT, text: str | None = None) -> list[str]:
    """Relative links and images of ``path`` whose file is not in ``root``, anchors with no heading."""
    text = path.read_text(encoding="utf-8") if text is None else text
    problems = []
    for line, target in link_targets(text):
        if re.match(r"[a-z][a-z0-9+.-]*:|//", target, re.IGNORECASE):
            continue  # another site (http:, mailto:): not checked here
        file_part, _, anchor = target.partition("#")
        file_part = urllib.parse.unquote(file_part.partition("?")[0])
        resolved = (root / file_part.lstrip("/") if file_part.startswith("/") else path.parent / file_part).resolve()
        if file_part and (not resolved.is_relative_to(root.resolve()) or not resolved.exists()):
            problems.append(f"{_where(path, line)}: {target}: no such file in the repository")
            continue
        if anchor:
            page = resolved if file_part else path
            if page.suffix.lower() != ".md":
                continue
            if urllib.parse.unquote(anchor) not in anchors(page.read_text(encoding="utf-8")):
                problems.append(f"{_where(path, line)}: {target}: no heading #{anchor} in {page.name}")
    return problems


# -- tables, as GitHub renders them ----------------------------------------------------------------------


class _Tables(html.parser.HTMLParser):
    """The tables of cmark-gfm's HTML (source lines, columns) and the text outside tables and code."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[tuple[int, int, int]] = []  # (first line, last line, header cells)
        self.loose_text: list[tuple[int, str]] = []
        self._inside: list[str] = []
        self._line = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        position = dict(attrs).get("data-sourcepos") or ""
        found = re.match(r"(\d+):\d+-(\d+):\d+", position)
        if found:
            self._line = int(found.group(1))
        if tag == "table" and found:
            self.tables.append((int(found.group(1)), int(found.group(2)), 0))
        if tag == "th" and "thead" in self._inside and self.tables:
            first, last, cells = self.tables[-1]
            self.tables[-1] = (first, last, cells + 1)
        self._inside.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in self._inside:
            del self._inside[len(self._inside) - 1 - self._inside[::-1].index(tag):]

    def handle_data(self, data: str) -> None:
        if not {"table", "pre", "code"} & set(self._inside):
            self.loose_text += [(self._line, line) for line in data.splitlines()]


_DELIMITER_ROW = re.compile(r"\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?")


def row_cells(row: str) -> int:
    """How many cells a table row of Markdown has (GFM: an unescaped ``|`` splits, in code spans too)."""
    inner = row.strip()
    inner = inner[1:] if inner.startswith("|") else inner
    inner = inner[:-1] if inner.endswith("|") and not inner.endswith("\\|") else inner
    return len(re.split(r"(?<!\\)\|", inner))


def table_problems(path: Path, text: str | None = None) -> list[str]:
    """Tables GitHub would render broken: a row with more or fewer cells than the header (cmark-gfm
    drops or pads them silently), or a delimiter row left as text (the table did not form)."""
    text = path.read_text(encoding="utf-8") if text is None else text
    rendered = cmarkgfm.github_flavored_markdown_to_html(text, options=Options.CMARK_OPT_SOURCEPOS)
    reader = _Tables()
    reader.feed(rendered)
    source = text.splitlines()
    problems = []
    for first, last, columns in reader.tables:
        for n in range(first, last + 1):
            row = source[n - 1]
            if row.strip() and row_cells(row) != columns:
                problems.append(f"{_where(path, n)}: a table row with {row_cells(row)} cells under a header of "
                                f"{columns}")
    for block_line, loose in reader.loose_text:
        if _DELIMITER_ROW.fullmatch(loose.strip()) and "|" in loose:
            # the paragraph's first line is known; the row is the first line from there that reads so
            line = next((n for n in range(block_line, len(source) + 1) if source[n - 1].strip() == loose.strip()),
                        block_line)
            problems.append(f"{_where(path, line)}: {loose.strip()} is shown as text: the table did not form "
                            "(a header with another number of cells, or no blank line before it)")
    return problems
