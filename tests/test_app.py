"""The refine endpoints and the journal API, through Flask's test client."""

from __future__ import annotations

import json
import threading
import uuid

import pytest

from mockserver.core.payloads import btoa_json
from mockserver.core.wire import GIF
from tests.support.helpers import CHROME_UA, REFINE_4_PAYLOAD

BEACON_URL = f"/telemetry?payload={btoa_json(REFINE_4_PAYLOAD)}"


def test_beacon_answers_a_gif_and_is_recorded(client, store):
    resp = client.get(BEACON_URL, headers={"User-Agent": CHROME_UA, "Referer": "http://localhost:5173/"})
    assert resp.status_code == 200
    assert resp.data == GIF
    assert resp.headers["Content-Type"] == "image/gif"
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    assert resp.headers["Cache-Control"] == "no-store"
    [record] = store.query()
    assert record.payload == REFINE_4_PAYLOAD
    assert record.client["hostname"] == "localhost"
    assert record.client["browser"] == {"family": "Chrome", "version": "156.0.0"}


def test_raw_plus_in_the_query_is_not_a_space(client, store):
    payload = {**REFINE_4_PAYLOAD, "projectId": ">>>>?"}
    raw = btoa_json(payload)
    assert "+" in raw
    client.get("/telemetry", query_string=f"payload={raw}")
    assert store.query()[0].payload == payload
    assert store.query()[0].raw_payload == raw


def test_invalid_beacon_is_recorded_and_answered_400(client, store):
    resp = client.get("/telemetry", query_string="payload=eyJh bGc")
    assert resp.status_code == 400
    assert resp.data.decode() == ("base64: illegal character ' ' at offset 4"
                                  " (a '+' turned into a space by form decoding?)\n")
    [record] = store.query()
    assert (record.status, record.raw_payload) == ("invalid", "eyJh bGc")


def test_post_telemetry_body(client, store):
    resp = client.post("/telemetry", data=btoa_json(REFINE_4_PAYLOAD))
    assert resp.status_code == 200
    assert store.query()[0].payload == REFINE_4_PAYLOAD


def test_projects_answers_a_new_project_id_and_keeps_the_email(client, store):
    body = {"email": "dev@example.com", "answers": {"ui": "mui"}, "source": "REFINE_NEW"}
    resp = client.post("/projects", json=body)
    assert resp.status_code == 200
    project_id = resp.get_json()["projectId"]
    assert str(uuid.UUID(project_id)) == project_id
    [record] = store.query()
    assert (record.kind, record.contact) == ("project", {"email": "dev@example.com"})


@pytest.mark.parametrize(("path", "kind", "body"), [
    ("/cli", "cli", json.dumps({"command": "dev", "nodeEnv": "development"})),
    ("/superplate", "superplate", json.dumps({"event": "generate", "properties": {}, "anonymousId": "a",
                                              "originalTimestamp": "2026-11-26T00:00:00Z"})),
    ("/send", "encrypted", "eyJhbGciOiJSU0EtT0FFUCJ9.a.b.c.d"),
])
def test_other_endpoints(client, store, path, kind, body):
    resp = client.post(path, data=body)
    assert resp.status_code == 200
    assert resp.get_json() == {"ok": True}
    [record] = store.query()
    assert (record.kind, record.status) == (kind, "ok")


def test_location(client, store):
    resp = client.get("/location")
    assert resp.get_json() == {"country": "XX"}
    assert store.query()[0].kind == "location"


def test_unknown_paths_are_recorded_and_404(client, store):
    resp = client.put("/telemetry/extra", data=b"x")
    assert resp.status_code == 404
    [record] = store.query()
    assert (record.kind, record.status, record.request.method) == ("unknown", "invalid", "PUT")


def test_options_without_a_requested_method_is_no_preflight_but_is_allowed_and_recorded(client, store):
    resp = client.options("/telemetry")
    assert resp.status_code == 204
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    assert (store.query()[0].kind, store.query()[0].status) == ("unknown", "invalid")


