"""Request -> record: kinds, enrichment from headers, documented-vs-sent notes, duplicates."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from mockserver.core.capture import RawRequest, capture
from mockserver.core.checks import PROJECT_ID_NOTE
from mockserver.core.payloads import btoa_json
from mockserver.reach.compose import compose_beacon
from mockserver.storage.recorder import Recorder
from tests.support.helpers import CHROME_UA, REFINE_4_PAYLOAD

HEADERS = {
    "Host": "telemetry.refine.dev",
    "User-Agent": CHROME_UA,
    "Referer": "http://localhost:5173/",
    "Sec-Ch-Ua": '"Chromium";v="156", "Not-A.Brand";v="24"',
    "Sec-Ch-Ua-Mobile": "?0",
    "Sec-Ch-Ua-Platform": '"Linux"',
}


def beacon_request(payload=REFINE_4_PAYLOAD, headers=HEADERS, peer="127.0.0.1") -> RawRequest:
    return RawRequest("GET", "/telemetry", f"payload={btoa_json(payload)}", dict(headers),
                      scheme="https", peer=peer)


def test_browser_beacon_is_decoded_and_enriched():
    record = capture(beacon_request())
    assert (record.kind, record.status, record.problems) == ("beacon", "ok", [])
    assert record.payload == REFINE_4_PAYLOAD
    assert record.raw_payload == btoa_json(REFINE_4_PAYLOAD)
    assert record.client == {
        "ip": "127.0.0.1",
        "hostname": "localhost",
        "host": "telemetry.refine.dev",
        "user_agent": CHROME_UA,
        "browser": {"family": "Chrome", "version": "156.0.0"},
        "os": {"family": "Linux", "version": ""},
        "device": "Other",
        "is_mobile": False,
        "is_bot": False,
        "client_hints": {"brands": '"Chromium";v="156", "Not-A.Brand";v="24"', "mobile": "?0", "platform": "Linux"},
    }
    assert record.notes == ["providers: sent as an object of booleans; the docs say boolean[]"]
    assert record.request.scheme == "https"
    assert record.contact is None


def test_documented_vs_sent_notes():
    payload = {"providers": {"data": True, "router": "yes", "telepathy": True}, "version": 4,
               "projectId": "abc", "userName": "ann"}
    notes = capture(beacon_request(payload)).notes
    assert notes == [
        "missing documented key 'resourceCount' (number)",
        "providers: sent as an object of booleans; the docs say boolean[]",
        "providers.router: expected a boolean, got a string",
        "providers.telepathy: not a provider refine reports (undocumented)",
        "providers: missing auth, auditLog, live, i18n, notification, accessControl",
        "version: expected a string, got a number",
        PROJECT_ID_NOTE,
        "undocumented key 'userName' sent (privacy-relevant: not in the docs)",
    ]


def test_forwarded_for_is_used_only_when_trusted():
    headers = {**HEADERS, "X-Forwarded-For": "203.0.113.7, 10.0.0.1"}
    assert capture(beacon_request(headers=headers)).client["ip"] == "127.0.0.1"
    assert capture(beacon_request(headers=headers), trust_proxy=True).client["ip"] == "203.0.113.7"


def test_hostname_prefers_origin_then_referer():
    headers = {"Origin": "https://admin.example.com", "Referer": "http://other.example/"}
    assert capture(beacon_request(headers=headers)).client["hostname"] == "admin.example.com"
    assert capture(beacon_request(headers={})).client["hostname"] is None


def test_cli_body():
    body = {"nodeEnv": "development", "nodeVersion": "v20.20.2", "os": "Linux", "osVersion": "6.1",
            "command": "dev", "packages": [{"name": "@refinedev/core", "version": "4.58.0"}],
            "projectFramework": "vite", "projectId": "p-1", "machineName": "box"}
    record = capture(RawRequest("POST", "/cli", body=json.dumps(body).encode(),
                                headers={"Content-Type": "application/json"}))
    assert (record.kind, record.status, record.payload) == ("cli", "ok", body)
    assert record.encoding == "utf-8"
    assert record.notes == ["undocumented key 'machineName' sent (privacy-relevant)"]


def test_cli_records_show_the_node_and_os_their_body_reports():
    body = {"nodeEnv": "development", "nodeVersion": "v20.20.2", "os": "Linux", "osVersion": "6.1.0-18-amd64",
            "command": "dev"}
    node_fetch = {"Content-Type": "application/json", "User-Agent": "node-fetch/1.0 (+https://github.com/bitinn/node-fetch)"}
    record = capture(RawRequest("POST", "/cli", body=json.dumps(body).encode(), headers=node_fetch))
    assert record.client["browser"] == {"family": "Other", "version": ""}  # what the server collects stays as is
    assert (record.summary().browser, record.summary().os) == ("Node 20.20.2", "Linux 6.1.0-18-amd64")
    no_release_body = json.dumps({"nodeVersion": "v22.1.0", "os": "Darwin"}).encode()
    no_release = capture(RawRequest("POST", "/cli", body=no_release_body, headers=node_fetch))
    assert (no_release.summary().browser, no_release.summary().os) == ("Node 22.1.0", "Darwin")
    # What the real @refinedev/cli 2.16.52 sends on Debian: envinfo's osVersion already names the system.
    envinfo = {"nodeVersion": "v20.20.2", "os": "Linux", "osVersion": "Linux 6.18 Debian GNU/Linux 12 (bookworm)"}
    debian = capture(RawRequest("POST", "/cli", body=json.dumps(envinfo).encode(), headers=node_fetch))
    assert debian.summary().os == "Linux 6.18 Debian GNU/Linux 12 (bookworm)"
    # A beacon's columns come from its User-Agent only, whatever its payload says.
    beacon = capture(beacon_request(payload={**REFINE_4_PAYLOAD, "nodeVersion": "v1", "os": "X"}))
    assert (beacon.summary().browser, beacon.summary().os) == ("Chrome 156.0.0", "Linux")


def test_composed_requests_say_they_come_from_the_composer():
    composed = compose_beacon(version="4.58.0", referer="http://localhost:5173/")
    record = capture(RawRequest(composed.method, composed.path, composed.query, dict(composed.headers)))
    assert (record.summary().browser, record.summary().os) == ("telemetry-inspector composer", None)


def test_project_body_gives_contact_email():
    body = {"email": "dev@example.com", "answers": {"ui": "antd"}, "source": "CREATE_REFINE_APP"}
    record = capture(RawRequest("POST", "/projects", body=json.dumps(body).encode()))
    assert (record.kind, record.status) == ("project", "ok")
    assert record.contact == {"email": "dev@example.com"}
    assert record.notes == ["email: the developer's email address is sent and linked to the new project"]


def test_encrypted_send_is_labelled_not_decoded():
    jwe = "eyJhbGciOiJSU0EtT0FFUC0yNTYiLCJlbmMiOiJBMjU2R0NNIn0.a2V5.aXY.Y2lwaGVy.dGFn"
    record = capture(RawRequest("POST", "/send", body=jwe.encode(), headers={"Content-Type": "application/text"}))
    assert (record.kind, record.status, record.payload) == ("encrypted", "ok", None)
    assert record.raw_payload == jwe
    assert record.notes == ["encrypted (JWE from @pankod/refine-core 3.x): cannot be decoded locally",
                            "JWE header: alg RSA-OAEP-256, enc A256GCM"]
    bad = capture(RawRequest("POST", "/send", body=b"not-a-jwe"))
    assert bad.status == "invalid"
    assert bad.problems == ["send: not a compact JWE (expected 5 dot-separated parts, got 1)"]


def test_unknown_and_wrong_method_are_recorded_as_invalid():
    record = capture(RawRequest("GET", "/favicon.ico"))
    assert (record.kind, record.status) == ("unknown", "invalid")
    assert record.problems == ["unknown endpoint GET /favicon.ico: telemetry.refine.dev serves "
                               "/telemetry, /cli, /projects, /superplate, /send, /location"]
    wrong = capture(RawRequest("GET", "/cli"))
    assert wrong.problems == ["method GET is not accepted by /cli (expects POST)"]


def test_post_telemetry_with_base64_body():
    record = capture(RawRequest("POST", "/telemetry", body=btoa_json(REFINE_4_PAYLOAD).encode()))
    assert (record.kind, record.status, record.payload) == ("beacon", "ok", REFINE_4_PAYLOAD)
    form = capture(RawRequest("POST", "/telemetry", body=f"payload={btoa_json(REFINE_4_PAYLOAD)}".encode()))
    assert form.payload == REFINE_4_PAYLOAD


def test_missing_payload_and_empty_bodies():
    assert capture(RawRequest("GET", "/telemetry", "x=1")).problems == ["query: no 'payload' parameter"]
    assert capture(RawRequest("POST", "/cli")).problems == ["body: empty, expected a JSON object"]
    assert capture(RawRequest("POST", "/projects", body=b"[]")).problems == [
        "body: top-level value is an array, expected an object"]


def test_oversized_query_and_body_are_cut_and_explained():
    record = capture(RawRequest("GET", "/telemetry", "payload=" + "A" * 70_000))
    assert record.status == "invalid"
    assert record.problems == ["query: 70008 bytes, over the 64 KiB cap; kept the first 64 KiB"]
    assert len(record.request.query) == 64 * 1024
    big = capture(RawRequest("POST", "/cli", body=b"{" * 65_537, body_size=1_000_000))
    assert big.problems == ["body: 1000000 bytes, over the 64 KiB cap; kept the first 64 KiB"]
    assert big.request.body_size == 1_000_000
    assert len(big.request.body) == 64 * 1024


def test_duplicate_means_the_same_payload_from_the_same_client_within_the_window(store):
    recorder = Recorder(store, duplicate_window=5.0)
    t0 = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)
    first = recorder.record(beacon_request(), received_at=t0)
    second = recorder.record(beacon_request(), received_at=t0 + timedelta(milliseconds=40))
    later = recorder.record(beacon_request(), received_at=t0 + timedelta(seconds=30))
    # Back-to-back beacons of another version or resource count from the same page are not duplicates
    # (Chromium sends only the origin as Referer, so the page cannot tell them apart).
    other_version = recorder.record(beacon_request(payload={**REFINE_4_PAYLOAD, "version": "4.57.0"}),
                                    received_at=t0 + timedelta(seconds=30, milliseconds=10))
    other_count = recorder.record(beacon_request(payload={**REFINE_4_PAYLOAD, "resourceCount": 3}),
                                  received_at=t0 + timedelta(seconds=30, milliseconds=20))
    other_client = recorder.record(beacon_request(peer="127.0.0.2"),
                                   received_at=t0 + timedelta(seconds=30, milliseconds=30))
    again = recorder.record(beacon_request(headers={**HEADERS, "Referer": "http://localhost:3000/"}),
                            received_at=t0 + timedelta(seconds=30, milliseconds=40))
    assert not any(n.startswith("duplicate") for n in first.notes)
    assert second.notes[-1] == (f"duplicate: the same payload from the same client as #{first.id}, 0.04 s earlier "
                                "(<Refine> mounted again, or refine's fetch fallback, which browsers do not coalesce)")
    for record in (later, other_version, other_count, other_client):
        assert not any(n.startswith("duplicate") for n in record.notes), record.notes
    assert again.notes[-1].startswith(f"duplicate: the same payload from the same client as #{later.id}, 0.04 s")
    assert store.get(second.id).notes == second.notes


def test_request_json_form_carries_every_field():
    from dataclasses import asdict

    request = capture(beacon_request()).request
    assert request.to_dict() == asdict(request)  # a field added later cannot be left out
