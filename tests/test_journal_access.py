"""The journal belongs to its user: no web page, rebinding trick or stray request reads, wipes or stalls it.

Everything here goes over real sockets to a running InspectorServer; the browser
tests drive a real headless Chromium through DevTools.
"""

from __future__ import annotations

import http.client as http_client
import json
import os
import stat
import threading
import time
import urllib.request
from http.client import HTTPMessage

import pytest

from mockserver.core.payloads import btoa_json
from mockserver.reach.browser import RoutedBrowser
from mockserver.reach.cdp import DevToolsConnection, page_websocket_url
from mockserver.reach.remote import RemoteError, RemoteHTTPError, RemoteInspector
from mockserver.serving.access import TOKEN_FILE, ensure_token
from mockserver.serving.server import InspectorServer, Listening
from tests.support.helpers import REFINE_4_PAYLOAD, http

CHROMIUM = "/usr/bin/chromium"
QUERY = f"payload={btoa_json(REFINE_4_PAYLOAD)}"


def listening(server: InspectorServer) -> Listening:
    """The started server's addresses."""
    assert server.listening is not None, "the server is not started"
    return server.listening


def raw(server: InspectorServer, method: str, path: str, headers: dict[str, str] | None = None,
            port: int | None = None) -> tuple[int, HTTPMessage, bytes]:
    """One request with exactly these headers (http.client sends Host only if we do not); the answer's
    headers are looked up whatever their case."""
    conn = http_client.HTTPConnection("127.0.0.1", port or listening(server).port, timeout=10)
    try:
        conn.putrequest(method, path, skip_host="Host" in (headers or {}), skip_accept_encoding=True)
        for name, value in (headers or {}).items():
            conn.putheader(name, value)
        conn.endheaders()
        response = conn.getresponse()
        return response.status, response.headers, response.read()
    finally:
        conn.close()


def beacon(server: InspectorServer, **extra: str) -> int:
    status, _, _ = http("GET", f"{listening(server).http_url}/telemetry?{QUERY}", headers=extra)
    return status


# -- DNS rebinding: a foreign Host ---------------------------------------------------------------

@pytest.mark.parametrize("method, path", [("GET", "/__inspector/health"), ("GET", "/__inspector/beacons"),
                                          ("GET", "/__inspector/beacons/1"), ("GET", "/__inspector/count"),
                                          ("DELETE", "/__inspector/beacons"),
                                          ("GET", "/__inspector/wait?count=999999999&timeout=300"),
                                          ("GET", "/__inspector/events")])
def test_a_foreign_host_reads_and_deletes_nothing(live_server, store, method, path):
    assert beacon(live_server) == 200 and beacon(live_server) == 200
    port = live_server.listening.port
    status, headers, body = raw(live_server, method, path, {"Host": f"attacker.test:{port}"})
    assert status == 403
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body) == {"error": "the journal answers only requests for localhost or 127.0.0.1, "
                                         f"not Host: 'attacker.test:{port}'"}
    assert "Access-Control-Allow-Origin" not in headers
    assert [b.id for b in store.query()] == [1, 2]


@pytest.mark.parametrize("host", ["localhost:{port}", "127.0.0.1:{port}", "127.1.2.3", "[::1]:{port}", "LOCALHOST"])
def test_loopback_hosts_read_the_journal(live_server, host):
    status, _, body = raw(live_server, "GET", "/__inspector/count",
                          {"Host": host.format(port=live_server.listening.port)})
    assert (status, json.loads(body)) == (200, {"total": 0, "ok": 0, "invalid": 0, "by_kind": {}})


@pytest.mark.parametrize("host", ["127.0.0.1.attacker.test", "127.attacker.test", "localhost.attacker.test",
                                  "", "a b", "user@127.0.0.1"])
def test_hosts_that_only_look_local_are_refused(live_server, host):
    status, _, body = raw(live_server, "GET", "/__inspector/health", {"Host": host})
    assert status == 403 and json.loads(body)["error"].startswith("the journal answers only requests for localhost")


# -- pages of other sites --------------------------------------------------------------------------

