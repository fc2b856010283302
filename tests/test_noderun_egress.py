"""``run``'s other egress: what a routed Node program looked up, connected to and requested besides telemetry.

Real Node processes with the real preload and real sockets. The network is closed here, so
"another host" is a real server listening on this machine's own non-loopback address (the
listing leaves loopback out, not that address); ``.invalid`` names never resolve anywhere
(RFC 6761). The report file is untrusted: its checks are tested on their own below.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from mockserver.reach.nodeegress import ENV_EGRESS_FILE, REPORT_CAP, parse_report
from mockserver.reach.noderun import RoutedNode
from mockserver.records.egress import OtherRequest
from tests.support.helpers import refused_port
from tests.support.pages import answering_server, outward_address
from tests.test_noderun import ROOT, run_cli

EGRESS_JS = ROOT / "tests" / "noderun" / "egress.js"
node = shutil.which("node")
pytestmark = pytest.mark.skipif(node is None, reason="needs Node.js (scripts/install-test-deps)")
PREFIX = "telemetry-inspector run: "


@pytest.fixture(scope="module")
def address() -> str:
    """This machine's non-loopback address: another host, as far as the listing is concerned."""
    return outward_address()


GITHUB_FILES = " — GitHub files (refine's announcements and devtools feed come from here)"


def listing(stderr: str) -> list[str]:
    """The ``Other hosts contacted`` block: its title, then each request's line."""
    lines = stderr.splitlines()
    start = next((n for n, line in enumerate(lines) if line.startswith(f"{PREFIX}Other hosts contacted")), None)
    if start is None:
        return []
    block = [lines[start].removeprefix(PREFIX)]
    for line in lines[start + 1:]:
        if not line.startswith("    "):
            break
        block.append(line.strip())
    return block


def egress_js(*actions: list[str]) -> list[str]:
    """``node egress.js A , B , …``."""
    words: list[str] = []
    for action in actions:
        words += ([","] if words else []) + action
    return [str(node), str(EGRESS_JS), *words]


# -- run -------------------------------------------------------------------------------

def test_run_lists_each_connection_and_request_and_leaves_loopback_out(address, tmp_path):
    report = tmp_path / "run.xml"
    with answering_server(address) as port, answering_server("127.0.0.1") as local, \
            refused_port(address) as closed:
        result = run_cli("--expect", "none", "--full-urls", "--junit", str(report), "--", *egress_js(
            ["connect", address, str(port)], ["get", f"http://{address}:{port}/path?user=qa%40example.com"],
            ["fetch", f"http://{address}:{port}/f?x=2"], ["connect", "127.0.0.1", str(local)],
            ["get", f"http://localhost:{local}/own"], ["lookup", "localhost"], ["connect", address, str(closed)]))
    assert result.returncode == 0, result.stderr
    said = result.stdout.splitlines()
    assert said[5].startswith("lookup localhost ")  # 127.0.0.1 or ::1, as this machine's hosts file says
    assert said[:5] + said[6:] == [
        f"connect {address}:{port} ok", f"get http://{address}:{port}/path?user=qa%40example.com 200",
        f"fetch http://{address}:{port}/f?x=2 200", f"connect 127.0.0.1:{local} ok",
        f"get http://localhost:{local}/own 200", f"connect {address}:{closed} ECONNREFUSED"]
    assert listing(result.stderr) == [
        "Other hosts contacted (1 host, 6 requests):",
        f"CONNECT {address}:{port} → connected",
        f"CONNECT {address}:{port} → connected",  # http.get's own connection
        f"GET http://{address}:{port}/path?user=qa%40example.com → 200",
        f"CONNECT {address}:{port} → connected",  # fetch's (undici)
        f"GET http://{address}:{port}/f?x=2 → 200",
        f"CONNECT {address}:{closed} → failed: ECONNREFUSED",
    ]
    assert "localhost" not in result.stderr and "127.0.0.1:" + str(local) not in result.stderr
    lines = result.stderr.splitlines()
    assert lines[-2:] == [f"{PREFIX}route proven: the routing preload's probe reached this inspector",
                          f"{PREFIX}PASS: expected no request, got 0"]
    # The JUnit report lists them too, with the query cut (the default).
    system_out = ET.parse(report).getroot().find("testsuite/testcase/system-out")
    assert system_out is not None and system_out.text is not None
    assert f"    GET http://{address}:{port}/path?… → 200" in system_out.text.splitlines()


