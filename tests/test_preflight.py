"""CORS preflights: recorded as kind ``preflight``, linked to the request they announce, not counted as data.

@pankod/refine-core 3.40-3.65 posts its encrypted body to ``/send`` with
``Content-Type: application/text``, so a browser asks first with ``OPTIONS``.
The real run (Chromium, @pankod/refine-core 3.58.1) is in tests/e2e/.
"""

from __future__ import annotations

import ssl

import pytest

from mockserver.formats.har_export import mock_response
from mockserver.records.advice import CORE_3_ENCRYPTED, advice_for
from mockserver.records.verdict import Expectation, FieldCheck, judge
from tests.support.helpers import CHROME_UA, http

JWE = "eyJhbGciOiJSU0EtT0FFUC0yNTYiLCJlbmMiOiJBMjU2R0NNIn0.a2V5.aXY.Y2lwaGVy.dGFn"
ORIGIN = "http://localhost:5173"
BROWSER = {"User-Agent": CHROME_UA, "Origin": ORIGIN}
# What Chromium sends before refine 3.58's POST /send (seen in the e2e run).
PREFLIGHT = {**BROWSER, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type",
             "Sec-Fetch-Mode": "cors"}
SEND = {**BROWSER, "Content-Type": "application/text"}


def preflight_then_send(client, preflight_headers=PREFLIGHT, send_headers=SEND):
    first = client.options("/send", headers=preflight_headers)
    second = client.post("/send", data=JWE, headers=send_headers)
    return first, second


def test_a_preflight_gets_the_answer_it_always_got_and_is_recorded_ok_as_preflight(client, store):
    resp = client.options("/send", headers=PREFLIGHT)
    assert resp.status_code == 204
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    assert resp.headers["Access-Control-Allow-Methods"] == "GET, POST"
    assert resp.headers["Access-Control-Allow-Headers"] == "*"
    [record] = store.query()
    assert (record.kind, record.status, record.problems, record.preflight) == ("preflight", "ok", [], None)
    assert record.notes == ["CORS preflight: the browser asks whether it may send POST /send with the headers "
                            "content-type; answered 204. It carries no data: the request it announces follows, "
                            "linked to it"]
    assert advice_for(record) == [CORE_3_ENCRYPTED]


def test_the_request_that_follows_is_linked_to_its_preflight(client, store):
    first, second = preflight_then_send(client)
    assert (first.status_code, second.status_code) == (204, 200)
    preflight, sent = store.query()
    assert (preflight.kind, sent.kind) == ("preflight", "encrypted")
    assert sent.preflight == preflight.id == 1
    assert sent.notes[-1].startswith("announced by the CORS preflight #1, ")
    assert sent.to_dict()["preflight"] == 1
    assert client.get(f"/__inspector/beacons/{sent.id}").get_json()["preflight"] == 1


def test_a_preflight_announces_one_request_only(client, store):
    preflight_then_send(client)
    client.post("/send", data=JWE, headers=SEND)  # the browser cached the preflight: none this time
    assert [b.preflight for b in store.query()] == [None, 1, None]


@pytest.mark.parametrize("other", [
    {"Origin": "http://localhost:3000"},
    {"User-Agent": CHROME_UA.replace("156", "155")},
])
def test_a_request_from_another_client_is_not_linked(client, store, other):
    preflight_then_send(client, send_headers={**SEND, **other})
    assert [b.preflight for b in store.query()] == [None, None]


def test_a_request_with_another_method_or_path_is_not_linked(client, store):
    client.options("/send", headers=PREFLIGHT)
    client.get("/send", headers=BROWSER)
    client.post("/telemetry", data="payload=e30=", headers=BROWSER)
    assert [(b.kind, b.preflight) for b in store.query()] == [("preflight", None), ("unknown", None),
                                                            ("beacon", None)]


def test_a_preflight_for_a_method_its_endpoint_refuses_is_invalid_and_still_answered(client, store):
    resp = client.options("/send", headers={**PREFLIGHT, "Access-Control-Request-Method": "DELETE"})
    assert resp.status_code == 204
    [record] = store.query()
    assert (record.kind, record.status) == ("preflight", "invalid")
    assert record.problems == ["preflight: announces DELETE, which /send does not accept (expects POST)"]


def test_options_beyond_refine_endpoints_is_no_preflight(client, store):
    client.options("/elsewhere", headers=PREFLIGHT)
    [record] = store.query()
    assert (record.kind, record.status) == ("unknown", "invalid")


