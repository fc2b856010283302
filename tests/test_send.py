"""The composer and ``telemetry-inspector send``: byte-identical to what @refinedev/core sends.

The reference is ``tests/data/real_beacons.json``: beacons the real
@refinedev/core 4.58.0 and 5.0.12 sent from headless Chromium, and
``encoder_vectors.json``: what Node's btoa and Buffer printed.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

import mockserver.cli.main as cli
from mockserver.core.capture import RawRequest, capture
from mockserver.core.checks import PROVIDERS
from mockserver.core.payloads import BROWSER, NODE, BtoaRefused, beacon_payload, encode_payload, js_stringify
from mockserver.reach.compose import SendError, compose_beacon, send

DATA = Path(__file__).parent / "data"
CAPTURES = json.loads((DATA / "real_beacons.json").read_text())
VECTORS = json.loads((DATA / "encoder_vectors.json").read_text())


def _inputs(entry: dict) -> dict:
    """The app's inputs behind a captured scenario (every fixture app has 2 resources)."""
    major = entry["refine_version"].split(".")[0]
    on = ["data", "router"] if major == "4" else ["data"]  # router: always true in 4.x, real in 5.x
    return {"version": entry["refine_version"], "providers": on, "resources": 2, "project_id": entry["project_id"]}


SENT = [pytest.param(e, id=f"{e['refine_version']}-{e['scenario']}") for e in CAPTURES if e["count"] == 1]
REFUSED = [pytest.param(e, id=f"{e['refine_version']}-{e['scenario']}")
           for e in CAPTURES if e["scenario"] == "projectid-euro"]


@pytest.mark.parametrize("entry", SENT)
def test_composed_query_is_byte_identical_to_the_real_package(entry):
    request = compose_beacon(**_inputs(entry), encoding=BROWSER)
    real = entry["requests"][0]
    assert request.method == real["method"] and request.path == real["path"]
    assert request.query == real["raw_query"]
    assert request.payload == entry["decoded"][0]
    assert list(request.payload) == list(entry["decoded"][0])
    assert list(request.payload["providers"]) == list(PROVIDERS)


@pytest.mark.parametrize("entry", REFUSED)
def test_btoa_refusal_matches_the_real_package_sending_nothing(entry):
    assert entry["count"] == 0  # what the real package did: nothing
    with pytest.raises(BtoaRefused) as caught:
        compose_beacon(**_inputs(entry), encoding=BROWSER)
    assert caught.value.where == "projectId"
    assert "U+20AC" in str(caught.value) and "sends no beacon" in str(caught.value)
    # Node's Buffer has no such limit
    assert compose_beacon(**_inputs(entry), encoding=NODE).query.startswith("payload=")


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: js_stringify(v["payload"])[:40])
def test_encoders_equal_what_node_printed(vector):
    assert js_stringify(vector["payload"]) == vector["json"]
    assert encode_payload(vector["payload"], NODE) == vector["buffer"]
    if vector["btoa_error"]:
        with pytest.raises(BtoaRefused):
            encode_payload(vector["payload"], BROWSER)
    else:
        assert encode_payload(vector["payload"], BROWSER) == vector["btoa"]


def test_payload_keys_in_refine_order_and_project_id_only_when_set():
    payload = beacon_payload("5.0.12", ["i18n", "auth"], 7)
    assert list(payload) == ["providers", "version", "resourceCount"]
    assert payload["providers"] == {"auth": True, "auditLog": False, "live": False, "router": False, "data": False,
                                    "i18n": True, "notification": False, "accessControl": False}
    assert list(beacon_payload(project_id="")) == ["providers", "version", "resourceCount", "projectId"]
    with pytest.raises(ValueError, match="unknown provider"):
        beacon_payload(providers=["Auth"])
    with pytest.raises(ValueError, match="resources"):
        compose_beacon(resources=-1)


def test_no_url_encoding_and_latin1_vs_utf8():
    browser = compose_beacon(project_id="p+/=?&éûû", encoding=BROWSER)
    node = compose_beacon(project_id="p+/=?&éûû", encoding=NODE)
    for request in (browser, node):
        assert "%" not in request.query
    assert "+" in browser.query and "/" in browser.query
    decoded = {r.encoding: capture(RawRequest("GET", "/telemetry", r.query)) for r in (browser, node)}
    assert decoded[BROWSER].encoding == "latin-1"
    assert decoded[NODE].encoding == "utf-8"
    assert decoded[BROWSER].payload == decoded[NODE].payload == browser.payload


