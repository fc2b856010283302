"""The beacon fast path answers and records exactly what the Flask views do.

``create_app`` puts :class:`~mockserver.serving.endpoints.BeaconFastPath` in front of Flask
for refine's endpoints (it saves Flask's per-request work under load). Here
every request is sent twice: through the app as served (fast path) and
through the Flask app behind it (``app.wsgi_app.inner``), each over its own
store, and the status, headers, body and stored record must be the same.
"""

from __future__ import annotations

import json
import re
import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.test import Client, EnvironBuilder
from werkzeug.wrappers import Response as WResponse

from bench.mix import build_mix
from mockserver.core.capture import ENDPOINTS
from mockserver.core.payloads import btoa_json
from mockserver.serving.app import create_app
from mockserver.serving.endpoints import BeaconFastPath
from mockserver.storage.store import BeaconStore
from tests.support.helpers import CHROME_UA, REFINE_4_PAYLOAD

EARLIER = re.compile(r"[0-9.]+ s earlier")
UUID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class Twin:
    """The same app three times: served as create_app returns it (its WSGI fast path), Flask only, and
    through the fast path's ``submit`` (what the server's event loop calls: no thread waits)."""

    def __init__(self) -> None:
        self.fast_store, self.flask_store = BeaconStore(":memory:"), BeaconStore(":memory:")
        self.submitted_store = BeaconStore(":memory:")
        fast_app, flask_app = create_app(self.fast_store), create_app(self.flask_store)
        submitted_app = create_app(self.submitted_store)
        assert isinstance(fast_app.wsgi_app, BeaconFastPath) and isinstance(flask_app.wsgi_app, BeaconFastPath)
        # No cookie jar: the third way (EnvironBuilder) has none, and a jar replaces a sent Cookie header.
        self.fast = Client(fast_app, WResponse, use_cookies=False)
        self.flask = Client(flask_app.wsgi_app.inner, WResponse, use_cookies=False)
        self.submitted_app = submitted_app
        self.submitted_routes = 0  # how many requests submit() took

    def close(self) -> None:
        for store in (self.fast_store, self.flask_store, self.submitted_store):
            store.close()

    def submitted(self, method: str, url: str, **kwargs) -> WResponse:
        """The answer through ``submit`` (or, when it does not take the request, the app as WSGI)."""
        environ = EnvironBuilder(path=url, method=method, **kwargs).get_environ()
        answers: list = []
        answered = threading.Event()

        def then(answer) -> None:
            answers.append(answer)
            answered.set()

        taken = self.submitted_app.extensions["submit_beacon"](environ, then)
        if not taken:
            return WResponse.from_app(self.submitted_app, environ)
        self.submitted_routes += 1
        assert answered.wait(10)
        return WResponse.from_app(answers[0], environ)

    def same(self, method: str, url: str, **kwargs) -> WResponse:
        a = self.fast.open(url, method=method, **kwargs)
        b = self.flask.open(url, method=method, **kwargs)
        c = self.submitted(method, url, **kwargs)
        for other in (b, c):
            assert (a.status, a.headers.to_wsgi_list()) == (other.status, other.headers.to_wsgi_list())
            assert UUID.sub(b"<uuid>", a.get_data()) == UUID.sub(b"<uuid>", other.get_data())
        fast, flask, submitted = self.fast_store.query(), self.flask_store.query(), self.submitted_store.query()
        assert len(fast) == len(flask) == len(submitted)
        if fast:
            x, y, z = fast[-1].to_dict(), flask[-1].to_dict(), submitted[-1].to_dict()
            for record in (x, y, z):  # when it arrived, and how long after an earlier duplicate
                record.pop("received_at")
                record["notes"] = [EARLIER.sub("? s earlier", n) for n in record["notes"]]
            assert x == y == z
        return a


@pytest.fixture
def twin():
    t = Twin()
    yield t
    t.close()


def test_the_benchmark_mix_is_answered_and_recorded_identically(twin):
    mix = build_mix(120)
    for r in mix:
        twin.same(r.method, r.path, headers=r.headers, data=r.body or None)
    assert twin.submitted_routes == len(mix)  # every one of refine's endpoints, none through Flask