@pytest.mark.parametrize("headers", [
    {"Origin": "http://localhost:3000"}, {"Origin": "null"}, {"Origin": "https://127.0.0.1:{port}"},
    {"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site"},
    {"Origin": "http://127.0.0.1:{port}", "Sec-Fetch-Site": "cross-site"},
])
def test_a_request_marked_cross_site_is_refused(live_server, store, headers):
    assert beacon(live_server) == 200
    port = live_server.listening.port
    sent = {name: value.format(port=port) for name, value in headers.items()}
    for method, path in (("GET", "/__inspector/beacons"), ("DELETE", "/__inspector/beacons")):
        status, answer, body = raw(live_server, method, path, sent)
        assert status == 403 and "Access-Control-Allow-Origin" not in answer
        assert json.loads(body)["error"].startswith("the journal does not answer web pages of other")
    assert store.count() == 1


@pytest.mark.parametrize("headers", [{}, {"Origin": "http://127.0.0.1:{port}"}, {"Sec-Fetch-Site": "same-origin"},
                                     {"Sec-Fetch-Site": "none"}])
def test_this_machines_programs_and_the_own_origin_are_served(live_server, headers):
    sent = {name: value.format(port=live_server.listening.port) for name, value in headers.items()}
    status, answer, body = raw(live_server, "GET", "/__inspector/count", sent)
    assert status == 200 and json.loads(body)["total"] == 0
    assert "Access-Control-Allow-Origin" not in answer


def test_refine_endpoints_stay_open_to_every_origin(live_server, store):
    status, headers, _ = http("GET", f"{live_server.listening.http_url}/telemetry?{QUERY}",
                              headers={"Origin": "http://attacker.test", "Sec-Fetch-Site": "cross-site",
                                       "Host": "attacker.test"})
    assert (status, headers["Access-Control-Allow-Origin"]) == (200, "*")
    assert store.count() == 1


def test_a_refused_long_poll_holds_no_worker(live_server):
    """A refused wait is answered at once: 50 of them in a row, each answered before the next is sent."""
    for _ in range(50):
        status, _, _ = raw(live_server, "GET", "/__inspector/wait?count=999999999&timeout=300",
                           {"Sec-Fetch-Site": "cross-site", "Host": f"127.0.0.1:{live_server.listening.port}"})
        assert status == 403


# -- deleting does what it says --------------------------------------------------------------------

def _fill(server: InspectorServer, store) -> None:
    """ids 1-3 ok beacons (session 1), 4 an unknown path (invalid), 5 an invalid beacon, 6-7 ok beacons (session 2)."""
    base = listening(server).http_url
    for _ in range(3):
        assert beacon(server) == 200
    assert http("GET", f"{base}/not-refine")[0] == 404
    assert http("GET", f"{base}/telemetry?payload=%%%")[0] == 400
    store.new_session()
    for _ in range(2):
        assert beacon(server) == 200


@pytest.mark.parametrize("query, deleted, left", [
    ("kind=unknown", [4], [1, 2, 3, 5, 6, 7]),
    ("status=invalid", [4, 5], [1, 2, 3, 6, 7]),
    ("session=2", [6, 7], [1, 2, 3, 4, 5]),
    ("ids=2,4,99", [2, 4], [1, 3, 5, 6, 7]),
    ("ids=1,2,6&session=1", [1, 2], [3, 4, 5, 6, 7]),
    ("kind=beacon&status=ok&session=1", [1, 2, 3], [4, 5, 6, 7]),
    ("kind=beacon&status=invalid", [5], [1, 2, 3, 4, 6, 7]),
    ("kind=beacon&status=invalid&session=2", [], [1, 2, 3, 4, 5, 6, 7]),
    ("", [1, 2, 3, 4, 5, 6, 7], []),
])
def test_delete_takes_exactly_what_its_filters_select(live_server, store, journal, query, deleted, left):
    _fill(live_server, store)
    heard = []
    store.subscribe(heard.append)
    status, _, body = http("DELETE", f"{live_server.listening.http_url}/__inspector/beacons?{query}")
    assert (status, json.loads(body)) == (200, {"deleted": len(deleted)})
    assert [b.id for b in store.query()] == left
    if query:
        assert [(e.type, e.ids) for e in heard] == ([("deleted", tuple(deleted))] if deleted else [])
    else:
        assert [e.type for e in heard] == ["cleared"]