# -- real sockets -----------------------------------------------------------------

def test_send_to_a_live_inspector_is_decoded_as_composed(live_server, journal):
    request = compose_beacon(version="4.57.0", providers=["auth", "data", "router", "i18n"], resources=5,
                             project_id="café", encoding=BROWSER, referer="http://localhost:5173/")
    result = send(request, live_server.listening.http_url)
    assert result.status == 200 and result.content_type == "image/gif"
    record = journal.wait_for(1)[0]
    assert record["request"]["query"] == request.query
    assert record["raw_payload"] == request.query.removeprefix("payload=")
    assert record["payload"] == request.payload
    assert list(record["payload"]) == list(request.payload)
    assert record["encoding"] == "latin-1" and record["status"] == "ok" and record["problems"] == []
    assert record["client"]["hostname"] == "localhost"


def test_send_over_https_trusts_the_inspector_ca(live_server, journal, certificate_dir, monkeypatch):
    from mockserver.reach import compose

    monkeypatch.setattr(compose, "tls_dir", lambda: certificate_dir)  # where this run's local CA is
    request = compose_beacon(project_id="x", encoding=NODE)
    result = send(request, live_server.listening.https_url)
    assert result.status == 200
    assert journal.wait_for(1)[0]["request"]["scheme"] == "https"


def test_send_command_sends_and_exits_0(live_server, journal, capsys):
    status = cli.main(["send", "--to", live_server.listening.http_url, "--version", "5.0.12",
                       "--providers", "data,i18n", "--resources", "3", "--project-id", "p+/=", "--encoding", "node"])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "answer   200" in out
    record = journal.wait_for(1)[0]
    assert record["payload"] == {"providers": {"auth": False, "auditLog": False, "live": False, "router": False,
                                               "data": True, "i18n": True, "notification": False,
                                               "accessControl": False},
                                 "version": "5.0.12", "resourceCount": 3, "projectId": "p+/="}
    assert record["encoding"] == "utf-8"


def test_send_command_refused_by_btoa_sends_nothing_and_exits_1(live_server, journal, capsys):
    status = cli.main(["send", "--to", live_server.listening.http_url, "--project-id", "€"])
    err = capsys.readouterr().err
    assert status == 1
    assert err.count("\n") == 1 and "not sent: projectId contains '€'" in err
    journal.ensure_not_logged(delay=0.5)


def test_send_dry_run_prints_the_exact_request_and_sends_nothing(live_server, journal, capsys):
    assert cli.main(["send", "--to", live_server.listening.http_url, "--dry-run", "--providers", ""]) == 0
    out = capsys.readouterr().out
    expected = compose_beacon(providers=[])
    assert f"{live_server.listening.http_url}{expected.target}" in out
    journal.ensure_not_logged(delay=0.5)


@pytest.mark.parametrize("argv", [
    ["--providers", "data,bogus"],
    ["--resources", "-1"],
    ["--resources", "two"],
    ["--encoding", "utf-16"],
    ["--to", "ftp://127.0.0.1:8787"],
    ["--to", "http://127.0.0.1:99999"],
])
def test_send_bad_arguments_exit_2_with_one_line(argv, capsys):
    assert cli.main(["send", *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err


def test_send_to_nothing_listening_exits_2(capsys):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert cli.main(["send", "--to", f"http://127.0.0.1:{port}"]) == 2
    err = capsys.readouterr().err
    assert "could not send" in err and err.count("\n") == 1
    with pytest.raises(SendError):
        send(compose_beacon(), f"http://127.0.0.1:{port}")


@pytest.mark.parametrize(("argv", "message"), [
    (["send", "--resources", "-1"], "argument --resources: resource count must be 0 or more, got -1"),
    (["send", "--resources", "two"], "argument --resources: resource count is a whole number, got 'two'"),
    (["serve", "--port", "65536"], "argument --port: port must be 0-65535 (0 = any free port), got 65536"),
    (["serve", "--https-port", "x"], "argument --https-port: port is a whole number, got 'x'"),
])
def test_whole_number_arguments_say_what_is_wrong(argv, message, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