def test_preflight_kind_filters_the_journal(client, store):
    preflight_then_send(client)
    assert [b["kind"] for b in client.get("/__inspector/beacons?kind=preflight").get_json()["beacons"]] == \
        ["preflight"]
    assert client.get("/__inspector/count").get_json()["by_kind"] == {"preflight": 1, "encrypted": 1}


def test_the_har_answer_of_a_preflight_is_the_204(client, store):
    preflight_then_send(client)
    answer = mock_response(store.query()[0])
    assert answer.status == 204


def test_over_real_https_the_preflight_links_the_encrypted_post(live_server, store, certificate_dir):
    context = ssl.create_default_context(cafile=str(certificate_dir / "ca.pem"))
    url = f"{live_server.listening.https_url}/send"
    status, _, _ = http("OPTIONS", url, headers=PREFLIGHT, context=context)
    assert status == 204
    status, _, _ = http("POST", url, JWE.encode(), headers=SEND, context=context)
    assert status == 200
    preflight, sent = store.query()
    assert (preflight.kind, preflight.request.scheme, sent.kind, sent.preflight) == \
        ("preflight", "https", "encrypted", preflight.id)


# -- the verdict: a preflight is part of the request it announces -----------------

def test_expect_counts_requests_that_carry_data(client, store):
    preflight_then_send(client)
    verdict = judge(store.query(), Expectation.parse("1"))
    assert (verdict.passed, verdict.count, verdict.preflights) == (True, 1, 1)
    assert verdict.summary() == "PASS: expected exactly 1 request, got 1 (+ 1 CORS preflight)"
    two = judge(store.query(), Expectation.parse("2"))
    assert (two.passed, two.failures) == (False, ["expected exactly 2 requests, got 1 (+ 1 CORS preflight)"])


def test_expect_none_fails_on_a_lone_preflight_and_says_what_arrived(client, store):
    client.options("/send", headers=PREFLIGHT)
    verdict = judge(store.query(), Expectation.parse("none"))
    assert (verdict.passed, verdict.count, verdict.preflights, verdict.exit_code) == (False, 0, 1, 1)
    assert verdict.summary() == "FAIL: expected no request, got 0 (+ 1 CORS preflight)"
    assert verdict.failures == [
        "expected no request, got 0 (+ 1 CORS preflight)",
        "a CORS preflight reached telemetry.refine.dev: the app tried to send, and only the preflight got "
        "through before the request it announces",
    ]
    assert [b.kind for b in verdict.offending] == ["preflight"]
    assert verdict.advice == [CORE_3_ENCRYPTED]
    assert verdict.to_dict()["preflights"] == 1


def test_field_checks_skip_preflights(client, store):
    client.options("/telemetry", headers={**PREFLIGHT, "Access-Control-Request-Method": "POST"})
    client.post("/telemetry", data="payload=eyJ2ZXJzaW9uIjoiMy45MC4wIn0=", headers=BROWSER)
    verdict = judge(store.query(), Expectation.parse("1"), [FieldCheck.parse("version=3.90.0")])
    assert (verdict.passed, verdict.failures) == (True, [])


def test_what_was_collected_names_the_link_both_ways(client, store):
    from mockserver.records.collected import CORS, collected_fields

    preflight_then_send(client)
    preflight, sent = store.query()
    [announces] = [f for f in collected_fields(preflight) if f.section == CORS]
    [link] = [f for f in collected_fields(sent) if f.section == CORS]
    assert (announces.name, announces.value) == ("announces", "POST /send")
    assert (link.name, link.value, link.source) == ("preflight", "#1", "OPTIONS just before it")


def test_a_submitted_preflight_is_answered_even_when_remembering_it_fails(monkeypatch):
    import threading

    from mockserver.core.capture import RawRequest
    from mockserver.storage.recorder import Recorder
    from mockserver.storage.store import BeaconStore

    store = BeaconStore(":memory:")
    recorder = Recorder(store)

    def broken(beacon, at):
        raise RuntimeError("linker bug")

    monkeypatch.setattr(recorder.preflights, "remember", broken)
    answered: list = []
    done = threading.Event()
    preflight = RawRequest("OPTIONS", "/send", headers={"Origin": "http://localhost:5173",
                                                        "Access-Control-Request-Method": "POST"}, peer="127.0.0.1")
    recorder.submit(preflight, lambda beacon, error: (answered.append((beacon.id, beacon.kind, error)), done.set()))
    assert done.wait(10)
    assert answered == [(1, "preflight", None)]
    store.close()
