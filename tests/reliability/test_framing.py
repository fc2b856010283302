"""Broken framing and malformed requests: exactly what the client gets and what is recorded, never a 5xx.

The HTTP server (granian: hyper) decides framing before the app runs, and reports the
requests it refuses nowhere the app can see (no log record, no callback: checked with
granian's loggers at DEBUG and its access log). So:

* what hyper refuses (an invalid or repeated Content-Length, a Transfer-Encoding other than
  chunked, more than 100 headers, a head over the cap, a request target over 65,534 bytes, a
  raw non-ASCII byte in it, a broken request line) gets hyper's own bare 4xx and leaves **no
  record**;
* a body that stops before its end reaches the app as far as it arrived and is recorded as
  invalid, answered 400 with the problem: for a chunked body hyper does not say why it ended
  (a malformed chunk, or the connection closed), for a Content-Length body it can only be the
  connection;
* Content-Length together with chunked: hyper drops the Content-Length, so the request is read
  as chunked and recorded as it reads then.

Each case is sent as raw bytes over a real socket (no HTTP client sends them) to the real
server, over HTTP and HTTPS, on refine's endpoints (the fast path) and on an unknown path
(Flask's recorded catch-all). While the broken request is open, a good beacon on another
connection must be answered and recorded, and nothing else may appear in the journal.
"""

from __future__ import annotations

import re
import socket
import ssl

import pytest

from mockserver.core.wire import MAX_HEADER_BYTES
from mockserver.serving.server import HYPER_HEAD_BUFFER
from tests.reliability.support import connection, send

HEAD = "POST {path} HTTP/1.1\r\nHost: telemetry.refine.dev\r\nContent-Type: application/json\r\n"
CHUNKED = "Transfer-Encoding: chunked\r\n"
CHUNKED_ENDED_EARLY = ("the body ended before its last chunk (a malformed chunk, or the connection closed; "
                       "the HTTP server does not say which)")

