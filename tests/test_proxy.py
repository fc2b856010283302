"""The scoped proxy (``--proxy-port``): real sockets, real curl, real TLS.

telemetry.refine.dev through it is recorded exactly as a direct request (plus
``client.via_proxy``); every other host (here: other loopback servers, the sandbox has
no internet) is relayed byte for byte, never decrypted, never recorded, only listed.
"""

from __future__ import annotations

import functools
import http.client
import http.server
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mockserver.core.payloads import beacon_payload, btoa_json, buffer_json, js_stringify
from mockserver.core.routing import QUIET_CHROMIUM_FLAGS
from mockserver.reach.remote import RemoteInspector
from mockserver.serving.egress import EgressLog
from mockserver.serving.proxy import BadRequest, ProxyError, ScopedProxy, parse_head
from mockserver.serving.server import InspectorServer, ServerError
from mockserver.serving.tls import ensure_certificate
from tests.support.helpers import Journal, read_line, read_until
from tests.test_browser import BEACON_PAGE

PAYLOAD = beacon_payload("4.58.0", resources=7)
BLOB = bytes(range(256)) * 64 + b"\r\n\r\nHTTP/1.1 200 OK\r\n"  # every byte value, and what looks like a head


def _proxy_port(server: InspectorServer) -> int:
    assert server.listening and server.listening.proxy_port
    return server.listening.proxy_port


def _ca(server: InspectorServer) -> str:
    assert server.certificate
    return str(server.certificate.ca_cert)


def _query(payload: dict[str, Any], encode: Callable[[Any], str] = btoa_json) -> str:
    return "payload=" + quote(encode(payload), safe="")


