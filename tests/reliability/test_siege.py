"""The siege of issue 15: 300 long polls, 300 event streams and 300 clients trickling a head, held at once.

Real sockets against the real server (HTTP and HTTPS listeners, default caps, a 3 s header
deadline to keep the run short), both ends in this process. While they are all open a beacon is answered within 2 s
over HTTP and over HTTPS and recorded with the time it arrived; the long polls and streams
beyond their caps get a 503 with ``Retry-After``; one that disconnects frees its slot within
a second; every trickler is closed at the deadline, with no answer (granian cannot send a
408: see the README's reliability notes); health answers within 2 s once they all left.
"""

from __future__ import annotations

import contextlib
import resource
import selectors
import socket
import time

import pytest

from mockserver.core.clock import parse_iso
from mockserver.serving.server import MAX_EVENT_STREAMS, MAX_LONG_POLLS, InspectorServer
from tests.reliability.support import connection, send

EACH = 300
DEADLINE = 3.0  # the header deadline of this run (seconds)
WITHIN = 2.0  # seconds: the bound for a beacon under siege and for health after it
LONG_POLL = b"GET /__inspector/wait?count=999999&timeout=300 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
STREAM = b"GET /__inspector/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
# a head begun and never finished
TRICKLE = b"GET /telemetry?payload=eyJ2ZXJzaW9uIjoiNC41OC4wIn0= HTTP/1.1\r\nHost: telemetry.refine.dev\r\nUser-Agent: M"


@pytest.fixture
def enough_descriptors():
    """Both ends of 900 connections live in this process: raise the soft limit on open files if needed."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 4 * EACH * 2 + 512
    if hard != resource.RLIM_INFINITY and hard < wanted:
        pytest.skip(f"needs {wanted} open files, the hard limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def _open_all(port: int, request: bytes, count: int, stack: contextlib.ExitStack) -> list[socket.socket]:
    socks = []
    for _ in range(count):
        sock = stack.enter_context(socket.create_connection(("127.0.0.1", port), timeout=10))
        sock.sendall(request)
        socks.append(sock)
    return socks


def _first_answers(socks: list[socket.socket], settle: float) -> dict[socket.socket, bytes]:
    """What each socket received within ``settle`` seconds of quiet (b"" for nothing yet)."""
    got = dict.fromkeys(socks, b"")
    with selectors.DefaultSelector() as selector:
        for sock in socks:
            selector.register(sock, selectors.EVENT_READ, sock)
        while events := selector.select(settle):
            for key, _ in events:
                sock = key.data
                data = sock.recv(65536)
                got[sock] += data
                if not data or b"\r\n\r\n" in got[sock]:
                    selector.unregister(sock)
    return got


def _beacon_within(port: int, scheme: str, marker: str) -> float:
    conn = connection(port, scheme, timeout=10)
    try:
        started = time.monotonic()
        assert send(conn, "beacon", marker) == 200
        return time.monotonic() - started
    finally:
        conn.close()


def test_a_beacon_is_answered_under_siege_and_health_after_it(store, certificate_dir, enough_descriptors):
    server = InspectorServer(store, port=0, https_port=0, certificate_dir=certificate_dir, header_timeout=DEADLINE)
    listening = server.start()
    port = listening.port
    try:
        with contextlib.ExitStack() as stack:
            tricklers = _open_all(port, TRICKLE, EACH, stack)
            trickled_from = time.monotonic()
            polls = _open_all(port, LONG_POLL, EACH, stack)
            streams = _open_all(port, STREAM, EACH, stack)
            answers = _first_answers(polls + streams, settle=1.0)

            for socks, cap in ((polls, MAX_LONG_POLLS), (streams, MAX_EVENT_STREAMS)):
                refused = [s for s in socks if answers[s].startswith(b"HTTP/1.1 503 Service Unavailable\r\n")]
                assert len(refused) == EACH - cap
                assert all(b"\r\nretry-after: 2\r\n" in answers[s] for s in refused)
            held_streams = [s for s in streams if answers[s].startswith(b"HTTP/1.1 200 OK\r\n")]
            assert len(held_streams) == MAX_EVENT_STREAMS
            assert len([s for s in polls if not answers[s]]) == MAX_LONG_POLLS  # held: nothing until a record

            for scheme, scheme_port in (("http", port), ("https", listening.https_port)):
                sent_at = time.time()
                assert _beacon_within(scheme_port, scheme, f"siege-{scheme}") < WITHIN
                [record] = [b for b in store.query() if b.payload and b.payload.get("projectId") == f"siege-{scheme}"]
                assert abs(parse_iso(record.received_at).timestamp() - sent_at) < WITHIN  # when it came

            held_poll = next(s for s in polls if not answers[s])
            held_poll.close()  # it leaves: its slot is free within a second
            left_at = time.monotonic()
            while True:
                tried_at = time.monotonic()
                with socket.create_connection(("127.0.0.1", port), timeout=10) as again:
                    again.sendall(LONG_POLL)
                    if not _first_answers([again], settle=0.3)[again]:
                        break  # held, not refused
                assert tried_at - left_at < 10, "the slot was not freed"
            assert tried_at - left_at < 1.0

            for sock in tricklers:  # closed at the deadline, nothing sent
                sock.settimeout(DEADLINE + 10)
                assert sock.recv(65536) == b""
            assert time.monotonic() - trickled_from < DEADLINE + 10
        # everyone left
        conn = connection(port, timeout=10)
        try:
            started = time.monotonic()
            conn.request("GET", "/__inspector/health", headers={"Host": "127.0.0.1"})
            assert conn.getresponse().status == 200
            assert time.monotonic() - started < WITHIN
        finally:
            conn.close()
    finally:
        server.stop()