@pytest.mark.parametrize(("method", "url", "kwargs"), [
    ("GET", f"/telemetry?payload={btoa_json(REFINE_4_PAYLOAD)}",
     {"headers": {"User-Agent": CHROME_UA, "Referer": "http://localhost:5173/", "Sec-CH-UA-Platform": '"Linux"'}}),
    ("GET", "/telemetry?payload=eyJh bGc", {}),
    ("GET", "/telemetry", {}),
    ("POST", "/telemetry", {"data": btoa_json(REFINE_4_PAYLOAD), "content_type": "text/plain"}),
    ("POST", "/telemetry", {"data": b"x" * (70 * 1024)}),
    ("GET", "/telemetry?payload=" + "A" * (70 * 1024), {}),
    ("POST", "/cli", {"json": {"command": "dev", "nodeEnv": "development"}}),
    ("POST", "/cli", {"data": b"not json"}),
    ("POST", "/cli", {"data": b'{"command": "\\ud800"}'}),  # a lone surrogate escape: storable
    ("POST", "/projects", {"json": {"email": "dev@example.com", "answers": {}, "source": "REFINE_NEW"}}),
    ("POST", "/superplate", {"json": {"event": "generate"}}),
    ("POST", "/send", {"data": "eyJhbGciOiJSU0EtT0FFUCJ9.a.b.c.d"}),
    ("POST", "/send", {"data": ""}),
    ("GET", "/location", {}),
    ("HEAD", "/telemetry", {}),
    ("OPTIONS", "/telemetry", {}),
    ("PUT", "/cli", {"data": "{}"}),
    ("GET", "/telemetry/", {}),
    ("POST", "/cli", {"data": b"{}", "headers": {"Transfer-Encoding": "chunked"}}),
    ("POST", "/cli", {"data": b'{"a": 1}', "headers": {"Content-Length": "3"}}),
    ("POST", "/cli", {"data": b'{"a": 1}', "headers": {"Content-Length": "nope"}}),
])
def test_edge_requests_are_answered_and_recorded_identically(twin, method, url, kwargs):
    twin.same(method, url, **kwargs)


def test_a_surrogate_payload_is_recorded_and_reads_back_exactly(twin):
    resp = twin.same("POST", "/cli", data=b'{"command": "\\udfff", "os": "caf\\u00e9"}')
    assert resp.status_code == 200
    [record] = twin.fast_store.query()
    assert record.payload == {"command": "\udfff", "os": "café"}


def test_request_hooks_send_every_request_through_flask():
    store = BeaconStore(":memory:")
    app = create_app(store)
    seen = []
    app.after_request(lambda r: seen.append(r.status_code) or r)
    app.test_client().get(f"/telemetry?payload={btoa_json(REFINE_4_PAYLOAD)}")
    assert seen == [200]
    environ = EnvironBuilder(path="/telemetry", query_string=f"payload={btoa_json(REFINE_4_PAYLOAD)}").get_environ()
    assert app.extensions["submit_beacon"](environ, seen.append) is False  # not taken: Flask runs the hooks
    assert seen == [200] and store.count() == 1
    store.close()


_header_name = st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"),
                       min_size=1, max_size=20)
_header_value = st.text(st.characters(min_codepoint=32, max_codepoint=255, exclude_characters="\x7f"), max_size=60)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    route=st.sampled_from([(path, method) for path, methods in ENDPOINTS.items() for method in methods]),
    query=st.text(st.characters(min_codepoint=33, max_codepoint=126, exclude_characters="#"), max_size=200),
    headers=st.dictionaries(_header_name, _header_value, max_size=6),
    body=st.binary(max_size=300),
)
def test_random_requests_are_answered_and_recorded_identically(twin, route, query, headers, body):
    path, method = route
    headers = {k: v for k, v in headers.items() if k.lower() not in ("content-length", "transfer-encoding", "host")}
    twin.same(method, f"{path}?{query}" if query else path, headers=headers, data=body or None)
    json.dumps(twin.fast_store.query()[-1].to_dict())  # the record is plain JSON data