def _curl(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    return subprocess.run(["curl", "-sS", "--noproxy", "", *args], input=stdin, capture_output=True, timeout=60)


def _raw(port: int, data: bytes) -> bytes:
    """Send ``data`` to the proxy and read its whole answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        out = b""
        while piece := sock.recv(65536):
            out += piece
        return out


# -- telemetry.refine.dev: recorded -------------------------------------------

def test_curl_https_through_the_proxy_is_recorded_as_https(proxied):
    query = _query(PAYLOAD)
    done = _curl("-x", f"http://127.0.0.1:{_proxy_port(proxied)}", "--cacert", _ca(proxied),
                 "-o", "/dev/null", "-w", "%{http_code}", f"https://telemetry.refine.dev/telemetry?{query}")
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"200"
    [record] = Journal(proxied.listening.http_url).wait_for(1)
    assert record["request"]["scheme"] == "https"
    assert record["request"]["query"] == query
    assert record["payload"] == PAYLOAD
    assert record["status"] == "ok"
    assert record["client"]["via_proxy"] == "CONNECT telemetry.refine.dev:443"
    assert record["request"]["headers"]["Host"] == "telemetry.refine.dev"
    assert not any(name.lower().startswith("proxy-") for name in record["request"]["headers"])
    assert proxied.egress.entries() == []  # the inspector's own host is not egress


def test_a_proxied_record_is_the_direct_one_plus_via_proxy(proxied):
    """The same curl request, once straight to the HTTPS listener and once through the proxy."""
    https_port = proxied.listening.https_port
    direct = _curl("--connect-to", f"telemetry.refine.dev:443:127.0.0.1:{https_port}", "--cacert", _ca(proxied),
                   "-o", "/dev/null", f"https://telemetry.refine.dev/telemetry?{_query(PAYLOAD)}")
    other = beacon_payload("4.58.0", resources=8)  # another payload: not a duplicate of the first
    proxy = _curl("-x", f"http://127.0.0.1:{_proxy_port(proxied)}", "--cacert", _ca(proxied), "-o", "/dev/null",
                  f"https://telemetry.refine.dev/telemetry?{_query(other)}")
    assert direct.returncode == proxy.returncode == 0, (direct.stderr, proxy.stderr)
    first, second = Journal(proxied.listening.http_url).wait_for(2)
    assert (first["payload"], second["payload"]) == (PAYLOAD, other)
    assert second["client"].pop("via_proxy") == "CONNECT telemetry.refine.dev:443"
    for record in (first, second):
        for varying in ("id", "received_at", "payload", "raw_payload"):
            record.pop(varying)
        record["request"].pop("query")
    assert second == first


def test_curl_with_https_proxy_env_is_recorded(proxied):
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    env = {**os.environ, "HTTPS_PROXY": f"http://127.0.0.1:{_proxy_port(proxied)}", "NO_PROXY": "", "no_proxy": ""}
    done = subprocess.run(["curl", "-sS", "--cacert", _ca(proxied), "-o", "/dev/null", "-w", "%{http_code}",
                           f"https://telemetry.refine.dev/telemetry?{_query(PAYLOAD)}"],
                          capture_output=True, timeout=60, env=env)
    assert (done.returncode, done.stdout) == (0, b"200"), done.stderr
    [record] = Journal(proxied.listening.http_url).wait_for(1)
    assert (record["request"]["scheme"], record["payload"]) == ("https", PAYLOAD)


def test_python_http_client_tunnel_is_recorded(proxied):
    context = ssl.create_default_context(cafile=_ca(proxied))
    conn = http.client.HTTPSConnection("127.0.0.1", _proxy_port(proxied), context=context, timeout=30)
    conn.set_tunnel("telemetry.refine.dev", 443)
    query = _query(PAYLOAD, buffer_json)
    conn.request("GET", f"/telemetry?{query}", headers={"User-Agent": "node"})
    response = conn.getresponse()
    assert response.status == 200
    response.read()
    conn.close()
    [record] = Journal(proxied.listening.http_url).wait_for(1)
    assert record["request"]["scheme"] == "https"
    assert record["request"]["query"] == query
    assert record["payload"] == PAYLOAD
    assert record["client"]["via_proxy"] == "CONNECT telemetry.refine.dev:443"


def test_python_urllib_with_https_proxy_env_is_recorded(proxied):
    """What Python programs (urllib, and requests with REQUESTS_CA_BUNDLE) do with HTTPS_PROXY."""
    script = ("import urllib.request, ssl, sys; ctx = ssl.create_default_context(cafile=sys.argv[2]); "
              "print(urllib.request.urlopen(sys.argv[1], context=ctx, timeout=30).status)")
    env = {**os.environ, "HTTPS_PROXY": f"http://127.0.0.1:{_proxy_port(proxied)}", "NO_PROXY": "", "no_proxy": ""}
    done = subprocess.run([sys.executable, "-c", script, f"https://telemetry.refine.dev/telemetry?{_query(PAYLOAD)}",
                           _ca(proxied)], capture_output=True, text=True, timeout=60, env=env)
    assert (done.returncode, done.stdout) == (0, "200\n"), done.stderr
    [record] = Journal(proxied.listening.http_url).wait_for(1)
    assert (record["request"]["scheme"], record["payload"]) == ("https", PAYLOAD)


def test_python_requests_with_https_proxy_env_is_recorded(proxied):
    """The README's recipe for Python requests: HTTPS_PROXY, and the CA in REQUESTS_CA_BUNDLE."""
    pytest.importorskip("requests")
    script = "import requests, sys; print(requests.get(sys.argv[1], timeout=30).status_code)"
    env = {**os.environ, "HTTPS_PROXY": f"http://127.0.0.1:{_proxy_port(proxied)}", "NO_PROXY": "", "no_proxy": "",
           "REQUESTS_CA_BUNDLE": _ca(proxied)}
    done = subprocess.run([sys.executable, "-c", script, f"https://telemetry.refine.dev/telemetry?{_query(PAYLOAD)}"],
                          capture_output=True, text=True, timeout=60, env=env)
    assert (done.returncode, done.stdout) == (0, "200\n"), done.stderr
    [record] = Journal(proxied.listening.http_url).wait_for(1)
    assert (record["request"]["scheme"], record["payload"]) == ("https", PAYLOAD)
    assert record["client"]["via_proxy"] == "CONNECT telemetry.refine.dev:443"


def test_plain_http_through_the_proxy_is_recorded(proxied):
    query = _query(PAYLOAD)
    done = _curl("-x", f"http://127.0.0.1:{_proxy_port(proxied)}", "-o", "/dev/null", "-w", "%{http_code}",
                 f"http://telemetry.refine.dev/telemetry?{query}")
    assert (done.returncode, done.stdout) == (0, b"200"), done.stderr
    [record] = Journal(proxied.listening.http_url).wait_for(1)
    assert record["request"]["scheme"] == "http"
    assert record["request"]["path"] == "/telemetry"
    assert record["request"]["query"] == query
    assert record["payload"] == PAYLOAD
    assert record["client"]["via_proxy"] == "absolute-form telemetry.refine.dev:80"
    assert "Proxy-Connection" not in record["request"]["headers"]


def test_a_direct_request_has_no_via_proxy(proxied):
    done = _curl("-o", "/dev/null", f"{proxied.listening.http_url}/telemetry?{_query(PAYLOAD)}")
    assert done.returncode == 0, done.stderr
    [record] = Journal(proxied.listening.http_url).wait_for(1)
    assert "via_proxy" not in record["client"]


def test_health_and_no_proxy(proxied, store, certificate_dir):
    health = Journal(proxied.listening.http_url).get("/health")
    assert health["proxy_url"] == f"http://127.0.0.1:{_proxy_port(proxied)}"
    # `--server URL` front ends read it there.
    assert RemoteInspector.connect(proxied.listening.http_url).proxy_url == health["proxy_url"]
    with InspectorServer(store, port=0, https_port=0, certificate_dir=certificate_dir) as plain:
        assert Journal(plain.listening.http_url).get("/health")["proxy_url"] is None
        assert RemoteInspector.connect(plain.listening.http_url).proxy_url is None


@pytest.mark.parametrize("value", ["http://127.0.0.1:8789", "http://[::1]:8789"])
def test_a_remote_proxy_url_is_taken_only_when_it_is_one(value):
    from mockserver.reach.remote import _proxy_url

    assert _proxy_url(value) == value
    for bad in (None, 8789, "", "https://127.0.0.1:8789", "http://127.0.0.1:8789/x", "http://a b:1", value + "\n"):
        assert _proxy_url(bad) is None


def test_connect_to_refine_with_https_off_is_refused_not_leaked(store, certificate_dir):
    with InspectorServer(store, port=0, https_port=None, proxy_port=0, certificate_dir=certificate_dir) as server:
        out = _raw(_proxy_port(server), b"CONNECT telemetry.refine.dev:443 HTTP/1.1\r\n\r\n")
        assert out.startswith(b"HTTP/1.1 502 Bad Gateway\r\n")
        assert out.endswith(b"telemetry.refine.dev:443 is served by the inspector's HTTPS listener, which is off\n")
        assert server.egress.entries() == []


# -- every other host: untouched, listed --------------------------------------

class _Echo(http.server.BaseHTTPRequestHandler):
    """Answers BLOB, and keeps what each request sent."""

    received: list[tuple[str, str, bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((self.command, self.path, body))
        self.send_response(200)
        self.send_header("Content-Length", str(len(BLOB)))
        self.end_headers()
        self.wfile.write(BLOB)

    do_GET = do_POST

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def other_host() -> Iterator[http.server.ThreadingHTTPServer]:
    """Another host for the proxy: a plain HTTP server on loopback."""
    _Echo.received = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def other_tls_host(tmp_path_factory, other_host) -> Iterator[tuple[int, Path, Path]]:
    """Another HTTPS host with a CA of its own: (port, its CA file, its certificate file)."""
    files = ensure_certificate(tmp_path_factory.mktemp("other-tls"))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(files.cert), str(files.key))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], files.ca_cert, files.cert
    server.shutdown()
    server.server_close()


def test_another_host_is_forwarded_untouched_and_listed(proxied, other_host):
    port = other_host.server_address[1]
    body = BLOB[::-1]
    done = _curl("-x", f"http://127.0.0.1:{_proxy_port(proxied)}", "--data-binary", "@-",
                 f"http://127.0.0.1:{port}/upload?x=1", stdin=body)
    assert done.returncode == 0, done.stderr
    assert done.stdout == BLOB
    assert _Echo.received == [("POST", "/upload?x=1", body)]
    Journal(proxied.listening.http_url).ensure_not_logged(0.3)
    [entry] = proxied.egress.entries()
    assert (entry.host, entry.port, entry.method, entry.url, entry.status, entry.outcome) == (
        "127.0.0.1", port, "POST", f"http://127.0.0.1:{port}/upload?x=1", 200, "closed")
    assert entry.bytes_sent > len(body) and entry.bytes_received > len(BLOB)
    assert entry.client.startswith("127.0.0.1:")


def test_another_tls_host_is_tunneled_never_decrypted(proxied, other_tls_host):
    port, other_ca, other_cert = other_tls_host
    context = ssl.create_default_context(cafile=str(other_ca))  # the other host's CA, not the inspector's
    conn = http.client.HTTPSConnection("127.0.0.1", _proxy_port(proxied), context=context, timeout=30)
    conn.set_tunnel("127.0.0.1", port)
    conn.connect()
    assert conn.sock.getpeercert(binary_form=True) == ssl.PEM_cert_to_DER_cert(other_cert.read_text())
    conn.request("POST", "/secret", body=b"in the tunnel")
    response = conn.getresponse()
    assert (response.status, response.read()) == (200, BLOB)
    conn.close()
    assert _Echo.received == [("POST", "/secret", b"in the tunnel")]
    Journal(proxied.listening.http_url).ensure_not_logged(0.3)
    [entry] = proxied.egress.entries()
    assert (entry.host, entry.port, entry.method, entry.url, entry.status, entry.outcome) == (
        "127.0.0.1", port, "CONNECT", None, None, "closed")
    assert entry.bytes_sent > 0 and entry.bytes_received > len(BLOB)


def test_python_requests_with_a_bundle_reaches_telemetry_and_another_tls_host(proxied, other_tls_host, tmp_path):
    """The README's bundle: REQUESTS_CA_BUNDLE replaces the trust store, so the system CAs (here: the other
    host's CA stands in for them) and the inspector's go in one file, and both hosts verify."""
    pytest.importorskip("requests")
    port, other_ca, _ = other_tls_host
    bundle = tmp_path / "bundle.pem"
    bundle.write_text(other_ca.read_text() + Path(_ca(proxied)).read_text())
    script = ("import requests, sys\n"
              "print(requests.get(sys.argv[1], timeout=30).status_code)\n"
              "print(requests.post(sys.argv[2], data=b'x', timeout=30).status_code)\n")
    env = {**os.environ, "HTTPS_PROXY": f"http://127.0.0.1:{_proxy_port(proxied)}", "NO_PROXY": "", "no_proxy": "",
           "REQUESTS_CA_BUNDLE": str(bundle)}
    done = subprocess.run([sys.executable, "-c", script, f"https://telemetry.refine.dev/telemetry?{_query(PAYLOAD)}",
                           f"https://127.0.0.1:{port}/other"], capture_output=True, text=True, timeout=60, env=env)
    assert (done.returncode, done.stdout) == (0, "200\n200\n"), done.stderr
    [record] = Journal(proxied.listening.http_url).wait_for(1)
    assert (record["payload"], record["client"]["via_proxy"]) == (PAYLOAD, "CONNECT telemetry.refine.dev:443")
    assert _Echo.received == [("POST", "/other", b"x")]
    assert [(e.method, e.host, e.port) for e in proxied.egress.entries()] == [("CONNECT", "127.0.0.1", port)]


def test_an_unreachable_host_is_502_and_listed(proxied):
    with socket.socket() as spare:
        spare.bind(("127.0.0.1", 0))
        closed_port = spare.getsockname()[1]  # bound, never listening: connections are refused
        out = _raw(_proxy_port(proxied), f"CONNECT 127.0.0.1:{closed_port} HTTP/1.1\r\n\r\n".encode())
    assert out.startswith(b"HTTP/1.1 502 Bad Gateway\r\n")
    assert out.endswith(f"cannot reach 127.0.0.1:{closed_port}: Connection refused\n".encode())
    [entry] = proxied.egress.entries()
    assert (entry.method, entry.port, entry.outcome) == ("CONNECT", closed_port, "failed: Connection refused")


# -- bounds and refusals ------------------------------------------------------

@pytest.mark.parametrize(("head", "status", "reason"), ids=[
    "connect-no-port", "connect-bad-port", "connect-no-host", "no-version", "origin-form", "https-url",
    "userinfo", "header-no-colon", "bare-cr", "non-ascii", "head-too-long", "closed-in-head"], argvalues=[
    (b"CONNECT nonsense HTTP/1.1\r\n\r\n", 400, "CONNECT wants host:port, got 'nonsense'"),
    (b"CONNECT host:99999 HTTP/1.1\r\n\r\n", 400, "port 99999 is out of range (1-65535)"),
    (b"CONNECT :443 HTTP/1.1\r\n\r\n", 400, "CONNECT wants host:port, got ':443'"),
    (b"CONNECT a:443\r\n\r\n", 400, "not an HTTP/1.x request line: 'CONNECT a:443'"),
    (b"GET /telemetry HTTP/1.1\r\nHost: telemetry.refine.dev\r\n\r\n", 400,
     "this is a proxy: send an absolute URL (GET http://host/path) or CONNECT host:port"),
    (b"GET https://telemetry.refine.dev/ HTTP/1.1\r\n\r\n", 400,
     "an https:// URL goes through CONNECT host:443, not as a plain request"),
    (b"GET http://user:pw@example.test/ HTTP/1.1\r\n\r\n", 400, "a user name or password in the URL is not forwarded"),
    (b"CONNECT a:443 HTTP/1.1\r\nno colon here\r\n\r\n", 400, "malformed header line 'no colon here'"),
    (b"GET http://a/ HTTP/1.1\r\nX: 1\rHost: b\r\n\r\n", 400, "a control character in the request head"),
    ("CONNECT é:443 HTTP/1.1\r\n\r\n".encode(), 400, "the request head is not ASCII"),
    (b"CONNECT a:443 HTTP/1.1\r\nX: " + b"y" * (70 * 1024) + b"\r\n\r\n", 431, "the request head is over 64 KiB"),
    (b"CONNECT a:443 HTTP/1.1\r\n", 400, "the connection closed inside the request head"),
])
def test_malformed_requests_get_a_clear_answer(proxied, head, status, reason):
    out = _raw(_proxy_port(proxied), head)
    first, _, rest = out.partition(b"\r\n")
    assert first.split(b" ")[1] == str(status).encode()
    assert rest.endswith(b"\r\n\r\n" + reason.encode() + b"\n")
    # the proxy goes on working, and nothing was recorded or listed
    assert _raw(_proxy_port(proxied), b"CONNECT bad HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    assert proxied.egress.entries() == []
    assert proxied.store.count() == 0


def test_parse_head_forwarded_form():
    request = parse_head(b"GET http://Example.TEST./a/b?q=1&r HTTP/1.1\r\nHost: example.test\r\n"
                         b"Proxy-Connection: Keep-Alive\r\nConnection: keep-alive\r\nAccept: */*")
    assert (request.method, request.host, request.port, request.path) == ("GET", "example.test", 80, "/a/b?q=1&r")
    assert request.forwarded_head() == (b"GET /a/b?q=1&r HTTP/1.1\r\nHost: example.test\r\nAccept: */*\r\n"
                                        b"Connection: close\r\n\r\n")
    ipv6 = parse_head(b"CONNECT [::1]:8443 HTTP/1.1")
    assert (ipv6.host, ipv6.port, ipv6.is_connect) == ("::1", 8443, True)
    with pytest.raises(BadRequest, match="out of range"):
        parse_head(b"CONNECT a:0 HTTP/1.1")


def test_a_non_loopback_peer_gets_403():
    proxy = ScopedProxy("127.0.0.1", 0, http_target=("127.0.0.1", 9), https_target=None)
    ours, theirs = socket.socketpair()
    with ours, theirs:
        theirs.sendall(b"CONNECT telemetry.refine.dev:443 HTTP/1.1\r\n\r\n")
        proxy.serve_connection(ours, ("192.0.2.7", 40000))
        ours.shutdown(socket.SHUT_WR)
        theirs.settimeout(30)
        answer = b""
        while piece := theirs.recv(4096):
            answer += piece
    assert answer.startswith(b"HTTP/1.1 403 Forbidden\r\n")
    assert answer.endswith(b"this proxy relays for programs on this machine only\n")
    assert proxy.egress.entries() == []


def test_the_proxy_refuses_to_listen_beyond_loopback(store, tmp_path):
    with pytest.raises(ProxyError, match=r"^the proxy listens on loopback only \(127.0.0.1 or ::1\), not on 0.0.0.0$"):
        ScopedProxy("0.0.0.0", 0, http_target=("127.0.0.1", 9), https_target=None)
    server = InspectorServer(store, host="0.0.0.0", port=0, https_port=None, proxy_port=0, token_dir=tmp_path)
    with pytest.raises(ServerError) as caught:
        server.start()
    assert str(caught.value) == ("the proxy listens on loopback only (127.0.0.1 or ::1), not on 0.0.0.0 "
                                 "(--proxy-port needs --host 127.0.0.1 or ::1)")
    assert server.listening is None


def test_a_proxy_port_in_use_is_one_line(store, certificate_dir, proxied):
    server = InspectorServer(store, port=0, https_port=None, proxy_port=_proxy_port(proxied))
    with pytest.raises(ServerError) as caught:
        server.start()
    assert str(caught.value) == (f"proxy port {_proxy_port(proxied)} on 127.0.0.1 is already in use "
                                 "(pick another with --proxy-port, or 0 for a free one)")
    assert server.listening is None


def _silent_server() -> socket.socket:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    return silent


def test_an_idle_tunnel_is_closed():
    egress = EgressLog()
    proxy = ScopedProxy("127.0.0.1", 0, http_target=("127.0.0.1", 9), https_target=None, egress=egress,
                        idle_timeout=0.2)
    port = proxy.start()
    with _silent_server() as silent:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=30) as client:
                client.sendall(f"CONNECT 127.0.0.1:{silent.getsockname()[1]} HTTP/1.1\r\n\r\n".encode())
                assert client.recv(4096).startswith(b"HTTP/1.1 200 Connection Established\r\n")
                assert client.recv(4096) == b""  # nothing moved: the proxy closed it
        finally:
            proxy.stop()
    [entry] = egress.entries()
    assert (entry.outcome, entry.bytes_sent, entry.bytes_received) == ("idle timeout", 0, 0)
    assert entry.ended_at is not None


def test_connections_beyond_the_cap_get_503_and_stop_cuts_tunnels():
    proxy = ScopedProxy("127.0.0.1", 0, http_target=("127.0.0.1", 9), https_target=None, max_connections=1)
    port = proxy.start()
    with _silent_server() as silent:
        try:
            first = socket.create_connection(("127.0.0.1", port), timeout=30)
            first.sendall(f"CONNECT 127.0.0.1:{silent.getsockname()[1]} HTTP/1.1\r\n\r\n".encode())
            assert first.recv(4096).startswith(b"HTTP/1.1 200 ")
            with socket.create_connection(("127.0.0.1", port), timeout=30) as second:
                out = second.recv(4096)
            assert out.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
            assert out.endswith(b"the proxy already relays 1 connection(s); try again\n")
        finally:
            proxy.stop()
        assert first.recv(4096) == b""  # stop() ended the open tunnel
        first.close()
    [entry] = proxy.egress.entries()
    assert entry.outcome == "closed"


# -- the command line ---------------------------------------------------------

def test_serve_with_proxy_port_runs_the_readme_recipe(tmp_path):
    """``serve --proxy-port``: the banner's Proxy line, then the README's curl recipe through it."""
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    env = {**os.environ, "TELEMETRY_INSPECTOR_HOME": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-m", "mockserver", "serve", "--db", ":memory:", "--port", "0",
                             "--https-port", "0", "--proxy-port", "0"], cwd=Path(__file__).resolve().parents[1],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        found, _ = read_until(proc.stdout, r"^  Proxy     http://127\.0\.0\.1:(\d+)  \(HTTPS_PROXY or curl -x: "
                                           r"telemetry\.refine\.dev recorded, other hosts passed through\)$")
        _, banner = read_until(proc.stdout, r"^Waiting for requests")
        ca = tmp_path / "tls" / "ca.pem"
        done = _curl("-x", f"http://127.0.0.1:{found.group(1)}", "--cacert", str(ca), "-o", "/dev/null", "-w",
                     "%{http_code}", f"https://telemetry.refine.dev/telemetry?{_query(PAYLOAD)}")
        assert (done.returncode, done.stdout) == (0, b"200"), done.stderr
        line = read_line(proc.stdout)
        assert re.search(r"#1 +beacon +ok +GET /telemetry +refine 4\.58\.0 · 7 resources", line), line
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert proc.returncode == 0


def test_serve_refuses_a_proxy_beyond_loopback(tmp_path):
    env = {**os.environ, "TELEMETRY_INSPECTOR_HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "mockserver", "serve", "--db", ":memory:", "--host", "0.0.0.0",
                           "--port", "0", "--no-https", "--proxy-port", "0"], cwd=Path(__file__).resolve().parents[1],
                          capture_output=True, text=True, timeout=60, env=env)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == ("telemetry-inspector serve: the proxy listens on loopback only (127.0.0.1 or ::1), not on "
                           "0.0.0.0 (--proxy-port needs --host 127.0.0.1 or ::1)\n")