@pytest.mark.parametrize("query, error", [
    ("kinds=unknown", "DELETE /__inspector/beacons takes only kind, status, session, ids; got kinds"),
    ("kind=unknown&since=3", "DELETE /__inspector/beacons takes only kind, status, session, ids; got since"),
    ("kind=bogus", "kind must be one of "),
    ("kind=", "kind must be given once, with a value"),
    ("kind=unknown&kind=beacon", "kind must be given once, with a value"),
    ("status=fine", "status must be one of "),
    ("session=x", "session must be a whole number, got 'x'"),
    ("ids=1,,2", "ids must be comma-separated record ids, got ''"),
    ("ids=1,-2", "ids must be comma-separated record ids, got '-2'"),
    ("ids=99999999999999999999", "ids must be comma-separated record ids, got '99999999999999999999'"),
])
def test_delete_refuses_what_it_does_not_understand(live_server, store, query, error):
    _fill(live_server, store)
    status, _, body = http("DELETE", f"{live_server.listening.http_url}/__inspector/beacons?{query}")
    assert status == 400 and json.loads(body)["error"].startswith(error)
    assert store.count() == 7


# -- journal paths are never telemetry -------------------------------------------------------------

@pytest.mark.parametrize("method", ["GET", "POST", "HEAD", "OPTIONS", "PUT", "DELETE"])
@pytest.mark.parametrize("path", ["/__inspector", "/__inspector/", "/__inspector/nope", "/__inspector/a/b"])
def test_every_unknown_journal_path_is_the_apis_404_and_not_recorded(live_server, store, method, path):
    status, headers, body = raw(live_server, method, path, {"Host": "127.0.0.1"})
    assert status == 404 and headers["Content-Type"] == "application/json"
    assert "Access-Control-Allow-Origin" not in headers
    if method != "HEAD":
        assert json.loads(body) == {"error": f"no journal endpoint {method} {path}"}
    assert store.count() == 0


def test_options_on_a_journal_endpoint_is_no_preflight(live_server):
    status, headers, body = raw(live_server, "OPTIONS", "/__inspector/beacons", {"Host": "127.0.0.1"})
    assert (status, json.loads(body)) == (404, {"error": "no journal endpoint OPTIONS /__inspector/beacons"})
    assert not [name for name in headers if name.lower().startswith("access-control-")]


# -- the token, when listening beyond loopback -----------------------------------------------------

@pytest.fixture
def token_server(store, certificate_dir, tmp_path):
    """A server in token mode (as with --host 0.0.0.0), bound to loopback only."""
    server = InspectorServer(store, port=0, https_port=0, certificate_dir=certificate_dir,
                             require_token=True, token_dir=tmp_path / "data")
    server.start()
    yield server
    server.stop()


def test_the_token_file_is_made_private_and_reused(tmp_path):
    token = ensure_token(tmp_path / "data")
    path = tmp_path / "data" / TOKEN_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == token + "\n" and len(token) >= 40
    assert ensure_token(tmp_path / "data") == token


def test_a_token_file_others_can_read_is_replaced(tmp_path):
    token = ensure_token(tmp_path)
    os.chmod(tmp_path / TOKEN_FILE, 0o644)
    renewed = ensure_token(tmp_path)
    assert renewed != token and stat.S_IMODE((tmp_path / TOKEN_FILE).stat().st_mode) == 0o600


@pytest.mark.parametrize("authorization", [None, "Bearer", "Bearer wrong", "Basic {token}", "Bearer {token}x"])
def test_token_mode_refuses_without_the_right_token(token_server, store, authorization):
    assert beacon(token_server) == 200  # refine's endpoints need no token
    headers = {} if authorization is None else {
        "Authorization": authorization.format(token=token_server.journal_token)}
    for method, path in (("GET", "/__inspector/beacons"), ("DELETE", "/__inspector/beacons")):
        status, answer, body = raw(token_server, method, path, headers)
        assert status == 401 and answer["WWW-Authenticate"].startswith("Bearer")
        assert json.loads(body)["error"].startswith("the journal wants its token")
    assert store.count() == 1


