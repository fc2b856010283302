"""Every example in README.md and docs/*.md is one the suite runs or checks (the doc convention).

1. ```` ```console ```` blocks run, in order, one fresh private TELEMETRY_INSPECTOR_HOME and working
   folder per Markdown file (so a ``send`` then an ``export`` sees the record):
   - a line starting with ``$ `` is a command (a trailing ``\\`` continues it on the next line); the
     lines after it, up to the next ``$ `` line or the block's end, are what it prints, stdout and
     stderr together in the order written, line for line (trailing blanks and blank lines at the end
     do not count);
   - a line that is exactly ``...`` matches any number of lines, none included; ``...`` inside a line
     matches any text within it (a temporary path, a time, an id);
   - ``[exit N]`` right after the output: the command must exit N (default 0);
   - ``telemetry-inspector …`` runs ``python -m mockserver …`` of this checkout; also allowed: ``echo``,
     ``cat``, ``ls`` (on files the block made) and ``curl`` to loopback; pipes and redirections are
     fine, command substitution is not. Commands run with bash, ``COLUMNS=80`` (argparse's help wraps
     there), no ``TELEMETRY_INSPECTOR_*`` variable of the caller's;
   - a file whose commands need a running inspector (``send``, the journal API with curl) says so
     before its first block: ``<!-- doctest: serve --port 8787 --https-port 8788 -->`` starts
     ``telemetry-inspector serve`` with those options in the file's home for all its blocks;
   - only commands that need no browser, no display and no network beyond loopback go in console blocks.
2. ```` ```sh ```` blocks are what a user runs in their own setup: each ``telemetry-inspector …``
   command in them (at a line's start, after ``$ ``, env assignments, ``&&`` or ``;``) must be
   accepted by the real parser. A line ending in ``# not checked`` is skipped (placeholders).
3. Every relative link and image points at a file in the repository; every ``#anchor`` (in the page
   or ``file.md#anchor``) at a heading there (GitHub's slugs) or an ``<a id>``.
4. Tables render whole under GitHub's cmark-gfm: each row has the header's number of cells (cmark-gfm
   drops or pads the others silently), and no ``|---|`` row is left as text.

The machinery is :mod:`tests.support.doc_examples`; ``tests/data/docs/fixture.md`` holds a case of
each rule, right and wrong, and the tests below check that each wrong one is found.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from mockserver.cli.main import build_parser
from tests.support import doc_examples as docs
from tests.support.serve import ServeProcess

DOCS = docs.doc_files()
FIXTURE = Path(__file__).parent / "data" / "docs" / "fixture.md"


def parse(argv: list[str]) -> object:
    """The real command line's parse of ``argv`` (raises for what it refuses)."""
    return build_parser().parse_args(argv)


class Served:
    """``telemetry-inspector serve ARGS`` in the file's home, for a file that asks for it."""

    def __init__(self, workspace: docs.Workspace, args: list[str]) -> None:
        self.process = ServeProcess(workspace.home, argv=["serve", *args], env={"TELEMETRY_INSPECTOR_DB": ""})
        self.process.start()

    def stop(self) -> None:
        try:
            self.process.stop()
        finally:
            self.process.kill()


def ids(paths: list[Path]) -> list[str]:
    return [str(p.relative_to(docs.ROOT)) for p in paths]


# -- the repository's own docs ---------------------------------------------------------------------------

def test_the_readme_is_among_the_files_checked():
    assert DOCS[0] == docs.ROOT / "README.md"


@pytest.mark.parametrize("path", DOCS, ids=ids(DOCS))
def test_console_examples_print_what_the_page_says(path, tmp_path):
    assert docs.console_problems(path, tmp_path, start_server=Served) == []


@pytest.mark.parametrize("path", DOCS, ids=ids(DOCS))
def test_sh_examples_are_command_lines_the_parser_accepts(path):
    assert docs.sh_problems(path, parse) == []


@pytest.mark.parametrize("path", DOCS, ids=ids(DOCS))
def test_links_images_and_anchors_resolve(path):
    assert docs.link_problems(path) == []


@pytest.mark.parametrize("path", DOCS, ids=ids(DOCS))
def test_tables_render_whole_on_github(path):
    assert docs.table_problems(path) == []


# -- the machinery, on the fixture: what is right passes, each thing wrong is found -----------------------

def test_console_blocks_pass_and_fail_as_the_fixture_says(tmp_path):
    problems = docs.console_problems(FIXTURE, tmp_path)
    assert [p.splitlines()[0] for p in problems] == [
        "tests/data/docs/fixture.md:28: $ telemetry-inspector send --dry-run --version 4.1.0: exit 0 (expected 0); "
        "printed:",
        "tests/data/docs/fixture.md:31: $ telemetry-inspector diff 1 2: exit 2 (expected 1); printed:",
        "tests/data/docs/fixture.md:33: $ rm made.txt: rm is not one of telemetry-inspector, echo, cat, ls, curl",
    ]
    assert f"    telemetry-inspector diff: no database at {tmp_path}/home/telemetry.sqlite3 (see --db)" in problems[1]
    assert (tmp_path / "work" / "made.txt").read_text() == "made\n"  # and it stays: rm never ran


def test_the_fixture_commands_and_their_expectations_are_read_exactly():
    commands = docs.console_commands(FIXTURE.read_text())
    assert [(c.line, c.text, c.status, len(c.expected)) for c in commands] == [
        (9, "telemetry-inspector send --dry-run --providers data --resources 2", 0, 2),
        (12, "echo made > made.txt", 0, 0), (13, "ls", 0, 1), (15, "cat made.txt", 0, 1),
        (17, "telemetry-inspector diff 1 2", 2, 1), (20, "telemetry-inspector --help", 0, 2),
        (28, "telemetry-inspector send --dry-run --version 4.1.0", 0, 2),
        (31, "telemetry-inspector diff 1 2", 1, 0), (33, "rm made.txt", 0, 0)]


