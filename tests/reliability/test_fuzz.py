"""Property-based fuzzing (hypothesis) of every endpoint and of ``capture()``.

* Any request to a refine endpoint or any other recorded path: never a 500,
  never an exception; exactly one new record; an answer >= 400 means the record
  is ``invalid`` with at least one problem, and an ``ok`` record was answered 200.
* The journal API with random arguments: never a 500, a one-line JSON error for
  a bad argument, and nothing recorded.
* ``capture()`` on arbitrary raw requests: never raises; the record round-trips
  through its JSON form and through the store unchanged.
* Beacons built from random JSON, encoded the ways senders do (and then
  damaged): decoded exactly when intact, recorded with a problem when not.

Requests go through ``create_app(store).test_client()``, i.e. through the same
WSGI app ``serve`` runs (the beacon fast path in front of Flask).
"""

from __future__ import annotations

import base64
import json
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from mockserver.core.beacon import Beacon
from mockserver.core.capture import ENDPOINTS, RawRequest, capture
from mockserver.serving.app import create_app
from mockserver.storage.store import BeaconStore

FUZZ = settings(max_examples=int(__import__("os").environ.get("FUZZ_EXAMPLES", 250)), deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])

METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]
PATHS = [*ENDPOINTS, "/", "/telemetry/", "/TELEMETRY", "/cli/x", "/favicon.ico", "/a/b/c", "/%7e", "/telemetry%00",
         "/__inspectorx"]  # only the prefix's look-alike: every /__inspector path is the journal's
B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-_"

query_text = st.text(st.sampled_from(B64 + "%&;?# .,:@!$'()*~é\x00\x7f"), max_size=300)
header_name = st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-"),
                      min_size=1, max_size=24).filter(lambda n: n.lower() not in ("content-length", "transfer-encoding",
                                                                                   "host", "content-type"))
header_value = st.text(st.characters(min_codepoint=32, max_codepoint=255, exclude_characters="\x7f"), max_size=120)
headers = st.dictionaries(header_name, header_value, max_size=8)
bodies = st.one_of(st.binary(max_size=2000), st.text(max_size=500).map(lambda t: t.encode("utf-8", "surrogatepass")),
                   st.just(b"x" * (64 * 1024 + 1)))


@pytest.fixture
def app_and_store():
    store = BeaconStore(":memory:")
    yield create_app(store).test_client(), store
    store.close()


def _check_recorded(store: BeaconStore, before: int, status: int) -> Beacon:
    assert status < 500
    assert store.count() == before + 1, "a recorded endpoint must keep exactly one record per request"
    [record] = store.query(since=store.last_id() - 1)
    if status >= 400:
        assert record.status == "invalid" and record.problems, (status, record.to_dict())
    if record.status == "ok":
        assert status == 200
    json.dumps(record.to_dict())  # plain JSON data
    return record


@FUZZ
@given(method=st.sampled_from(METHODS), path=st.sampled_from(PATHS), query=query_text, hdrs=headers, body=bodies,
       content_type=st.sampled_from([None, "application/json", "text/plain", "application/text",
                                     "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"]))
def test_any_request_to_a_recorded_path(app_and_store, method, path, query, hdrs, body, content_type):
    client, store = app_and_store
    before = store.count()
    kwargs = {"headers": hdrs, "query_string": query}
    if method not in ("GET", "HEAD", "OPTIONS") or body:
        kwargs["data"] = body
        if content_type:
            kwargs["content_type"] = content_type
    resp = client.open(path, method=method, **kwargs)
    _check_recorded(store, before, resp.status_code)


JOURNAL = ["/__inspector/health", "/__inspector/beacons", "/__inspector/count", "/__inspector/beacons/1",
           "/__inspector/beacons/x", "/__inspector/beacons/99999999999999999999", "/__inspector/beacons/²",
           "/__inspector/nope", "/__inspector", "/__inspector/"]
ARGS = st.dictionaries(st.sampled_from(["kind", "status", "since", "limit", "count", "timeout", "x"]),
                       st.one_of(st.sampled_from(["", "0", "1", "-1", "10000", "10001", "beacon", "ok", "invalid",
                                                  "1e9", "nan", "9" * 30, "é", "%00"]),
                                 st.text(max_size=10)), max_size=4)


@FUZZ
@given(path=st.sampled_from(JOURNAL), method=st.sampled_from(["GET", "POST", "DELETE", "HEAD", "PUT", "OPTIONS"]),
       args=ARGS)