def test_token_mode_serves_the_right_token_whatever_the_host(token_server, tmp_path):
    token = token_server.journal_token
    assert token == (tmp_path / "data" / TOKEN_FILE).read_text().strip()
    for host in ("127.0.0.1", "192.0.2.7:8787"):
        status, _, body = raw(token_server, "GET", "/__inspector/count",
                              {"Host": host, "Authorization": f"Bearer {token}"})
        assert (status, json.loads(body)["total"]) == (200, 0)
    status, _, _ = raw(token_server, "GET", "/__inspector/count",
                       {"Authorization": f"Bearer {token}", "Origin": "http://attacker.test"})
    assert status == 403  # a token does not make a web page of another origin welcome


def test_remote_inspector_takes_the_token(token_server, monkeypatch):
    url = token_server.listening.http_url
    with pytest.raises(RemoteError, match="answered HTTP 401: the journal wants its token"):
        RemoteInspector.connect(url)
    remote = RemoteInspector.connect(url, token=token_server.journal_token)
    assert remote.https_port == token_server.listening.https_port
    assert beacon(token_server) == 200
    assert [b.id for b in remote.beacons()] == [1]
    monkeypatch.setenv("TELEMETRY_INSPECTOR_TOKEN", token_server.journal_token)
    assert RemoteInspector.connect(url).last_id() == 1


def test_remote_inspector_reads_this_machines_token_file(store, certificate_dir, monkeypatch):
    monkeypatch.delenv("TELEMETRY_INSPECTOR_TOKEN", raising=False)
    with InspectorServer(store, port=0, https_port=0, certificate_dir=certificate_dir, require_token=True) as server:
        assert RemoteInspector.connect(server.listening.http_url).token == server.journal_token


def test_follow_raises_when_the_journal_refuses(token_server):
    remote = RemoteInspector.connect(token_server.listening.http_url, token=token_server.journal_token)
    remote.token = "wrong"
    with pytest.raises(RemoteHTTPError, match="answered HTTP 401"):
        remote.follow(lambda b: None, threading.Event(), since=0)


# -- real Chromium ---------------------------------------------------------------------------------