# name -> (extra headers and body, the problem recorded, the body kept); the client half-closes after it
RECORDED = {
    "bad chunk size": (CHUNKED + "\r\n3\r\n{\"a\r\nzz\r\n", CHUNKED_ENDED_EARLY, '{"a'),
    "negative chunk size": (CHUNKED + "\r\n-1\r\n", CHUNKED_ENDED_EARLY, None),
    "huge chunk size": (CHUNKED + "\r\n1" + "0" * 16 + "\r\nabc", CHUNKED_ENDED_EARLY, None),
    "chunk longer than its size": (CHUNKED + "\r\n2\r\n{}abc\r\n0\r\n\r\n", CHUNKED_ENDED_EARLY, "{}"),
    "no last chunk, half-closed": (CHUNKED + "\r\n2\r\n{}\r\n", CHUNKED_ENDED_EARLY, "{}"),
    "closed inside a chunk": (CHUNKED + "\r\n9\r\n{\"a\"", CHUNKED_ENDED_EARLY, '{"a"'),
    "Content-Length over what was sent": ("Content-Length: 100\r\n\r\n{\"a\":",
                                          "Content-Length 100 but the connection closed after 5 bytes", '{"a":'),
}
# name -> the whole request: refused by hyper before the app, with a bare answer and no record
REFUSED = {
    "negative Content-Length": (HEAD + "Content-Length: -5\r\n\r\n{}", 400),
    "non-numeric Content-Length": (HEAD + "Content-Length: abc\r\n\r\n{}", 400),
    "two Content-Lengths": (HEAD + "Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}", 400),
    "unsupported Transfer-Encoding": (HEAD + "Transfer-Encoding: gzip\r\n\r\n{}", 400),
    "101 headers": (HEAD + "".join(f"X-H{n}: 1\r\n" for n in range(98)) + "Content-Length: 2\r\n\r\n{}", 431),
    # hyper's limit on a head is loose (its read buffer may grow to about twice its size): well over it
    "a head over hyper's limit": (HEAD + "X-Pad: " + "p" * (2 * HYPER_HEAD_BUFFER) + "\r\nContent-Length: 2\r\n\r\n{}",
                                  431),
    "a target of 65,535 bytes": ("GET {path}?payload={long_query} HTTP/1.1\r\nHost: x\r\n\r\n", 414),
    "a raw non-ASCII byte in the target": ("GET {path}?payload=caf\xe9 HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    "a broken request line": ("GET {path}\r\nHost: x\r\n\r\n", 400),
}
REASONS = {400: "Bad Request", 414: "URI Too Long", 431: "Request Header Fields Too Large"}
PATHS = ["/telemetry", "/cli", "/projects", "/no-such-endpoint"]


def _open(port: int, scheme: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=20)
    if scheme == "https":
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        sock = context.wrap_socket(sock, server_hostname="telemetry.refine.dev")
    return sock


def _half_close_and_read(sock: socket.socket) -> bytes:
    # socket.socket's own shutdown: SSLSocket.shutdown would drop TLS and the answer with it.
    socket.socket.shutdown(sock, socket.SHUT_WR)
    return _read_to_close(sock)


def _read_to_close(sock: socket.socket) -> bytes:
    answer = b""
    while chunk := sock.recv(65536):
        answer += chunk
    return answer


def _read_answer(sock: socket.socket) -> tuple[bytes, bytes]:
    """One answer on a connection kept open: its head and its body (by its Content-Length)."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    found = re.search(rb"\r\ncontent-length: (\d+)", head, re.IGNORECASE)
    assert found, head
    length = int(found.group(1))
    while len(body) < length:
        body += sock.recv(65536)
    return head, body


def _while_a_good_beacon_is_served(port: int, scheme: str, data: bytes, read: str = "half-close") -> bytes:
    """Send ``data`` on one connection, a good beacon on another meanwhile; what the first got back:
    after a half-close, until the server closes, or one answer (``read``)."""
    broken = _open(port, scheme)
    try:
        try:
            broken.sendall(data)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLEOFError):
            pass  # a head far over the limit: the server may answer and close before it is all sent
        good = connection(port, scheme)
        try:
            assert send(good, "beacon", f"good-{scheme}") == 200
        finally:
            good.close()
        if read == "half-close":
            return _half_close_and_read(broken)
        return _read_to_close(broken) if read == "to close" else b"\r\n\r\n".join(_read_answer(broken))
    finally:
        broken.close()


def _the_good_one_and(store, scheme: str) -> list:
    """The records besides the good beacon (which must be there, once)."""
    records = store.query()
    [good_record] = [r for r in records if r.payload and r.payload.get("projectId") == f"good-{scheme}"]
    return [r for r in records if r is not good_record]


@pytest.mark.parametrize("scheme", ["http", "https"])
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("case", list(RECORDED))
def test_a_body_that_stops_early_is_recorded_and_answered_400(live_server, scheme, path, case):
    listening = live_server.listening
    port = listening.port if scheme == "http" else listening.https_port
    rest, problem, kept = RECORDED[case]
    answer = _while_a_good_beacon_is_served(port, scheme, (HEAD.format(path=path) + rest).encode("latin-1"))

    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.split(b"\r\n")[0] == b"HTTP/1.1 400 Bad Request"
    assert body.decode() == f"malformed request body: {problem}\n"
    [record] = _the_good_one_and(live_server.store, scheme)
    assert (record.status, record.request.path, record.request.scheme) == ("invalid", path, scheme)
    assert record.problems == [f"malformed request body: {problem}"]
    assert record.request.body == kept


@pytest.mark.parametrize("scheme", ["http", "https"])
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("case", list(REFUSED))
def test_what_the_http_server_refuses_gets_its_bare_answer_and_no_record(live_server, scheme, path, case):
    listening = live_server.listening
    port = listening.port if scheme == "http" else listening.https_port
    request, status = REFUSED[case]
    long_query = "A" * (65535 - len(f"{path}?payload="))
    request = request.replace("{path}", path).replace("{long_query}", long_query)
    answer = _while_a_good_beacon_is_served(port, scheme, request.encode("latin-1"), read="to close")

    assert re.fullmatch(rf"HTTP/1\.1 {status} {REASONS[status]}\r\nconnection: close\r\ncontent-length: 0\r\n"
                        r"date: [A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT\r\n\r\n", answer.decode())
    assert _the_good_one_and(live_server.store, scheme) == [], "refused before the app: nothing is recorded"


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_a_head_over_the_cap_is_answered_431_by_the_inspector_and_not_recorded(live_server, scheme):
    """hyper's own limit is loose (its buffer is set above the cap), so the cap is the inspector's:
    counted as HAR import counts it (core.wire.head_size), exact to the byte."""
    listening = live_server.listening
    port = listening.port if scheme == "http" else listening.https_port
    head = "GET /telemetry HTTP/1.1\r\nHost: telemetry.refine.dev\r\nX-Pad: \r\n\r\n"
    pad = "p" * (MAX_HEADER_BYTES - len(head))
    with _open(port, scheme) as sock:  # exactly at the cap: recorded (a beacon without its payload)
        sock.sendall(head.replace("X-Pad: ", "X-Pad: " + pad).encode())
        assert _read_answer(sock)[0].startswith(b"HTTP/1.1 400 Bad Request\r\n")
    answer = _while_a_good_beacon_is_served(port, scheme, head.replace("X-Pad: ", "X-Pad: p" + pad).encode(),
                                            read="to close")
    assert answer.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")
    assert b"\r\nconnection: close\r\n" in answer
    assert answer.endswith(b"\r\n\r\nthe request line and headers are over 1024 KiB\n")
    [record] = _the_good_one_and(live_server.store, scheme)
    assert record.request.headers["X-Pad"] == pad


ANSWERED = {"/telemetry": (400, "invalid"), "/cli": (200, "ok"), "/projects": (200, "ok"),
            "/no-such-endpoint": (404, "invalid")}


@pytest.mark.parametrize("scheme", ["http", "https"])
@pytest.mark.parametrize("path", PATHS)
def test_content_length_with_chunked_is_read_as_chunked(live_server, scheme, path):
    """hyper drops the Content-Length (RFC 9112 6.3): the body is read by its chunks, and the request
    recorded and answered as if it had come without one."""
    listening = live_server.listening
    port = listening.port if scheme == "http" else listening.https_port
    request = HEAD.format(path=path) + "Content-Length: 2\r\n" + CHUNKED + "\r\n2\r\n{}\r\n0\r\n\r\n"
    answer = _while_a_good_beacon_is_served(port, scheme, request.encode(), read="one answer")

    status, kind = ANSWERED[path]
    assert answer.split(b"\r\n")[0].startswith(f"HTTP/1.1 {status} ".encode())
    [record] = _the_good_one_and(live_server.store, scheme)
    assert (record.status, record.request.body) == (kind, "{}")
    assert record.request.headers["Transfer-Encoding"] == "chunked" and "Content-Length" not in record.request.headers
    assert not [p for p in record.problems if p.startswith("malformed request body")]


def test_a_good_chunked_body_is_still_read_and_the_connection_kept(live_server):
    with _open(live_server.listening.port, "http") as sock:
        for marker in ("first", "second"):  # one keep-alive connection, two chunked requests
            body = f'{{"command": "dev", "projectId": "{marker}"}}'
            half = len(body) // 2
            sock.sendall((HEAD.format(path="/cli") + CHUNKED + f"\r\n{half:x};ext=1\r\n{body[:half]}\r\n"
                          f"{len(body) - half:X}\r\n{body[half:]}\r\n0\r\nX-Trailer: 1\r\n\r\n").encode())
            head, answer = _read_answer(sock)
            assert head.startswith(b"HTTP/1.1 200 OK\r\n") and answer == b'{"ok": true}'
    assert [r.payload["projectId"] for r in live_server.store.query()] == ["first", "second"]


def test_a_complete_request_then_a_half_close_gets_no_answer(live_server):
    """hyper reads the end of input as the client gone (granian offers no half-close setting): the answer
    is not sent. Whether the request was handed to the app before hyper saw the end depends on timing, so
    it is recorded at most once, as sent. (Browsers and HTTP libraries do not half-close before the answer.)"""
    body = '{"command": "dev", "projectId": "half-closed"}'
    with _open(live_server.listening.port, "http") as sock:
        sock.sendall((HEAD.format(path="/cli") + f"Content-Length: {len(body)}\r\n\r\n{body}").encode())
        assert _half_close_and_read(sock) == b""
    assert [r.payload["projectId"] for r in live_server.store.query()] in ([], ["half-closed"])


def test_journal_api_is_not_recorded_but_never_5xx(live_server):
    with _open(live_server.listening.port, "http") as sock:  # refused before the app, as above
        sock.sendall(b"GET /__inspector/count HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: -5\r\n\r\n")
        assert _half_close_and_read(sock).startswith(b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\n")
    with _open(live_server.listening.port, "http") as sock:  # a broken body the journal never reads
        sock.sendall(b"GET /__inspector/count HTTP/1.1\r\nHost: 127.0.0.1\r\n" + CHUNKED.encode() + b"\r\nzz\r\n")
        assert _half_close_and_read(sock).startswith(b"HTTP/1.1 200 OK\r\n")
    assert live_server.store.query() == []
