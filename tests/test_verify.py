"""The verdict (verify/run/GUI opt-out check), JUnit output, the journal reader, and verify's exit 2 paths.

Real-browser runs of ``verify`` against real refine apps are in tests/e2e/.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from mockserver.core.capture import RawRequest, capture
from mockserver.core.payloads import btoa_json
from mockserver.reach.remote import RemoteError, RemoteInspector
from mockserver.records.advice import CLI, CORE_4_AND_5
from mockserver.records.verdict import Expectation, ExpectationError, FieldCheck, OptOutWatch, judge, write_junit
from mockserver.serving.server import InspectorServer
from tests.support.helpers import REFINE_4_PAYLOAD, http, stand_in_browser, was_started

ROOT = Path(__file__).resolve().parents[1]


def beacon_of(payload: dict, record_id: int = 1):
    beacon = capture(RawRequest("GET", "/telemetry", f"payload={btoa_json(payload)}",
                                {"Host": "telemetry.refine.dev"}, scheme="https", peer="127.0.0.1"))
    beacon.id = record_id
    return beacon


def cli_record(record_id: int = 1):
    body = json.dumps({"command": "build", "projectId": "x"}).encode()
    beacon = capture(RawRequest("POST", "/cli", "", {"Content-Type": "application/json"}, body, peer="127.0.0.1"))
    beacon.id = record_id
    return beacon


# -- expectations and field checks -------------------------------------------------

@pytest.mark.parametrize(("text", "mode", "count"), [
    ("none", "none", None), ("NONE", "none", None), ("any", "any", None), ("0", "none", None), ("3", "exactly", 3),
])
def test_expect_parses(text, mode, count):
    expectation = Expectation.parse(text)
    assert (expectation.mode, expectation.count) == (mode, count)


@pytest.mark.parametrize("text", ["", "some", "-1", "1.5", "two"])
def test_bad_expect_is_one_clear_error(text):
    with pytest.raises(ExpectationError, match="--expect must be none, any or a number"):
        Expectation.parse(text)


def test_expectations_count():
    assert Expectation.parse("none").met_by(0) and not Expectation.parse("none").met_by(1)
    assert Expectation.parse("any").met_by(2) and not Expectation.parse("any").met_by(0)
    assert Expectation.parse("2").met_by(2) and not Expectation.parse("2").met_by(1)
    assert not Expectation.parse("2").met_by(3)


@pytest.mark.parametrize(("text", "path", "value"), [
    ("version=4.58.0", "version", "4.58.0"),  # not JSON: text
    ("providers.auth=false", "providers.auth", False),
    ("resourceCount=2", "resourceCount", 2),
    ('projectId="123"', "projectId", "123"),  # JSON string: keeps digits as text
    ("projectId=p+/=?&?>?>", "projectId", "p+/=?&?>?>"),  # only the first '=' splits
    ("projectId=café", "projectId", "café"),
    ("projectId=", "projectId", ""),
    ("x=null", "x", None),
])
def test_field_parses_json_else_text(text, path, value):
    check = FieldCheck.parse(text)
    assert (check.path, check.value) == (path, value)


@pytest.mark.parametrize("text", ["version", "=4", "a..b=1", ".a=1"])
def test_bad_field_is_one_clear_error(text):
    with pytest.raises(ExpectationError, match="--field wants PATH=VALUE"):
        FieldCheck.parse(text)


def test_field_checks_compare_like_json():
    beacon = beacon_of({**REFINE_4_PAYLOAD, "projectId": "café"})
    assert FieldCheck.parse("version=4.58.0").problem(beacon) is None
    assert FieldCheck.parse("providers.router=true").problem(beacon) is None
    assert FieldCheck.parse("resourceCount=2.0").problem(beacon) is None
    assert FieldCheck.parse("projectId=café").problem(beacon) is None
    # true is not 1 and "2" is not 2
    assert "expected 1, got true" in FieldCheck.parse("providers.router=1").problem(beacon)
    assert 'expected "2", got 2' in FieldCheck.parse('resourceCount="2"').problem(beacon)
    assert "not in the payload" in FieldCheck.parse("providers.nope=true").problem(beacon)


# -- judging ---------------------------------------------------------------------

def test_nothing_sent_passes_expect_none():
    verdict = judge([], Expectation.parse("none"))
    assert verdict.passed and verdict.headline == "PASS" and verdict.exit_code == 0
    assert verdict.summary() == "PASS: expected no request, got 0"
    assert verdict.advice == [] and verdict.offending == []


def test_a_beacon_fails_expect_none_and_says_how_to_opt_out():
    beacon = beacon_of(REFINE_4_PAYLOAD)
    verdict = judge([beacon], Expectation.parse("none"))
    assert not verdict.passed and verdict.exit_code == 1
    assert verdict.summary() == "FAIL: expected no request, got 1"
    assert verdict.offending == [beacon]
    assert verdict.advice == [CORE_4_AND_5]


def test_a_cli_post_fails_expect_none_with_the_cli_advice():
    verdict = judge([cli_record()], Expectation.parse("none"))
    assert verdict.advice == [CLI]


def test_field_failures_name_the_record():
    good, bad = beacon_of(REFINE_4_PAYLOAD, 1), beacon_of({**REFINE_4_PAYLOAD, "version": "4.1.0"}, 2)
    verdict = judge([good, bad], Expectation.parse("any"), [FieldCheck.parse("version=4.58.0")])
    assert not verdict.passed
    assert verdict.offending == [bad]
    assert verdict.failures == ['#2: version: expected "4.58.0", got "4.1.0"']
    assert verdict.summary() == ('FAIL: expected at least one request with version=4.58.0, got 2 '
                                 '(#2: version: expected "4.58.0", got "4.1.0")')


def test_exact_count():
    records = [beacon_of(REFINE_4_PAYLOAD, i) for i in (1, 2)]
    assert judge(records, Expectation.parse("2")).passed
    verdict = judge(records, Expectation.parse("1"))
    assert not verdict.passed and verdict.failures == ["expected exactly 1 request, got 2"]


def test_verdict_json_form():
    data = judge([beacon_of(REFINE_4_PAYLOAD)], Expectation.parse("none")).to_dict()
    assert data["verdict"] == "FAIL" and data["passed"] is False and data["count"] == 1
    assert data["expect"] == "none" and data["offending"] == [1]
    assert data["beacons"][0]["payload"] == REFINE_4_PAYLOAD
    json.dumps(data)


# -- JUnit ---------------------------------------------------------------------

def test_junit_pass_fail_error(tmp_path):
    path = tmp_path / "report.xml"
    write_junit(path, name="app (expect none)", verdict=judge([], Expectation.parse("none")), seconds=1.5)
    case = ET.parse(path).getroot().find("testsuite/testcase")
    assert case is not None and case.get("name") == "app (expect none)" and list(case) == []

    failing = judge([beacon_of({**REFINE_4_PAYLOAD, "projectId": "\x1b[31mred"})], Expectation.parse("none"))
    write_junit(path, name="app", verdict=failing, seconds=2, output="line with \x1b escape")
    suite = ET.parse(path).getroot().find("testsuite")
    assert suite.get("failures") == "1" and suite.get("errors") == "0"
    failure = suite.find("testcase/failure")
    assert failure.get("message") == "FAIL: expected no request, got 1"
    assert "disableTelemetry: true" in failure.text
    assert "\\x1b escape" in suite.find("testcase/system-out").text

    write_junit(path, name="app", verdict=None, seconds=0.1, error="http://x is unreachable")
    suite = ET.parse(path).getroot().find("testsuite")
    assert suite.get("errors") == "1" and suite.find("testcase/error").get("message") == "http://x is unreachable"


# -- the GUI's opt-out check ------------------------------------------------------

def test_opt_out_watch_counts_only_what_arrives_after_start(client, store):
    client.get(f"/telemetry?payload={btoa_json(REFINE_4_PAYLOAD)}")  # before the watch: not counted
    changes = []
    watch = OptOutWatch(store, on_change=lambda w: changes.append(w.count)).start()
    assert watch.active and watch.count == 0 and watch.verdict().passed
    client.get(f"/telemetry?payload={btoa_json(REFINE_4_PAYLOAD)}")
    client.post("/cli", json={"command": "dev"})
    assert watch.count == 2 and changes == [1, 2]
    verdict = watch.verdict()
    assert verdict.headline == "FAIL" and verdict.count == 2
    assert [b.kind for b in verdict.offending] == ["beacon", "cli"]
    assert verdict.advice == [CORE_4_AND_5, CLI]
    final = watch.stop()
    assert not watch.active and final.count == 2
    client.get(f"/telemetry?payload={btoa_json(REFINE_4_PAYLOAD)}")  # after stop: not heard
    assert watch.count == 2 and changes == [1, 2]


def test_opt_out_watch_with_other_expectations(client, store):
    watch = OptOutWatch(store, "any", ["version=4.58.0"]).start()
    assert watch.verdict().headline == "FAIL"  # nothing yet
    client.get(f"/telemetry?payload={btoa_json(REFINE_4_PAYLOAD)}")
    assert watch.verdict().headline == "PASS"
    assert watch.quiet_for() >= 0 and watch.elapsed() >= watch.quiet_for() - 1e-3
    watch.stop()


# -- a running inspector's journal ----------------------------------------------

def test_remote_inspector_finds_https_side_pin_and_last_id(live_server, journal):
    listening = live_server.listening
    for _ in range(5):
        http("GET", f"{listening.http_url}/telemetry?payload={btoa_json(REFINE_4_PAYLOAD)}")
    # Make the ids non-contiguous: the last id must still be found.
    http("DELETE", f"{listening.http_url}/__inspector/beacons")
    for _ in range(3):
        http("GET", f"{listening.http_url}/telemetry?payload={btoa_json(REFINE_4_PAYLOAD)}")
    remote = RemoteInspector.connect(listening.https_url)
    assert remote.https_port == listening.https_port
    assert remote.spki_pin == listening.spki_pin
    assert remote.last_id() == live_server.store.last_id() == 8
    assert [b.id for b in remote.beacons(since=6)] == [7, 8]

    seen, stop = [], threading.Event()
    follower = threading.Thread(target=remote.follow,
                                args=(lambda b: (seen.append(b.id), stop.set()), stop, remote.last_id()))
    follower.start()
    http("GET", f"{listening.http_url}/telemetry?payload={btoa_json(REFINE_4_PAYLOAD)}")
    follower.join(timeout=10)
    assert seen == [9]


def test_remote_inspector_over_http_finds_the_https_side_from_health(live_server):
    remote = RemoteInspector.connect(live_server.listening.http_url)
    assert (remote.https_port, remote.spki_pin) == (live_server.listening.https_port,
                                                     live_server.listening.spki_pin)


def test_remote_inspector_without_https_says_what_to_pass(store):
    with InspectorServer(store, port=0, https_port=None) as http_only:
        with pytest.raises(RemoteError, match="pass its HTTPS URL instead"):
            RemoteInspector.connect(http_only.listening.http_url)


def test_remote_inspector_refuses_what_is_not_an_inspector(live_server):
    with pytest.raises(RemoteError, match="no inspector at"):
        RemoteInspector.connect("http://127.0.0.1:9/")
    with pytest.raises(RemoteError, match="wants the inspector's URL"):
        RemoteInspector.connect("ftp://127.0.0.1/")


def test_remote_inspector_on_an_empty_journal(live_server):
    assert RemoteInspector.connect(live_server.listening.https_url).last_id() == 0


# -- verify's "could not run" paths: exit 2, one line, no traceback --------------

def run_verify_cli(*args: str, cwd: Path = ROOT, env: dict[str, str] | None = None
                   ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mockserver", "verify", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60)


@pytest.fixture
def page_url(live_server):
    """Any URL that answers (the mock's own health page): enough to get past the URL check."""
    return f"{live_server.listening.http_url}/__inspector/health"


@pytest.mark.parametrize(("args", "message"), [
    (["http://127.0.0.1:9/"], "http://127.0.0.1:9/ is unreachable: "),
    (["not-a-url"], "not an http(s) or file URL: 'not-a-url'"),
    (["file:///no/such/page.html"], "file:///no/such/page.html: no such file"),
    (["{page}", "--expect", "lots"], "--expect must be none, any or a number of requests; got 'lots'"),
    (["{page}", "--field", "version"], "--field wants PATH=VALUE"),
    (["{page}", "--within", "soon"], "argument --within: not a number of seconds: 'soon'"),
    (["{page}", "--browser", "/no/such/chrome"], "--browser /no/such/chrome: no such file"),
    (["{page}", "--browser", "no-such-browser-name"], "--browser no-such-browser-name: not found on PATH"),
    (["{page}", "--server", "http://127.0.0.1:9"], "no inspector at http://127.0.0.1:9/__inspector/health"),
    (["{page}", "--junit", "/no/such/dir/report.xml"], "--junit /no/such/dir/report.xml: cannot write there"),
    ([], "the following arguments are required: URL"),
])
def test_verify_could_not_run_is_exit_2_and_one_line(args, message, page_url):
    result = run_verify_cli(*[a.replace("{page}", page_url) for a in args])
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("telemetry-inspector verify: ") and message in lines[-1], result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_verify_404_page_is_could_not_run_not_a_pass(live_server):
    # An app that is not being served must never pass "--expect none" by sending nothing.
    result = run_verify_cli(f"{live_server.listening.http_url}/__inspector/nothing", "--expect", "none")
    assert result.returncode == 2
    assert "answered HTTP 404" in result.stderr


def test_verify_could_not_run_still_writes_json_and_junit(tmp_path):
    report = tmp_path / "verify.xml"
    result = run_verify_cli("http://127.0.0.1:9/", "--json", "--junit", str(report))
    assert result.returncode == 2
    data = json.loads(result.stdout)
    assert data["verdict"] == "ERROR" and "unreachable" in data["error"]
    suite = ET.parse(report).getroot().find("testsuite")
    assert suite.get("errors") == "1" and "unreachable" in suite.find("testcase/error").get("message")


INSTEAD = ("route it through the proxy (serve --proxy-port N, then set the browser's HTTPS proxy to 127.0.0.1:N; "
           "docs/routing.md, \"Through a proxy\") or use the hosts file and a trusted certificate "
           "(docs/routing.md, \"The hosts file and a trusted certificate\")")


@pytest.mark.parametrize(("version", "refusal"), [
    ("Kiosk Shell 2.1", "not Chrome, Chromium, Edge, Brave, Opera, Vivaldi or Firefox (Kiosk Shell 2.1); "
                        f"to inspect another browser, {INSTEAD}"),
    (None, "not Chrome, Chromium, Edge, Brave, Opera, Vivaldi or Firefox (--version failed with status 3); "
           f"to inspect another browser, {INSTEAD}"),
])
def test_verify_refuses_a_browser_it_cannot_route_before_starting_it(tmp_path, page_url, version, refusal):
    program = stand_in_browser(tmp_path / "browser", version)
    report = tmp_path / "verify.xml"
    result = run_verify_cli(page_url, "--browser", str(program), "--json", "--junit", str(report))
    assert result.returncode == 2, result
    error = f"--browser {program}: {refusal}"
    assert result.stderr.strip().splitlines() == [f"telemetry-inspector verify: {error}"]
    assert json.loads(result.stdout) == {"verdict": "ERROR", "passed": False, "error": error, "url": page_url}
    assert ET.parse(report).getroot().find("testsuite/testcase/error").get("message") == error
    assert not was_started(program)


def test_a_firefox_without_certutil_is_could_not_run_before_it_starts(tmp_path, page_url):
    firefox = stand_in_browser(tmp_path / "browser", "Mozilla Firefox 140.5.0esr")
    bare = tmp_path / "bin"  # a PATH with no certutil on it
    bare.mkdir()
    report = tmp_path / "verify.xml"
    result = run_verify_cli(page_url, "--browser", str(firefox), "--json", "--junit", str(report),
                            env={**os.environ, "PATH": str(bare)})
    assert result.returncode == 2, result
    error = ("Firefox needs certutil (the NSS tools) to trust the inspector's certificate in its profile: on "
             "Debian/Ubuntu apt install libnss3-tools, on macOS brew install nss, on Windows the NSS tools' "
             "certutil.exe on PATH (not Windows' own certutil.exe, a different program)")
    assert result.stderr.strip().splitlines()[-1] == f"telemetry-inspector verify: {error}"
    assert json.loads(result.stdout) == {"verdict": "ERROR", "passed": False, "error": error, "url": page_url}
    assert ET.parse(report).getroot().find("testsuite/testcase/error").get("message") == error
    assert not was_started(firefox)


def test_verify_is_in_the_help():
    result = subprocess.run([sys.executable, "-m", "mockserver", "verify", "--help"], cwd=ROOT,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0
    for option in ("--expect", "--within", "--field", "--json", "--junit", "--server", "--browser"):
        assert option in result.stdout