def test_a_websocket_upgrade_keeps_its_headers():
    request = parse_head(b"GET http://example.test/ws HTTP/1.1\r\nHost: example.test\r\nConnection: Upgrade\r\n"
                         b"Upgrade: websocket\r\nProxy-Connection: keep-alive")
    assert request.forwarded_head() == (b"GET /ws HTTP/1.1\r\nHost: example.test\r\nConnection: Upgrade\r\n"
                                        b"Upgrade: websocket\r\n\r\n")


def test_a_url_without_a_valid_host_is_400():
    with pytest.raises(BadRequest, match=r"^the URL wants host or host:port, got 'example.test:http'$"):
        parse_head(b"GET http://example.test:http/ HTTP/1.1")
    with pytest.raises(BadRequest, match=r"^the URL wants host or host:port, got ''$"):
        parse_head(b"GET http:///path HTTP/1.1")


_HEADS = st.builds(lambda method, target, rest: f"{method} {target} HTTP/1.1\r\n{rest}".encode("utf-8", "replace"),
                   st.sampled_from(["GET", "CONNECT", "POST"]),
                   st.sampled_from(["http://", "", "[", "telemetry.refine.dev:"]).flatmap(
                       lambda start: st.text(max_size=40).map(lambda text: start + text)),
                   st.text(max_size=80))


