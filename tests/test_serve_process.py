"""The ``serve_process`` fixture itself: records matched by content, waits that fail, the log on failure."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from mockserver.core.payloads import btoa_json
from tests.support.helpers import CHROME_UA, REFINE_4_PAYLOAD, http
from tests.support.serve import field_value, matches

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]
RECORD = {"kind": "beacon", "status": "ok", "request": {"path": "/telemetry", "headers": {"User-Agent": "x"}},
          "payload": {"version": "4.58.0", "providers": {"data": True}}, "contact": None}


def test_fields_are_found_by_short_name_dotted_path_or_double_underscore():
    assert field_value(RECORD, "path") == "/telemetry"
    assert field_value(RECORD, "payload.version") == field_value(RECORD, "payload__version") == "4.58.0"
    assert field_value(RECORD, "payload.providers.data") is True
    assert field_value(RECORD, "request.headers.User-Agent") == "x"
    assert matches(RECORD, {"kind": "beacon", "payload.version": "4.58.0", "contact": None})
    assert not matches(RECORD, {"kind": "beacon", "status": "invalid"})
    assert not matches(RECORD, {"payload.projectId": None})  # a missing field is no match, not None
    assert not matches(RECORD, {"contact.email": "a@b"})  # nor is a path through null


def test_patterns_and_predicates_match_values():
    assert matches(RECORD, {"payload.version": re.compile(r"^4\.")})
    assert not matches(RECORD, {"payload.version": re.compile(r"^5\.")})
    assert not matches(RECORD, {"payload.providers": re.compile("data")})  # a pattern reads strings only
    assert matches(RECORD, {"payload.providers": lambda p: p == {"data": True}})
    assert not matches(RECORD, {"path": lambda p: p.startswith("/cli")})


def test_wait_for_matches_records_by_content_and_returns_each_once(serve_process):
    serve = serve_process()
    beacon = {**REFINE_4_PAYLOAD, "projectId": "p-1"}
    assert http("GET", f"{serve.http_url}/telemetry?payload=not-base64!",
                headers={"User-Agent": CHROME_UA})[0] == 400
    assert http("GET", f"{serve.http_url}/telemetry?payload={btoa_json(beacon)}")[0] == 200
    assert http("POST", f"{serve.http_url}/cli", body=json.dumps({"command": "dev", "projectId": "c-1"}).encode(),
                headers={"Content-Type": "application/json"})[0] == 200
    cli = serve.wait_for(kind="cli", path="/cli", method="POST")
    ok = serve.wait_for(kind="beacon", status="ok", **{"payload.version": "4.58.0", "payload.projectId": "p-1"})
    invalid = serve.wait_for(status="invalid", path="/telemetry", **{"request.headers.User-Agent": CHROME_UA})
    assert (invalid["id"], ok["id"], cli["id"]) == (1, 2, 3)  # found by content, whatever the order
    assert invalid["request"]["query"] == "payload=not-base64!"
    with pytest.raises(AssertionError, match=r"no record with \{'kind': 'cli'\}: none within 0\.2 s"):
        serve.wait_for(timeout=0.2, kind="cli")  # the one there was already returned
    assert [r["id"] for r in serve.records(path="/telemetry")] == [1, 2]


def test_ensure_not_logged_sees_records_already_printed_and_arriving(serve_process):
    serve = serve_process()
    serve.ensure_not_logged(0.2, kind="beacon")
    http("GET", f"{serve.http_url}/telemetry?payload={btoa_json(REFINE_4_PAYLOAD)}")
    serve.wait_for(kind="beacon")
    serve.ensure_not_logged(0.2, kind="beacon", status="invalid")
    with pytest.raises(AssertionError, match=r"^a record with \{'kind': 'beacon'\} was printed: \{'id': 1, "):
        serve.ensure_not_logged(0.2, kind="beacon")


def test_a_child_that_exits_fails_the_wait_with_its_output(serve_process, tmp_path):
    (tmp_path / "bad.sqlite3").write_bytes(b"garbage" * 200)
    with pytest.raises(AssertionError) as failure:
        serve_process("--db", str(tmp_path / "bad.sqlite3"))
    message = str(failure.value)
    assert message.startswith("serve printed no 'Waiting for requests; Ctrl-C stops.' on stderr: "
                              "the process's output ended\n[stderr] telemetry-inspector serve: ")
    assert "is not a usable inspector database" in message


def test_a_failing_test_carries_the_process_output(pytester, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    pytester.makepyfile("""
        import urllib.request

        def test_fails(serve_process):
            serve = serve_process()
            urllib.request.urlopen(serve.http_url + "/location", timeout=10).read()
            serve.wait_for(path="/location")
            assert False, "on purpose"

        def test_passes(serve_process):
            serve_process()
    """)
    result = pytester.runpytest_subprocess("-p", "tests.support.serve", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1, passed=1)
    output = result.stdout.str()
    assert output.count("serve process 1 output (-m mockserver serve --json --port 0 --no-https --db :memory:)") == 1
    assert re.search(r"\[stderr\]   HTTP      http://127\.0\.0\.1:\d+/telemetry", output)
    assert '"path":"/location"' in output  # its record, printed on stdout