def test_journal_api_with_random_arguments(app_and_store, path, method, args):
    client, store = app_and_store
    client.get("/telemetry?payload=eyJ2ZXJzaW9uIjoiNC41OC4wIn0=")
    before = store.count()
    resp = client.open(path, method=method, query_string="&".join(f"{k}={quote(v)}" for k, v in args.items()))
    assert resp.status_code < 500
    if resp.status_code >= 400 and method != "HEAD" and resp.mimetype == "application/json":
        body = resp.get_json()
        assert set(body) == {"error"} and "\n" not in body["error"]
        assert "inspector error" not in body["error"], "an argument reached an unexpected exception"
    if not (method == "DELETE" and path == "/__inspector/beacons"):
        assert store.count() == before, "the journal API must not record its own calls"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(args=ARGS)
def test_journal_wait_with_random_arguments_never_fails(app_and_store, args):
    client, store = app_and_store
    query = "timeout=0&" + "&".join(f"{k}={quote(v)}" for k, v in args.items() if k != "timeout")
    resp = client.get("/__inspector/wait", query_string=query)
    assert resp.status_code in (200, 400, 408)


raw_requests = st.builds(
    RawRequest,
    method=st.one_of(st.sampled_from(METHODS), st.text(max_size=10)),
    path=st.one_of(st.sampled_from(PATHS), st.text(max_size=50).map(lambda t: "/" + t)),
    query=st.text(max_size=300),
    headers=st.dictionaries(st.text(max_size=30), st.text(max_size=200), max_size=10),
    body=st.binary(max_size=3000),
    body_size=st.one_of(st.none(), st.integers(min_value=0, max_value=10**9)),
    scheme=st.sampled_from(["http", "https"]),
    peer=st.one_of(st.none(), st.sampled_from(["127.0.0.1", "::1"]), st.text(max_size=20)),
)


@FUZZ
@given(raw=raw_requests, trust_proxy=st.booleans())
def test_capture_never_raises_and_the_record_is_storable(raw, trust_proxy):
    assume(raw.body_size is None or raw.body_size >= len(raw.body))
    beacon = capture(raw, trust_proxy=trust_proxy)
    assert (beacon.status == "invalid") == bool(beacon.problems)
    assert Beacon.from_json(beacon.to_json()).to_dict() == beacon.to_dict()
    store = BeaconStore(":memory:")
    try:
        stored = store.append(beacon)
        assert store.get(stored.id).to_dict() == beacon.to_dict()
        assert store.summaries()[-1].id == stored.id
    finally:
        store.close()


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
              st.text(max_size=20)),
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(st.text(max_size=10), children,
                                                                                max_size=4)),
    max_leaves=15,
)
payloads = st.dictionaries(st.sampled_from(["providers", "version", "resourceCount", "projectId", "extra", "é"]),
                           json_values, max_size=5)


def _encode(payload: dict, text_encoding: str, variant: str) -> str | None:
    text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    try:
        data = text.encode(text_encoding)
    except UnicodeEncodeError:  # btoa throws above U+00FF: nothing would be sent
        return None
    raw = base64.b64encode(data).decode()
    if "url-safe" in variant:
        raw = raw.replace("+", "-").replace("/", "_")
    if "unpadded" in variant:
        raw = raw.rstrip("=")
    if "percent" in variant:
        raw = quote(raw, safe="")
    return raw


@FUZZ
@given(payload=payloads, text_encoding=st.sampled_from(["latin-1", "utf-8"]),
       variant=st.sampled_from(["standard", "standard unpadded", "url-safe", "url-safe unpadded",
                                "percent standard"]),
       damage=st.one_of(st.none(), st.tuples(st.integers(min_value=0, max_value=400),
                                             st.sampled_from(["", " ", "%", "*", "==", "é", "A"]))))
def test_beacons_from_random_json(app_and_store, payload, text_encoding, variant, damage):
    client, store = app_and_store
    raw = _encode(payload, text_encoding, variant)
    assume(raw is not None)
    if damage is not None:
        at, text = damage
        at %= len(raw) + 1
        raw = raw[:at] + text + raw[at + 1:]
    before = store.count()
    resp = client.get("/telemetry", query_string=f"payload={raw}")
    record = _check_recorded(store, before, resp.status_code)
    if damage is None:
        assert resp.status_code == 200 and record.raw_payload == raw
        text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode(text_encoding)
        try:  # Latin-1 bytes that are also valid UTF-8 are read as UTF-8, with a note (README)
            expected = json.loads(text.decode("utf-8"))
        except UnicodeDecodeError:
            expected = payload
        assert record.payload == expected