def test_a_file_that_asks_for_an_inspector_gets_one(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    page = tmp_path / "served.md"
    page.write_text(f"<!-- doctest: serve --port {port} --no-https -->\n\n```console\n"
                    f"$ telemetry-inspector send --to http://127.0.0.1:{port}\n...\nanswer   200 OK image/gif\n"
                    "$ telemetry-inspector export --out - --format ndjson | \\\n  cat > out.ndjson\n"
                    "...\n$ ls\nout.ndjson\n```\n\n```console\n$ cat out.ndjson\n"
                    '{"id":1,"session":1,...,"kind":"beacon","status":"ok",...}\n```\n')
    assert docs.console_problems(page, tmp_path / "run", start_server=Served) == []
    assert docs.console_problems(page, tmp_path / "again") == [
        f"{page}:1: asks for a running inspector, and none can be started here"]


def test_sh_lines_the_parser_refuses_are_found():
    assert docs.sh_problems(FIXTURE, parse) == [
        "tests/data/docs/fixture.md:40: telemetry-inspector export --out - --format yaml: argument --format: "
        "invalid choice: 'yaml' (choose from 'json', 'ndjson', 'csv', 'har') "
        "(see telemetry-inspector export --help)",
        "tests/data/docs/fixture.md:42: telemetry-inspector browser --bogus: unrecognized arguments: --bogus "
        "(see telemetry-inspector browser --help)",
    ]


def test_sh_commands_are_found_wherever_a_shell_starts_one():
    text = ("```sh\n$ telemetry-inspector serve --json\nA=1 B=2 telemetry-inspector run -- \\\n  npx refine build\n"
            "cd app && telemetry-inspector verify http://localhost:5173/ ; echo done  # after\n"
            "telemetry-inspector browser <URL>  # not checked\necho telemetry-inspector\n```\n"
            "```text\ntelemetry-inspector --nonsense\n```\n")
    assert docs.sh_commands(text) == [(2, ["serve", "--json"]), (3, ["run", "--", "npx", "refine", "build"]),
                                      (5, ["verify", "http://localhost:5173/"])]


def test_only_assignments_before_the_program_are_the_environment():
    text = "```sh\nA=1 telemetry-inspector verify http://x/ --field version=4.58.0 --field a=b\n```\n"
    assert docs.sh_commands(text) == [(2, ["verify", "http://x/", "--field", "version=4.58.0", "--field", "a=b"])]


def test_broken_links_and_anchors_are_found():
    assert docs.link_problems(FIXTURE) == [
        "tests/data/docs/fixture.md:48: #no-such-heading: no heading #no-such-heading in fixture.md",
        "tests/data/docs/fixture.md:48: other.md#nope: no heading #nope in other.md",
        "tests/data/docs/fixture.md:49: missing.md: no such file in the repository",
        "tests/data/docs/fixture.md:50: ../../../../etc/hostname: no such file in the repository",
    ]


def test_broken_tables_are_found():
    assert docs.table_problems(FIXTURE) == [
        "tests/data/docs/fixture.md:57: a table row with 3 cells under a header of 2",
        "tests/data/docs/fixture.md:60: |---|---| is shown as text: the table did not form (a header with another "
        "number of cells, or no blank line before it)",
    ]


@pytest.mark.parametrize(("heading", "anchor"), [
    ("Keep, share and compare (export, import, diff, send)", "keep-share-and-compare-export-import-diff-send"),
    ("Node programs (the refine CLI): `telemetry-inspector run`",
     "node-programs-the-refine-cli-telemetry-inspector-run"),
    ("snake_case and  two spaces", "snake_case-and--two-spaces"),
    ("Ünïcode → arrows", "ünïcode--arrows"),
])
def test_slugs_follow_github(heading, anchor):
    assert docs.slug(heading) == anchor


def test_a_repeated_heading_gets_a_number_and_html_anchors_count():
    assert docs.anchors("# A\n## A\n### A\n<a id=\"here\"></a>\n\ntext <a name=\"there\"></a>\n") == {
        "a", "a-1", "a-2", "here", "there"}


@pytest.mark.parametrize(("expected", "actual", "matched"), [
    (["a", "b"], ["a", "b"], True),
    (["a", "b"], ["a", "b", "c"], False),
    (["a", "...", "d"], ["a", "b", "c", "d"], True),
    (["a", "...", "d"], ["a", "d"], True),
    (["...", "b"], ["a", "c"], False),
    (["saved x.png: ...x800, demo data"], ["saved x.png: 1280x800, demo data"], True),
    (["saved x.png: ...x800"], ["saved x.png: 1280x800, demo data"], False),
    (["a  "], ["a"], True),
    ([], [], True),
    (["..."], [], True),
])
def test_output_lines_match_with_wildcards(expected, actual, matched):
    assert docs.lines_match(expected, actual) is matched


@pytest.mark.parametrize(("command", "why"), [
    ("telemetry-inspector export --out - | cat > x", None),
    ("FOO=1 telemetry-inspector send --dry-run", None),
    ("curl -s http://127.0.0.1:8787/__inspector/health", None),
    ("curl -s https://telemetry.refine.dev/telemetry", "curl goes to loopback only (127.0.0.1, localhost, ::1)"),
    ("echo ok && rm -rf x", "rm is not one of telemetry-inspector, echo, cat, ls, curl"),
    ("echo $(id)", "command substitution is not allowed"),
    ("python3 -m mockserver serve", "python3 is not one of telemetry-inspector, echo, cat, ls, curl"),
])
def test_only_the_allowed_commands_run(command, why):
    assert docs.refused_command(command) == why
