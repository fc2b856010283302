"""Redaction: stable pseudonyms, everywhere a value appears, wire forms re-encoded, store untouched."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mockserver.core.capture import RawRequest, capture
from mockserver.core.payloads import btoa_json, buffer_json
from mockserver.records.redact import WITHHELD, Redactor, redact_record, redact_records
from mockserver.storage.recorder import Recorder
from tests.support.helpers import CHROME_UA, REFINE_4_PAYLOAD

DATA = Path(__file__).parent / "data"
CAPTURES = json.loads((DATA / "real_beacons.json").read_text())
REAL = [pytest.param(e, r, id=f"{e['refine_version']}-{e['scenario']}")
        for e in CAPTURES for r in e["requests"]]


def _text(beacon) -> str:
    return json.dumps(beacon.to_dict(), ensure_ascii=False)


def _beacon(payload: dict, *, peer: str = "203.0.113.9", referer: str = "http://my-laptop.corp.example:5173/",
            encode=btoa_json, extra: dict | None = None, query_suffix: str = ""):
    headers = {"Host": "telemetry.refine.dev", "User-Agent": CHROME_UA, "Referer": referer, **(extra or {})}
    return capture(RawRequest("GET", "/telemetry", f"payload={encode(payload)}{query_suffix}", headers,
                              scheme="https", peer=peer))


@pytest.mark.parametrize(("entry", "request_"), REAL)
def test_real_beacons_leak_nothing_and_still_decode(entry, request_):
    original = capture(RawRequest(request_["method"], request_["path"], request_["raw_query"], request_["headers"],
                                  scheme="https", peer="198.51.100.23"))
    redacted = redact_record(original)
    text = _text(redacted)
    for secret in ("198.51.100.23", "127.0.0.1"):
        assert secret not in text
    if entry["project_id"]:
        assert entry["project_id"] not in text
        assert redacted.payload["projectId"] == "project-1"
    assert redacted.client["ip"] == "ip-1"
    assert redacted.client["hostname"] == "ip-2"  # the page was served from 127.0.0.1: an IP, so an ip token
    assert redacted.request.headers["Host"] == "telemetry.refine.dev"  # refine's own host is not identifying
    assert redacted.request.headers["Referer"].startswith("http://ip-2:")
    # The wire forms say what the redacted payload says, in the same text encoding and base64 variant.
    again = capture(RawRequest("GET", "/telemetry", redacted.request.query))
    assert again.problems == []
    assert again.payload == redacted.payload
    assert list(again.payload) == list(original.payload)
    assert redacted.raw_payload == redacted.request.query.removeprefix("payload=")
    assert redacted.encoding == original.encoding and redacted.base64_variant == original.base64_variant
    # Everything that is not identifying is kept.
    assert redacted.client["browser"] == original.client["browser"]
    assert redacted.payload["providers"] == original.payload["providers"]


def test_same_value_same_token_and_formats():
    redactor = Redactor()
    a = redactor.redact(_beacon({**REFINE_4_PAYLOAD, "projectId": "acme-1"}))
    b = redactor.redact(_beacon({**REFINE_4_PAYLOAD, "projectId": "acme-2"}, peer="203.0.113.10"))
    c = redactor.redact(_beacon({**REFINE_4_PAYLOAD, "projectId": "acme-1"}, referer="http://other.example/"))
    assert [x.payload["projectId"] for x in (a, b, c)] == ["project-1", "project-2", "project-1"]
    assert [x.client["ip"] for x in (a, b, c)] == ["ip-1", "ip-2", "ip-1"]
    assert [x.client["hostname"] for x in (a, b, c)] == ["host-1", "host-1", "host-2"]
    assert redactor.token("Dev@Example.COM", "email") == "user-1@example.invalid"
    assert redactor.token("dev@example.com", "email") == "user-1@example.invalid"
    assert redactor.token("::ffff:203.0.113.9", "ip") != "ip-1"  # a different literal, a different token
    assert redactor.token("203.0.113.9", "host") == "ip-1"  # an IP is an IP wherever it is found
    # A new run starts counting again.
    assert redact_records([_beacon(REFINE_4_PAYLOAD, peer="192.0.2.1")])[0].client["ip"] == "ip-1"


def test_the_original_record_and_store_are_not_touched(store):
    query = f"payload={btoa_json({**REFINE_4_PAYLOAD, 'projectId': 'secret-project'})}"
    stored = Recorder(store).record(RawRequest("GET", "/telemetry", query,
                                               {"Host": "telemetry.refine.dev", "Referer": "http://app.internal/"},
                                               peer="10.1.2.3"))
    before = _text(stored)
    redacted = redact_record(stored)
    assert _text(stored) == before
    assert "secret-project" in _text(store.get(stored.id))
    assert "secret-project" not in _text(redacted) and "10.1.2.3" not in _text(redacted)


def test_forwarding_headers_cookies_and_a_foreign_host_are_masked():
    original = _beacon(REFINE_4_PAYLOAD, extra={
        "X-Forwarded-For": "198.51.100.7, 10.0.0.2", "Forwarded": 'for="[2001:db8::1]:4711";proto=https',
        "Cookie": "session=abc", "Origin": "http://my-laptop.corp.example:5173", "Host": "192.168.1.5:8787",
        "X-Note": "built on my-laptop.corp.example by dev@corp.example"})
    redacted = redact_record(original)
    headers = redacted.request.headers
    text = _text(redacted)
    for secret in ("198.51.100.7", "10.0.0.2", "2001:db8::1", "abc", "my-laptop", "corp.example", "192.168.1.5",
                   "203.0.113.9"):
        assert secret not in text, secret
    assert headers["Cookie"] == WITHHELD
    assert headers["Host"].endswith(":8787") and headers["Host"].startswith("ip-")
    assert headers["Origin"] == "http://host-1:5173"
    assert headers["X-Note"] == "built on host-1 by user-1@example.invalid"
    assert redacted.client["host"] == headers["Host"]


def test_project_creation_email_everywhere():
    body = json.dumps({"email": "Jane.Doe@corp.example", "answers": {"ui": "antd", "contact": "jane.doe@corp.example"},
                       "source": "CREATE_REFINE_APP"}, separators=(",", ":")).encode()
    headers = {"Host": "telemetry.refine.dev", "Content-Type": "application/json", "Content-Length": str(len(body))}
    original = capture(RawRequest("POST", "/projects", "", headers, body, peer="192.0.2.44"))
    assert original.contact == {"email": "Jane.Doe@corp.example"}
    redacted = redact_record(original)
    assert "corp.example" not in _text(redacted).lower()
    assert redacted.contact == {"email": "user-1@example.invalid"}
    assert redacted.payload == {"email": "user-1@example.invalid",
                                "answers": {"ui": "antd", "contact": "user-1@example.invalid"},
                                "source": "CREATE_REFINE_APP"}
    assert json.loads(redacted.request.body) == redacted.payload == json.loads(redacted.raw_payload)
    assert redacted.request.body_size == len(redacted.request.body.encode())
    assert redacted.request.headers["Content-Length"] == str(redacted.request.body_size)


def test_cli_project_id_and_superplate_anonymous_id():
    cli_body = json.dumps({"nodeEnv": "development", "command": "dev", "projectId": "7c1e-secret"}).encode()
    sp_body = json.dumps({"event": "generate", "properties": {}, "anonymousId": "anon-xyz-123"}).encode()
    redactor = Redactor()
    cli_record = redactor.redact(capture(RawRequest("POST", "/cli", "", {}, cli_body)))
    sp_record = redactor.redact(capture(RawRequest("POST", "/superplate", "", {}, sp_body)))
    assert cli_record.payload["projectId"] == "project-1" and "7c1e" not in _text(cli_record)
    assert sp_record.payload["anonymousId"] == "anon-1" and "xyz" not in _text(sp_record)


def test_an_undecodable_payload_is_withheld_not_guessed():
    good = btoa_json({**REFINE_4_PAYLOAD, "projectId": "p+/=?&?>?>"})
    corrupted = good.replace("+", " ")  # what form decoding does
    original = capture(RawRequest("GET", "/telemetry", f"payload={corrupted}&payload={good}", {}))
    assert original.status == "invalid"
    redacted = redact_record(original)
    assert redacted.raw_payload == WITHHELD
    assert redacted.request.query == f"payload={WITHHELD}&payload={WITHHELD}"
    assert redacted.problems == original.problems  # what went wrong stays visible


def test_utf8_text_note_quoting_the_payload_is_rewritten():
    # Node's Buffer writes "café" as C3 A9; the decoder's note quotes the Latin-1 reading ("cafÃ©").
    original = _beacon({**REFINE_4_PAYLOAD, "projectId": "café-co"}, encode=buffer_json)
    assert any("cafÃ©" in n for n in original.notes)
    redacted = redact_record(original)
    assert "caf" not in _text(redacted)
    assert redacted.encoding == "utf-8"


def test_url_safe_unpadded_variant_is_kept():
    raw = btoa_json({**REFINE_4_PAYLOAD, "projectId": "p+/=?&?>?>"}).rstrip("=").replace("+", "-").replace("/", "_")
    original = capture(RawRequest("GET", "/telemetry", f"payload={raw}", {}))
    assert original.base64_variant == "url-safe unpadded"
    redacted = redact_record(original)
    assert redacted.base64_variant == "url-safe unpadded"
    assert not set("+/=") & set(redacted.raw_payload)  # written in that alphabet, without padding
    again = capture(RawRequest("GET", "/telemetry", redacted.request.query))
    assert again.payload == redacted.payload


def test_summaries_get_the_same_tokens_as_records():
    redactor = Redactor()
    original = _beacon({**REFINE_4_PAYLOAD, "projectId": "acme"})
    row = redactor.redact_summary(original.summary())
    record = redactor.redact(original)
    assert (row.ip, row.hostname, row.project_id) == (record.client["ip"], record.client["hostname"],
                                                      record.payload["projectId"])
    assert row == record.summary()._replace(id=row.id, session=row.session)


def test_many_rows_share_masks_and_each_problem_is_scrubbed_with_its_own_values(monkeypatch):
    from mockserver.core.beacon import Summary
    from mockserver.records import redact

    def row(n: int, ip: str, problem: str | None) -> Summary:
        return Summary(n, 1, "2026-11-26T08:00:00Z", "beacon", "invalid" if problem else "ok", "GET", "/telemetry",
                       "shop.example.com", "4.58.0", "3", "data", "Chrome 156", "Linux", ip, None, problem)

    monkeypatch.setattr(redact, "SUMMARY_MASKS_KEPT", 2)  # beyond the memory: masked all the same
    redactor = Redactor()
    rows = [row(1, "10.0.0.1", None), row(2, "10.0.0.2", "from 10.0.0.2 to shop.example.com"),
            row(3, "10.0.0.1", None), row(4, "10.0.0.3", "from 10.0.0.3 to shop.example.com"),
            row(5, "10.0.0.2", "from 10.0.0.2 to shop.example.com")]
    masked = [redactor.redact_summary(r) for r in rows]
    assert [(m.id, m.hostname, m.ip, m.problem) for m in masked] == [
        (1, "host-1", "ip-1", None),
        (2, "host-1", "ip-2", "from ip-2 to host-1"),
        (3, "host-1", "ip-1", None),
        (4, "host-1", "ip-3", "from ip-3 to host-1"),
        (5, "host-1", "ip-2", "from ip-2 to host-1"),
    ]
    assert masked[0].hostname is masked[2].hostname  # remembered, not masked again
    assert len(redactor._summary_masks) == 2