def test_oversized_requests_get_413_and_414_and_are_recorded(client, store):
    resp = client.get("/telemetry", query_string="payload=" + "A" * 70_000)
    assert resp.status_code == 414
    resp = client.post("/cli", data=b"x" * 70_000)
    assert resp.status_code == 413
    first, second = store.query()
    assert first.problems == ["query: 70008 bytes, over the 64 KiB cap; kept the first 64 KiB"]
    assert second.problems == ["body: 70000 bytes, over the 64 KiB cap; kept the first 64 KiB"]
    assert second.request.body_size == 70_000


def test_never_500_on_binary_garbage(client, store):
    resp = client.post("/projects", data=bytes(range(256)) * 10, headers={"Content-Type": "application/json"})
    assert resp.status_code == 400
    [record] = store.query()
    assert record.status == "invalid"
    assert record.problems[0].startswith("body: Expecting value at line 1 column 1")


# -- journal API ---------------------------------------------------------

def _fill(client):
    client.get(BEACON_URL)
    client.get("/telemetry?payload=%%%")
    client.post("/cli", json={"command": "build"})


def test_journal_list_filters_and_paging(client):
    _fill(client)
    everything = client.get("/__inspector/beacons").get_json()["beacons"]
    assert [b["kind"] for b in everything] == ["beacon", "beacon", "cli"]
    assert [b["id"] for b in everything] == [1, 2, 3]
    invalid = client.get("/__inspector/beacons?status=invalid").get_json()["beacons"]
    assert [b["id"] for b in invalid] == [2]
    assert [b["id"] for b in client.get("/__inspector/beacons?since=1&limit=1").get_json()["beacons"]] == [2]
    assert [b["id"] for b in client.get("/__inspector/beacons?kind=cli").get_json()["beacons"]] == [3]


def test_journal_record_form_is_complete(client):
    client.get(BEACON_URL, headers={"User-Agent": CHROME_UA})
    record = client.get("/__inspector/beacons/1").get_json()
    assert list(record) == ["id", "session", "received_at", "kind", "status", "problems", "notes", "request",
                            "raw_payload", "encoding", "base64_variant", "payload", "client", "contact", "preflight"]
    assert list(record["request"]) == ["method", "scheme", "path", "query", "headers", "body", "body_size"]
    assert record["received_at"].endswith("Z")
    assert record["payload"] == REFINE_4_PAYLOAD


def test_journal_count_and_reset(client):
    _fill(client)
    assert client.get("/__inspector/count").get_json() == {
        "total": 3, "ok": 2, "invalid": 1, "by_kind": {"beacon": 2, "cli": 1}}
    assert client.delete("/__inspector/beacons").get_json() == {"deleted": 3}
    assert client.get("/__inspector/count").get_json()["total"] == 0


@pytest.mark.parametrize(("url", "message"), [
    ("/__inspector/beacons?kind=nope",
     "kind must be one of beacon, cli, project, superplate, encrypted, location, preflight, unknown; got 'nope'"),
    ("/__inspector/beacons?limit=0", "limit must be between 1 and 10000"),
    ("/__inspector/beacons?since=x", "since must be a whole number, got 'x'"),
    ("/__inspector/beacons/abc", "record id must be a whole number, got 'abc'"),
    ("/__inspector/wait?timeout=soon", "timeout must be a number of seconds, got 'soon'"),
])
def test_journal_bad_arguments_are_one_line_400s(client, url, message):
    resp = client.get(url)
    assert resp.status_code == 400
    assert resp.get_json() == {"error": message}


def test_journal_missing_record_and_endpoint(client):
    assert client.get("/__inspector/beacons/99").status_code == 404
    assert client.get("/__inspector/nope").get_json() == {"error": "no journal endpoint GET /__inspector/nope"}
    assert client.get("/__inspector/count").get_json()["total"] == 0  # journal calls are not recorded


def test_wait_returns_408_then_200(client):
    resp = client.get("/__inspector/wait?count=1&timeout=0.2")
    assert resp.status_code == 408
    assert resp.get_json() == {"reached": False, "count": 0, "wanted": 1}
    threading.Timer(0.2, lambda: client.application.test_client().get(BEACON_URL)).start()
    resp = client.get("/__inspector/wait?count=1&timeout=10")
    assert resp.status_code == 200
    assert resp.get_json() == {"reached": True, "count": 1, "wanted": 1}


def test_health(client, store):
    health = client.get("/__inspector/health").get_json()
    assert (health["status"], health["session"], health["database"]) == ("ok", store.session, ":memory:")