def test_child_processes_failed_names_and_an_abrupt_exit_are_listed(address):
    with answering_server(address) as port, refused_port(address) as closed:
        result = run_cli("--", *egress_js(["lookup", "nonexistent.invalid"], ["child", "lookup-promise", "qa.invalid"],
                                          ["connect", address, str(port)], ["connect", address, str(closed)],
                                          ["exit-connecting", address, str(port)]))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["lookup nonexistent.invalid ENOTFOUND", "lookup-promise qa.invalid ENOTFOUND",
                                          f"connect {address}:{port} ok", f"connect {address}:{closed} ECONNREFUSED",
                                          f"exit-connecting {address}:{port}"]
    assert listing(result.stderr) == [
        "Other hosts contacted (3 hosts, 5 requests):",
        "LOOKUP nonexistent.invalid → failed: ENOTFOUND",
        "LOOKUP qa.invalid → failed: ENOTFOUND",  # the child's, through dns.promises
        f"CONNECT {address}:{port} → connected",
        f"CONNECT {address}:{closed} → failed: ECONNREFUSED",  # its 'close' would have come after the exit
        f"CONNECT {address}:{port} → no answer",  # it exited before this connection was made
    ]
    assert result.stderr.splitlines()[-1] == f"{PREFIX}0 requests to telemetry.refine.dev"


def test_egress_none_fails_with_the_telemetry_part_unchanged(address):
    with answering_server(address) as port:
        command = egress_js(["connect", address, str(port)])
        relaxed = run_cli("--expect", "none", "--", *command)
        strict = run_cli("--expect", "none", "--egress", "none", "--", *command)
    assert (relaxed.returncode, strict.returncode) == (0, 1), strict.stderr
    assert relaxed.stderr.splitlines()[-1] == f"{PREFIX}PASS: expected no request, got 0"
    assert strict.stderr.splitlines()[-1] == (
        f"{PREFIX}FAIL: expected no request, got 0; --egress none: 1 other host contacted ({address})")
    assert listing(relaxed.stderr) == listing(strict.stderr) == [
        "Other hosts contacted (1 host, 1 request):", f"CONNECT {address}:{port} → connected"]


@pytest.mark.parametrize(("args", "message"), [
    (["--egress", "none"],
     f"{PREFIX}--egress none is judged beside the telemetry verdict: add --expect none, any or N"),
    (["--egress", "some"],
     f"{PREFIX}argument --egress: must be any or none, got 'some' (see telemetry-inspector run --help)"),
])
def test_egress_usage_errors_are_one_line(args, message):
    result = run_cli(*args, "--", "true")
    assert (result.returncode, result.stderr) == (2, message + "\n")


def test_a_broken_report_line_is_a_note_and_the_rest_is_listed(address):
    bad = ('not json\\n{"kind":"CONNECT","host":"two words","port":1}\\n'
           f'{{"kind":"CONNECT","host":"{address}","port":80,"error":null,"address":"{address}"}}\\n')
    result = run_cli("--", str(node), "-e", f"require('fs').appendFileSync(process.env.{ENV_EGRESS_FILE}, '{bad}')")
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert f"{PREFIX}egress report line 1: not JSON (Expecting value: line 1 column 1 (char 0)); skipped" in lines
    assert f"{PREFIX}egress report line 2: host has a space or a control character; skipped" in lines
    assert listing(result.stderr) == ["Other hosts contacted (1 host, 1 request):", f"CONNECT {address}:80 → connected"]


def test_the_report_stops_at_its_cap_and_says_so(address):
    with answering_server(address) as port:
        fill = f"require('fs').appendFileSync(process.env.{ENV_EGRESS_FILE}, ' '.repeat({REPORT_CAP}) + '\\n')"
        result = run_cli("--", "sh", "-c", f'"$0" -e "{fill}" && "$0" "$1" connect {address} {port}',
                         str(node), str(EGRESS_JS))
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"connect {address}:{port} ok\n"
    assert listing(result.stderr) == []
    assert (f"{PREFIX}the egress report reached its cap (1024 KiB): later lookups, connections and requests are "
            "not listed") in result.stderr.splitlines()


