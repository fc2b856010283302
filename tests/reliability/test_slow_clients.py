"""Many idle or slow connections must not stop other clients from being served.

More slow sockets than the server has threads for refine's endpoints: some connect and
send nothing, some send half a request line, some stop inside the headers or the
body, and on the HTTPS port some connect without a TLS handshake or stop in
the middle of one. A normal beacon over HTTP and over HTTPS must still be
answered 200 (within a generous bound: the former server's starved pool answered
after 10-30 s, when its socket timeout freed a thread).
"""

from __future__ import annotations

import contextlib
import socket
import time

from mockserver.core.clock import parse_iso
from mockserver.serving.server import BEACON_THREADS, InspectorServer
from tests.reliability.support import connection, send

SLOW_HTTP = {
    "idle": b"",
    "half request line": b"GET /telemetry?payload=eyJ2ZXJzaW9uIjoiNC41OC4wIn0= HT",
    "inside the headers": b"GET /telemetry HTTP/1.1\r\nHost: telemetry.refine.dev\r\nUser-Agent: Mozi",
    "inside the body": b"POST /cli HTTP/1.1\r\nHost: telemetry.refine.dev\r\nContent-Length: 500\r\n\r\n{\"com",
}
PER_KIND = 20  # 80 slow HTTP sockets
TLS_IDLE, TLS_HALF_HELLO = 15, 15
ANSWER_WITHIN = 8.0  # seconds; the starved pool needed 10-30 s


def test_slow_and_idle_connections_do_not_starve_other_clients(live_server):
    listening = live_server.listening
    assert PER_KIND * len(SLOW_HTTP) > BEACON_THREADS and TLS_IDLE + TLS_HALF_HELLO > 2, "must outnumber the threads"
    with contextlib.ExitStack() as open_sockets:
        for data in SLOW_HTTP.values():
            for _ in range(PER_KIND):
                sock = open_sockets.enter_context(socket.create_connection(("127.0.0.1", listening.port), 10))
                if data:
                    sock.sendall(data)
        for n in range(TLS_IDLE + TLS_HALF_HELLO):
            sock = open_sockets.enter_context(socket.create_connection(("127.0.0.1", listening.https_port), 10))
            if n >= TLS_IDLE:
                sock.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")  # the start of a ClientHello

        for scheme, port in (("http", listening.port), ("https", listening.https_port)):
            conn = connection(port, scheme, timeout=ANSWER_WITHIN)
            try:
                assert send(conn, "beacon", f"normal-{scheme}") == 200, scheme
                assert send(conn, "cli", f"normal-cli-{scheme}") == 200, scheme
            finally:
                conn.close()

    markers = [b.payload.get("projectId") for b in live_server.store.query() if b.payload]
    assert markers == ["normal-http", "normal-cli-http", "normal-https", "normal-cli-https"]


def test_plain_http_on_the_https_port_gets_a_tls_alert_and_is_closed(live_server):
    """rustls reads the request line as a broken TLS record: a fatal decode_error alert (TLS 1.2 record
    version), then the connection closes; nothing is recorded and the listener goes on serving."""
    with socket.create_connection(("127.0.0.1", live_server.listening.https_port), 10) as sock:
        sock.sendall(b"GET /telemetry HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    assert answer == bytes.fromhex("15 03 03 00 02 02 32")  # alert record: level fatal, decode_error (50)
    conn = connection(live_server.listening.https_port, "https")
    try:
        assert send(conn, "beacon", "after-plain") == 200
    finally:
        conn.close()
    assert [b.payload["projectId"] for b in live_server.store.query()] == ["after-plain"]


def test_a_head_not_in_within_the_deadline_is_closed_without_an_answer(store, certificate_dir):
    """granian closes the connection at its header deadline and sends nothing: no 408 (hyper never calls
    the app for a head that did not arrive, so nothing can answer it). An idle keep-alive connection is
    closed at the same deadline; other clients are served meanwhile."""
    deadline = 1.0
    with InspectorServer(store, port=0, https_port=None, header_timeout=deadline) as server:
        port = server.listening.port
        slow = {name: socket.create_connection(("127.0.0.1", port), 10) for name in ("silent", "half a head", "idle")}
        started = time.monotonic()
        slow["half a head"].sendall(SLOW_HTTP["inside the headers"])
        slow["idle"].sendall(b"GET /__inspector/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert slow["idle"].recv(65536).startswith(b"HTTP/1.1 200 OK\r\n")
        conn = connection(port)
        try:
            assert send(conn, "beacon", "meanwhile") == 200
        finally:
            conn.close()
        for name, sock in slow.items():
            with sock:
                assert sock.recv(65536) == b"", name  # closed, not answered
        took = time.monotonic() - started
    assert deadline <= took < deadline + 5
    assert [b.payload.get("projectId") for b in store.query()] == ["meanwhile"]


def test_a_request_is_recorded_at_the_time_its_head_arrived(live_server):
    """Its body trickles in for over a second: the record's time is when the head came, not when the
    body was complete and the request recorded."""
    body = b'{"command": "dev", "projectId": "trickled"}'
    with socket.create_connection(("127.0.0.1", live_server.listening.port), 10) as sock:
        head_sent = time.time()
        sock.sendall(b"POST /cli HTTP/1.1\r\nHost: telemetry.refine.dev\r\nContent-Length: %d\r\n\r\n" % len(body))
        for byte in range(len(body)):  # over about 1.3 s
            time.sleep(0.03)
            sock.sendall(body[byte:byte + 1])
        body_sent = time.time()
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 OK\r\n")
    [record] = live_server.store.query()
    arrived = parse_iso(record.received_at).timestamp()
    assert record.payload["projectId"] == "trickled" and body_sent - head_sent > 1.0
    assert head_sent - 0.01 <= arrived < body_sent - 0.5
