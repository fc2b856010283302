"""Long polls and event streams: capped, freed when their client leaves, ended first when the server stops.

Real sockets against the real server with small caps (2 of each). Beyond a cap the
answer is a 503 with ``Retry-After`` decided without a thread; a client that
disconnects frees its slot within a second (the journal's waits watch the request's
cancel, set by the disconnect); ``stop()`` ends every wait and stream before it stops
the listeners, so it returns at once and each client sees its connection end.
"""

from __future__ import annotations

import contextlib
import json
import socket
import time

import pytest

from mockserver.serving.server import InspectorServer
from tests.reliability.support import connection, send

CAP = 2
LONG_POLL = b"GET /__inspector/wait?count=999999&timeout=300 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
STREAM = b"GET /__inspector/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
FREED_WITHIN = 2.0  # seconds: the promise is one (the journal's waits look every 0.5 s); margin for a busy machine


@pytest.fixture
def capped(store, certificate_dir):
    server = InspectorServer(store, port=0, https_port=0, certificate_dir=certificate_dir,
                             max_long_polls=CAP, max_event_streams=CAP)
    server.start()
    yield server
    server.stop()


def _hold(port: int, request: bytes) -> socket.socket:
    """A long poll or stream, sent; for a stream, its head read (so it is surely held)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(request)
    if request is STREAM:
        assert sock.recv(4096).startswith(b"HTTP/1.1 200 OK\r\n")
    return sock


def _answer(port: int, request: bytes) -> tuple[bytes, bytes]:
    """One more such request: the head and body of its answer when it is refused, else (b"held", b"")."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        sock.settimeout(1.0)
        data = b""
        try:
            while not (b"\r\n\r\n" in data and data.endswith(b"}")):
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
        except TimeoutError:
            if not data or data.startswith(b"HTTP/1.1 200"):
                return b"held", b""
        head, _, body = data.partition(b"\r\n\r\n")
        return head, body


def _when_admitted(port: int, request: bytes) -> float:
    """Seconds until a request of this kind is held again (not refused with a 503)."""
    started = time.monotonic()
    while time.monotonic() - started < 10:
        head, _ = _answer(port, request)
        if head == b"held":
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError("still refused after 10 s")


@pytest.mark.parametrize(("request_bytes", "kind"), [(LONG_POLL, "long poll"), (STREAM, "event stream")],
                         ids=["long polls", "event streams"])
def test_over_the_cap_is_a_503_with_retry_after_and_a_disconnect_frees_the_slot(capped, request_bytes, kind):
    port = capped.listening.port
    with contextlib.ExitStack() as held:
        first, *_ = [held.enter_context(_hold(port, request_bytes)) for _ in range(CAP)]
        head, body = _answer(port, request_bytes)
        lines = head.decode().split("\r\n")
        assert lines[0] == "HTTP/1.1 503 Service Unavailable"
        assert {"retry-after: 2", "content-type: application/json", "cache-control: no-store"} <= set(lines)
        assert json.loads(body) == {"error": f"too many {kind}s open at once (at most {CAP}); try again in 2 s"}
        # The other kind, refine's endpoints and the rest of the journal are not affected.
        other = STREAM if request_bytes is LONG_POLL else LONG_POLL
        assert _answer(port, other)[0] == b"held"
        conn = connection(port)
        try:
            assert send(conn, "beacon", "while-capped") == 200
            conn.request("GET", "/__inspector/health", headers={"Host": "127.0.0.1"})
            assert conn.getresponse().status == 200
        finally:
            conn.close()

        first.close()  # its client leaves: the slot is free again
        assert _when_admitted(port, request_bytes) < FREED_WITHIN


def test_stop_ends_long_polls_and_streams_first(store, certificate_dir):
    server = InspectorServer(store, port=0, https_port=0, certificate_dir=certificate_dir)
    server.start()
    port = server.listening.port
    polls = [_hold(port, LONG_POLL) for _ in range(3)]
    streams = [_hold(port, STREAM) for _ in range(3)]
    time.sleep(0.2)  # the long polls are waiting in the journal
    started = time.monotonic()
    server.stop()
    took = time.monotonic() - started
    for sock in polls:  # each wait ended: its answer is the journal's 408 ("not reached")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        sock.close()
        assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
        assert answer.endswith(b'\r\n\r\n{"reached": false, "count": 0, "wanted": 999999}')
    for sock in streams:  # each stream ended with its last chunk and the connection closed
        rest = b""
        while chunk := sock.recv(65536):
            rest += chunk
        sock.close()
        assert rest.endswith(b"0\r\n\r\n")
    assert took < 5, f"stop() took {took:.1f} s with long polls and streams open"