def test_a_report_that_cannot_be_written_never_breaks_the_program(address, tmp_path):
    with answering_server(address) as port, RoutedNode() as routed:
        env = {**routed.env(), ENV_EGRESS_FILE: str(tmp_path)}  # a folder: every append fails
        done = subprocess.run(egress_js(["connect", address, str(port)], ["fetch", f"http://{address}:{port}/"]),
                              env=env, capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout, done.stderr) == (
        0, f"connect {address}:{port} ok\nfetch http://{address}:{port}/ 200\n", "")


@pytest.mark.parametrize(("script", "message"), [
    # An unhandled socket error still ends the program (the preload adds no 'error' listener)...
    ("require('net').connect(PORT, 'ADDRESS')", "Error: connect ECONNREFUSED ADDRESS:PORT"),
    # ...and an unhandled rejected lookup stays unhandled.
    ("require('dns').promises.lookup('nonexistent.invalid')", "Error: getaddrinfo ENOTFOUND nonexistent.invalid"),
])
def test_the_programs_own_errors_stay_as_they_were(address, script, message):
    with refused_port(address) as closed, RoutedNode() as routed:
        code = script.replace("PORT", str(closed)).replace("ADDRESS", address)
        done = subprocess.run([str(node), "-e", code], env=routed.env(), capture_output=True, text=True, timeout=60)
        report = routed.other_requests()
    assert done.returncode == 1
    assert message.replace("PORT", str(closed)).replace("ADDRESS", address) in done.stderr
    assert [r.line() for r in report.requests][-1].endswith("→ failed: " + message.split()[-2])


def test_routed_env_names_the_report_and_sets_no_proxy_without_a_proxy():
    base = {"PATH": os.environ["PATH"], "HTTPS_PROXY": "http://corp:3128"}
    with RoutedNode() as routed:
        env = routed.env(base)
        assert env[ENV_EGRESS_FILE] == str(routed.egress_file)
        assert oct(routed.egress_file.stat().st_mode & 0o777) == "0o600"
        assert oct(routed.directory.stat().st_mode & 0o777) == "0o700"
    assert env["HTTPS_PROXY"] == "http://corp:3128"  # untouched without --proxy-port
    assert "NODE_USE_ENV_PROXY" not in env and "NO_PROXY" not in env


# -- the report's lines, checked -----------------------------------------------------------

AT = "2026-12-02T04:14:25.123Z"


def report_of(*lines: object) -> tuple[list[str], list[str]]:
    data = "".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines).encode()
    parsed = parse_report(data)
    return [request.line(full=True) for request in parsed.requests], parsed.notes


def test_good_lines_become_other_requests():
    lines, notes = report_of(
        {"kind": "LOOKUP", "host": "registry.npmjs.org", "error": None, "addresses": ["203.0.113.80"], "at": AT},
        {"kind": "LOOKUP", "host": "raw.githubusercontent.com", "error": "ENOTFOUND", "addresses": [], "at": AT},
        {"kind": "CONNECT", "host": "2001:db8::1", "port": 443, "error": None, "address": "2001:db8::1"},
        {"kind": "CONNECT", "host": "codeload.github.com", "port": 443, "error": None, "unfinished": True},
        {"kind": "REQUEST", "method": "GET", "url": "https://raw.githubusercontent.com/refinedev/refine/main/"
         "packages/cli/ANNOUNCEMENTS.md", "host": "raw.githubusercontent.com", "status": 200, "error": None})
    assert notes == []
    assert lines == [
        "LOOKUP registry.npmjs.org → 203.0.113.80 — update notifier: the npm registry",
        "LOOKUP raw.githubusercontent.com → failed: ENOTFOUND" + GITHUB_FILES,
        "CONNECT [2001:db8::1]:443 → connected",
        "CONNECT codeload.github.com:443 → no answer — create-refine-app templates",
        "GET https://raw.githubusercontent.com/refinedev/refine/main/packages/cli/ANNOUNCEMENTS.md → 200 — "
        "refine CLI announcements (refine dev)",
    ]
    [first] = parse_report(b'{"kind":"LOOKUP","host":"example.com","addresses":["192.0.2.9"],"at":"%s"}\n'
                           % AT.encode()).requests
    assert first == OtherRequest("LOOKUP", "example.com", "example.com", "node", at=AT, answer="192.0.2.9")