@pytest.fixture
def chromium(tmp_path, live_server):
    """Headless Chromium whose attacker.test resolves to the inspector's HTTP port; yields a DevTools page."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip("needs Chromium at /usr/bin/chromium")
    profile = tmp_path / "profile"
    profile.mkdir()
    port = live_server.listening.port
    args = [f"--user-data-dir={profile}", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--remote-debugging-port=0", f"--host-resolver-rules=MAP attacker.test 127.0.0.1:{port}",
            "about:blank"]
    browser = RoutedBrowser(CHROMIUM, args, profile, headless=True).start()
    try:
        with DevToolsConnection(page_websocket_url(browser.devtools_port(30), 30), 30) as page:
            page.call("Page.enable")
            yield page
    finally:
        browser.stop()


def _open(page: DevToolsConnection, url: str) -> None:
    assert not page.call("Page.navigate", {"url": url}, 30).get("errorText")
    page.wait_event("Page.loadEventFired", 30)


def _run(page: DevToolsConnection, script: str, timeout: float = 60) -> object:
    answer = page.call("Runtime.evaluate", {"expression": script, "awaitPromise": True, "returnByValue": True},
                       timeout)
    assert "exceptionDetails" not in answer, answer
    return answer["result"]["value"]


ATTEMPTS = """(async (base) => {
  const out = {};
  for (const [name, path, init] of [["health", "/__inspector/health", {}], ["beacons", "/__inspector/beacons", {}],
                                    ["delete", "/__inspector/beacons", {method: "DELETE"}]]) {
    try { const r = await fetch(base + path, init); out[name] = r.status + " " + await r.text(); }
    catch (e) { out[name] = "blocked"; }
  }
  return out;
})"""


def test_a_rebound_page_reads_and_deletes_nothing(chromium, live_server, store):
    assert beacon(live_server) == 200 and beacon(live_server) == 200
    port = live_server.listening.port
    _open(chromium, f"http://attacker.test:{port}/rebinding")  # its own origin: same-origin requests
    before = [b.id for b in store.query()]
    out = _run(chromium, ATTEMPTS + "('')")
    refused = ('403 {"error": "the journal answers only requests for localhost or 127.0.0.1, '
               f'not Host: \'attacker.test:{port}\'"}}')
    assert out == {"health": refused, "beacons": refused, "delete": refused}
    assert set(before) <= {b.id for b in store.query()} and before[:2] == [1, 2]


STORM = """(async (target) => {
  // six lanes (Chromium's connections per host), 50 long polls each, every one aborted after 150 ms
  const lane = async () => {
    for (let i = 0; i < 50; i++) {
      const stop = new AbortController();
      const timer = setTimeout(() => stop.abort(), 150);
      try { await fetch(target + "/__inspector/wait?count=999999999&timeout=300",
                        {mode: "no-cors", signal: stop.signal}); } catch (e) {}
      clearTimeout(timer);
    }
  };
  await Promise.all(Array.from({length: 6}, lane));
  return "done";
})"""


def test_a_cross_site_page_neither_reads_nor_stalls_the_journal(chromium, live_server, store, monkeypatch):
    assert beacon(live_server) == 200 and beacon(live_server) == 200
    waiting, most = [0], [0]  # long polls in the store now, and at most (each one holds a worker)
    real_wait = store.wait_for_count

    def counted_wait(*args, **kwargs):
        waiting[0] += 1
        most[0] = max(most[0], waiting[0])
        try:
            return real_wait(*args, **kwargs)
        finally:
            waiting[0] -= 1

    monkeypatch.setattr(store, "wait_for_count", counted_wait)
    port = live_server.listening.port
    _open(chromium, f"http://localhost:{port}/cross-site-page")  # another site than 127.0.0.1
    target = f"http://127.0.0.1:{port}"
    out = _run(chromium, ATTEMPTS + f"({target!r})")
    assert out == {"health": "blocked", "beacons": "blocked", "delete": "blocked"}
    assert _run(chromium, STORM + f"({target!r})", timeout=120) == "done"
    assert most == [0]  # not one long poll of the storm reached the store
    # The acceptance bound: a beacon right after the storm is answered within 2 s.
    started = time.monotonic()
    try:
        with urllib.request.urlopen(f"{target}/telemetry?{QUERY}", timeout=10) as response:
            status = response.status
    except OSError:
        status = None
    elapsed = time.monotonic() - started
    assert status == 200 and elapsed < 2.0, (status, elapsed)
    ids = [b.id for b in store.query()]
    assert ids[:2] == [1, 2] and len(ids) >= 3
    assert store.query(kind="beacon")[-1].id == ids[-1]  # the last one is the beacon just sent



def test_the_serve_banner_shows_the_token_only_in_token_mode(token_server, live_server, store, tmp_path):
    from mockserver.cli.output import banner

    shown = banner(token_server.listening, store, None, token=token_server.journal_token,
                   token_file=token_server.token_file)
    assert (f"  Token     {token_server.journal_token}  (the journal wants 'Authorization: Bearer <token>'; "
            f"kept in {tmp_path / 'data' / TOKEN_FILE})") in shown.splitlines()
    assert live_server.journal_token is None and live_server.token_file is None
    assert "Token" not in banner(live_server.listening, store, None)


@pytest.mark.parametrize("command", ["verify", "browser"])
def test_the_server_clients_take_a_token(command):
    from mockserver.cli.main import build_parser

    args = build_parser().parse_args([command, "http://localhost:5173/", "--server", "http://127.0.0.1:8787",
                                      "--token", "t0ken"])
    assert (args.server, args.token) == ("http://127.0.0.1:8787", "t0ken")


def test_one_loopback_rule_for_binding_the_token_and_the_host_check():
    from mockserver.core.config import is_loopback

    assert [h for h in ("localhost", "127.0.0.1", "127.5.6.7", "::1") if not is_loopback(h)] == []
    # A name that only starts like a loopback address could resolve anywhere: beyond loopback, so the token.
    assert [h for h in ("127.attacker.test", "0.0.0.0", "::", "192.168.1.2", "example.com", "") if is_loopback(h)] == []