@given(st.binary(max_size=300) | _HEADS)
def test_any_head_parses_or_is_a_clear_400(head):
    try:
        request = parse_head(head)
    except BadRequest as exc:
        assert exc.status == 400 and str(exc) and "\n" not in str(exc)
    else:
        assert request.method and request.host and 0 < request.port < 65536
        assert request.forwarded_head().endswith(b"\r\n\r\n") or request.is_connect


# -- a real Chromium through the proxy (what Electron's --proxy-server does) ---



def test_chromium_with_proxy_server_delivers_the_beacon_and_lists_the_page(chromium, proxied, tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text(BEACON_PAGE % repr(js_stringify(PAYLOAD)))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    page_server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=page_server.serve_forever, daemon=True).start()
    page = f"http://127.0.0.1:{page_server.server_address[1]}/index.html"
    assert proxied.listening and proxied.listening.spki_pin
    args = [chromium, f"--user-data-dir={tmp_path / 'profile'}", "--headless", "--disable-gpu",
            *QUIET_CHROMIUM_FLAGS, f"--proxy-server=http://127.0.0.1:{_proxy_port(proxied)}",
            "--proxy-bypass-list=<-loopback>",  # the page's loopback host goes through the proxy too
            f"--ignore-certificate-errors-spki-list={proxied.listening.spki_pin}", page]
    if os.geteuid() == 0:
        args.insert(1, "--no-sandbox")
    browser = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        [record] = Journal(proxied.listening.http_url).wait_for(1, timeout=30)
    finally:
        browser.terminate()
        browser.wait(timeout=30)
        page_server.shutdown()
        page_server.server_close()
    assert record["payload"] == PAYLOAD
    assert record["request"]["scheme"] == "https"
    assert record["client"]["via_proxy"] == "CONNECT telemetry.refine.dev:443"
    assert record["client"]["browser"]["family"] in ("Chrome", "HeadlessChrome", "Chromium")
    pages = [entry for entry in proxied.egress.entries() if entry.url == page]
    assert [(entry.method, entry.status) for entry in pages] == [("GET", 200)]