def test_loopback_and_the_inspectors_own_host_are_left_out():
    lines, notes = report_of(
        {"kind": "LOOKUP", "host": "vm", "addresses": ["127.0.0.1"]},  # a name for this machine
        {"kind": "CONNECT", "host": "vm", "port": 80, "address": "127.0.0.1"},
        {"kind": "CONNECT", "host": "localhost", "port": 80},
        {"kind": "CONNECT", "host": "::1", "port": 80},
        {"kind": "REQUEST", "method": "POST", "url": "https://telemetry.refine.dev/cli",
         "host": "telemetry.refine.dev"})
    assert (lines, notes) == ([], [])


@pytest.mark.parametrize(("line", "why"), [
    (b"\xff\xfe", "not UTF-8"),
    (b"[1, 2]", "not a JSON object"),
    (b'{"kind": "LOOKUP", "host": "a.b", "port": NaN}', "not JSON (NaN is not JSON)"),
    (b'{"kind": "SEND", "host": "a.b"}', "unknown kind 'SEND'"),
    (b'{"kind": "LOOKUP", "host": "a.b", "extra": 1}', "unknown key 'extra'"),
    (b'{"kind": "LOOKUP"}', "no host"),
    (b'{"kind": "LOOKUP", "host": "a\\u001b[2Jb"}', "host has a space or a control character"),
    (b'{"kind": "LOOKUP", "host": "a.b", "addresses": ["not an ip"]}', "addresses is not a list of IP addresses"),
    (b'{"kind": "CONNECT", "host": "a.b", "port": 70000}', "port is not a whole number from 1 to 65535"),
    (b'{"kind": "CONNECT", "host": "a.b", "port": true}', "port is not a whole number from 1 to 65535"),
    (b'{"kind": "CONNECT", "host": "a.b", "port": 1e400}', "a number out of range at port"),
    (b'{"kind": "CONNECT", "host": "a.b", "port": 1, "address": "x"}', "address is not an IP address"),
    (b'{"kind": "REQUEST", "host": "a.b", "method": "G T", "url": "http://a.b/"}',
     "method has a space or a control character"),
    (b'{"kind": "REQUEST", "host": "a.b", "method": "GET", "url": "file:///etc/passwd"}', "url is not an http(s) URL"),
    (b'{"kind": "REQUEST", "host": "a.b", "method": "GET", "url": "http://a.b/", "status": 42}',
     "status is not a whole number from 100 to 999"),
    (b'{"kind": "LOOKUP", "host": "a.b", "at": "yesterday"}', "at is not an ISO time in UTC"),
    (b'{"kind": "LOOKUP", "host": "a.b", "unfinished": 1}', "unfinished is not true or false"),
    (b'{"kind": "LOOKUP", "host": "a.b", "error": ""}', "error is not a short text"),
    pytest.param(b'{"kind": "LOOKUP", "host": "' + b"a" * 10000 + b'"}', "over 9216 bytes", id="too long"),
])
def test_each_bad_line_is_one_note(line, why):
    parsed = parse_report(line + b"\n" + b'{"kind": "LOOKUP", "host": "ok.example"}\n')
    assert parsed.notes == [f"egress report line 1: {why}; skipped"]
    assert [r.host for r in parsed.requests] == ["ok.example"]


def test_many_bad_lines_are_counted_and_the_cap_is_noted():
    data = b"x\n" * 8 + b'{"kind": "CAPPED", "at": "%s"}\n' % AT.encode() + b'{"kind": "LOOKUP", "ho'
    notes = parse_report(data).notes
    assert notes == [*(f"egress report line {n}: not JSON (Expecting value: line 1 column 1 (char 0)); skipped"
                       for n in range(1, 6)),
                     "egress report: 4 more bad lines skipped",  # lines 6-8, and line 10, cut short
                     "the egress report reached its cap (1024 KiB): later lookups, connections and requests are "
                     "not listed"]


def test_a_last_line_without_its_end_is_cut_short():
    parsed = parse_report(b'{"kind": "LOOKUP", "host": "a.example"}\n{"kind": "LOOKUP", "host": "b.example"}')
    assert [r.host for r in parsed.requests] == ["a.example"]
    assert parsed.notes == ["egress report line 2: cut short (no end of line); skipped"]


def test_a_missing_report_is_a_note(tmp_path: Path):
    from mockserver.reach.nodeegress import read_report

    assert read_report(tmp_path / "gone.jsonl").notes == [
        f"cannot read the egress report {tmp_path / 'gone.jsonl'}: No such file or directory"]
