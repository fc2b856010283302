"""Every error has one form, ``telemetry-inspector COMMAND: message``, in one line, exit 2.

Each command is run as a user runs it (``python -m mockserver`` in a child process) with a bad
option argparse refuses and a bad input its handler refuses; the window and the top level, which
have no command, say ``telemetry-inspector: message``. The one function that makes the line is
:func:`mockserver.core.text.command_message`.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from mockserver.core.text import command_message

ROOT = Path(__file__).resolve().parent.parent
USAGE = "(see telemetry-inspector {command} --help)"
PROVIDERS = "auth,auditLog,live,router,data,i18n,notification,accessControl"
EXPECT = "--expect must be none, any or a number of requests; got {!r}"

# (arguments, the exact stderr line after "telemetry-inspector COMMAND: "); {tmp} is a fresh folder,
# {closed} a loopback port nothing listens on
CASES = {
    "serve": [
        (["serve", "--port", "x"], "argument --port: port is a whole number, got 'x' " + USAGE),
        (["serve", "--bogus"], "unrecognized arguments: --bogus " + USAGE),
        (["serve", "--db", "{tmp}", "--port", "0", "--no-https"],
         "cannot write the database {tmp}: unable to open database file"),
    ],
    "browser": [
        (["browser", "--port", "99999"],
         "argument --port: port must be 0-65535 (0 = any free port), got 99999 " + USAGE),
        (["browser", "--browser", "{tmp}/no-browser"], "--browser {tmp}/no-browser: no such file"),
    ],
    "verify": [
        (["verify"], "the following arguments are required: URL " + USAGE),
        (["verify", "http://localhost:5173/", "--expect", "sometimes"], EXPECT.format("sometimes")),
    ],
    "run": [
        (["run", "--within", "-1"], "argument --within: seconds must be between 0 and 3600, got -1 " + USAGE),
        (["run"], "no command given: telemetry-inspector run [--expect none] -- npx refine build"),
        (["run", "--expect", "never", "--", "true"], EXPECT.format("never")),
    ],
    "export": [
        (["export", "--format", "x", "--out", "-"],
         "argument --format: invalid choice: 'x' (choose from 'json', 'ndjson', 'csv', 'har') " + USAGE),
        (["export", "--out", "-", "--db", "{tmp}/none.sqlite3"], "no database at {tmp}/none.sqlite3 (see --db)"),
        (["--port", "0", "export", "--out", "-"], "--port does not apply to export " + USAGE),
    ],
    "import": [
        (["import"], "the following arguments are required: FILE.har " + USAGE),
        (["import", "{tmp}/none.har"], "no such file: {tmp}/none.har"),
    ],
    "send": [
        (["send", "--providers", "nope"],
         f"argument --providers: unknown provider 'nope'; choose from {PROVIDERS} (or '' for none) " + USAGE),
        (["send", "--to", "ftp://x"],
         "--to must be an http:// or https:// base URL such as http://127.0.0.1:8787, got 'ftp://x'"),
        (["send", "--to", "http://127.0.0.1:{closed}"],
         "could not send to http://127.0.0.1:{closed}: Connection refused"),
    ],
    "diff": [
        (["diff", "1", "x"], "argument ID2: a record id is a whole number such as 12, got 'x' " + USAGE),
        (["diff", "1", "2", "--db", "{tmp}/none.sqlite3"], "no database at {tmp}/none.sqlite3 (see --db)"),
    ],
    "screenshot": [
        (["screenshot", "--out", "x.png", "--select", "x"],
         "argument --select: a record id is a whole number such as 12, got 'x' " + USAGE),
        (["--theme", "system", "screenshot", "--out", "x.png"],
         "--theme system does not apply to screenshot (choose light or dark)"),
    ],
    None: [  # the top level and the window
        (["bogus"], "argument COMMAND: invalid choice: 'bogus' (choose from 'serve', 'browser', 'verify', 'run', "
                    "'export', 'import', 'send', 'diff', 'screenshot') (see telemetry-inspector --help)"),
        (["--port", "x"], "argument --port: port is a whole number, got 'x' (see telemetry-inspector --help)"),
        (["--bogus"], "unrecognized arguments: --bogus (see telemetry-inspector --help)"),
        (["--db", "{tmp}/x.sqlite3"], "no display: DISPLAY and WAYLAND_DISPLAY are unset; use 'telemetry-inspector "
                                      "serve' without a screen, or run the window under Xvfb (xvfb-run -a "
                                      "telemetry-inspector)"),
    ],
}
PARAMS = [pytest.param(command, argv, message, id=" ".join(argv))
          for command, cases in CASES.items() for argv, message in cases]


def closed_port() -> int:
    """A loopback port that refuses connections (bound, never listening)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize(("command", "argv", "message"), PARAMS)
def test_every_error_is_one_line_in_the_commands_name_and_exit_2(tmp_path, command, argv, message):
    values = {"tmp": str(tmp_path), "closed": str(closed_port()), "command": command or ""}
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "WAYLAND_SOCKET",
                                                           "QT_QPA_PLATFORM")}
    env["TELEMETRY_INSPECTOR_HOME"] = str(tmp_path / "home")
    done = subprocess.run([sys.executable, "-m", "mockserver", *(a.format(**values) for a in argv)], cwd=tmp_path,
                          env={**env, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)
    prefix = f"telemetry-inspector {command}: " if command else "telemetry-inspector: "
    assert (done.returncode, done.stderr) == (2, prefix + message.format(**values) + "\n")


def test_every_command_is_covered():
    from mockserver.cli.main import build_parser

    assert set(build_parser().commands.choices) | {None} == set(CASES)


def test_the_one_form_and_its_one_line():
    assert command_message("send", "could not send") == "telemetry-inspector send: could not send"
    assert command_message(None, "no display") == "telemetry-inspector: no display"
    assert command_message("import", "a\nb\r\n  c\u2028d ") == "telemetry-inspector import: a b c d"


def test_a_warning_has_the_same_form(serve_process):
    serve = serve_process("--host", "0.0.0.0")
    assert serve.texts("stderr")[0] == (
        "telemetry-inspector serve: warning: listening on 0.0.0.0: other machines can send requests to this "
        "inspector; its journal answers only requests with the token below")
