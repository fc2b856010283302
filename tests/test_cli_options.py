"""Options before the command mean what they say: the command takes them (``--db X export`` is
``export --db X``, the value after the command winning), or they are refused in one line, exit 2.

Once ``--db`` and ``--port`` given first were silently dropped: `--db out/x.sqlite3 export` exported
the default database and `--port 0 … serve` failed on port 8787.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mockserver.cli.main import build_parser, main
from mockserver.core.config import DEFAULT_HTTPS_PORT, DEFAULT_PORT, default_db
from mockserver.core.payloads import btoa_json
from mockserver.records.demo import fill_demo
from mockserver.storage.store import BeaconStore
from tests.support.helpers import REFINE_4_PAYLOAD, http

ROOT = Path(__file__).resolve().parents[1]
SERVER_OPTIONS = {"--db": ("db", "a.sqlite3"), "--port": ("port", 0), "--https-port": ("https_port", 9443),
                  "--host": ("host", "127.0.0.2"), "--no-https": ("https_port", None),
                  "--trust-proxy": ("trust_proxy", True), "--proxy-port": ("proxy_port", 8788)}
DB_ONLY = {"--db": ("db", "a.sqlite3")}
# Each command with the arguments it needs and the options it shares with the top level.
COMMANDS: dict[str, tuple[list[str], dict[str, tuple[str, Any]]]] = {
    "serve": ([], SERVER_OPTIONS),
    "browser": ([], SERVER_OPTIONS),
    "export": (["--out", "-"], DB_ONLY),
    "import": (["x.har"], DB_ONLY),
    "diff": (["1", "2"], DB_ONLY),
    "screenshot": (["--out", "x.png"], {**DB_ONLY, "--theme": ("theme", "dark")}),
    "verify": (["http://localhost:5173/"], {}),
    "run": ([], {"--proxy-port": ("proxy_port", 8788)}),  # (what follows -- is the command's own)
    "send": (["--dry-run"], {}),
}


def parse(*argv: str) -> dict:
    return vars(build_parser().parse_args(list(argv)))


def flag_args(flag: str, value: object) -> list[str]:
    return [flag] if value is None or value is True else [flag, str(value)]


@pytest.mark.parametrize("command, flag", [(c, f) for c, (_, shared) in COMMANDS.items() for f in shared])
def test_an_option_before_or_after_the_command_is_the_same(command, flag):
    rest, shared = COMMANDS[command]
    dest, value = shared[flag]
    given = flag_args(flag, value)
    before = parse(*given, command, *rest)
    after = parse(command, *rest, *given)
    assert before == after == {**parse(command, *rest), dest: value}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_an_option_the_command_does_not_take_is_refused_before_it(command, capsys):
    rest, shared = COMMANDS[command]
    for flag, (_, value) in SERVER_OPTIONS.items():
        if flag in shared:
            continue
        assert main([*flag_args(flag, value), command, *rest]) == 2
        err = capsys.readouterr().err
        assert err == (f"telemetry-inspector {command}: {flag} does not apply to {command} "
                       f"(see telemetry-inspector {command} --help)\n")


def test_the_value_after_the_command_wins_and_defaults_fill_in():
    assert parse("--db", "a.sqlite3", "export", "--out", "-", "--db", "b.sqlite3")["db"] == "b.sqlite3"
    assert parse("--port", "1", "serve", "--port", "2")["port"] == 2
    assert parse("--no-https", "serve", "--https-port", "9443")["https_port"] == 9443
    served = parse("serve")
    assert (served["db"], served["port"], served["https_port"], served["host"], served["trust_proxy"]) == \
           (default_db(), DEFAULT_PORT, DEFAULT_HTTPS_PORT, "127.0.0.1", False)
    assert parse("screenshot", "--out", "x.png")["theme"] == "light"
    assert parse("export", "--out", "-")["db"] == default_db()
    assert "db" not in parse("send", "--dry-run")  # a command without a database has no --db


def test_the_window_takes_every_top_level_option():
    assert parse("--db", "a.sqlite3", "--port", "0", "--no-https", "--theme", "dark") == {
        "db": "a.sqlite3", "port": 0, "https_port": None, "host": "127.0.0.1", "trust_proxy": False,
        "proxy_port": None, "theme": "dark", "subcommand": None}
    assert parse()["theme"] is None  # the window: as last chosen


@pytest.mark.parametrize("argv, message", [
    (["--theme", "system", "screenshot", "--out", "x.png"],
     "telemetry-inspector screenshot: --theme system does not apply to screenshot (choose light or dark)"),
    (["--db", "a.sqlite3", "screenshot", "--demo", "--out", "x.png"],
     "telemetry-inspector screenshot: --demo and --db cannot go together (see telemetry-inspector screenshot --help)"),
    (["--theme", "dark", "export", "--out", "-"],
     "telemetry-inspector export: --theme does not apply to export (see telemetry-inspector export --help)"),
])
def test_other_refusals_are_one_line(argv, message, capsys):
    assert main(argv) == 2
    assert capsys.readouterr().err == message + "\n"


def cli(*argv: str, **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mockserver", *argv], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, **kwargs)


def test_db_before_export_exports_that_database(tmp_path):
    chosen, default = tmp_path / "x.sqlite3", tmp_path / "default.sqlite3"
    store = BeaconStore(chosen)
    fill_demo(store)
    records = store.query()
    store.close()
    BeaconStore(default).close()  # the default database: empty
    env = {**os.environ, "TELEMETRY_INSPECTOR_DB": str(default)}
    run = cli("--db", str(chosen), "export", "--format", "ndjson", "--out", "-", env=env)
    assert run.returncode == 0, run.stderr
    assert [json.loads(line) for line in run.stdout.splitlines()] == [json.loads(b.to_json()) for b in records]
    assert len(records) == 10


def test_port_zero_before_serve_is_honoured(serve_process):
    with socket.socket() as taken:  # the default port busy, as on the machine where this was found
        try:
            taken.bind(("127.0.0.1", DEFAULT_PORT))
            taken.listen()
        except OSError:
            pass  # busy already
        serve = serve_process(argv=["--port", "0", "--https-port", "0", "--db", ":memory:", "serve"])
        assert serve.port != DEFAULT_PORT
        assert "  Database  :memory:" in "\n".join(serve.banner.lines)
        status, _, _ = http("GET", f"{serve.http_url}/telemetry?payload={btoa_json(REFINE_4_PAYLOAD)}")
        assert status == 200
        assert serve.stop(signal.SIGINT, timeout=30) == 0, serve.log()
    assert serve.texts()[-1] == "stopped: 1 request captured in session 1"
