"""A request whose body framing is broken is recorded as invalid and answered 400, never 5xx.

Each case is sent as raw bytes over a real socket (no HTTP client sends them) to
the real server, over HTTP and HTTPS, on refine's endpoints (the fast path) and
on an unknown path (Flask's recorded catch-all). While the broken request is
open, a good beacon on another connection must be answered and recorded.
"""

from __future__ import annotations

import socket
import ssl

import pytest

from tests.reliability.support import connection, send

HEAD = "POST {path} HTTP/1.1\r\nHost: telemetry.refine.dev\r\nContent-Type: application/json\r\n"
CHUNKED = "Transfer-Encoding: chunked\r\n"

# name -> (extra headers and body, the problem recorded, the body kept)
CASES = {
    "bad chunk size": (CHUNKED + "\r\n3\r\n{\"a\r\nzz\r\n", "invalid chunk size 'zz'", '{"a'),
    "negative chunk size": (CHUNKED + "\r\n-1\r\n", "invalid chunk size '-1'", None),
    "huge chunk size": (CHUNKED + "\r\n1" + "0" * 16 + "\r\nabc",
                        "invalid chunk size '1" + "0" * 16 + "' (over 64 bits)", None),
    "chunk longer than its size": (CHUNKED + "\r\n2\r\n{}abc\r\n0\r\n\r\n",
                                   "a chunk is longer than its size (no CRLF after it)", "{}"),
    "no last chunk, half-closed": (CHUNKED + "\r\n2\r\n{}\r\n", "the connection closed before the last chunk", "{}"),
    "closed inside a chunk": (CHUNKED + "\r\n9\r\n{\"a\"", "the connection closed inside a chunk", '{"a"'),
    "negative Content-Length": ("Content-Length: -5\r\n\r\n{}", "invalid Content-Length '-5'", None),
    "non-numeric Content-Length": ("Content-Length: abc\r\n\r\n{}", "invalid Content-Length 'abc'", None),
    "two Content-Lengths": ("Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
                            "invalid Content-Length '2, 3'", None),
    "Content-Length over what was sent": ("Content-Length: 100\r\n\r\n{\"a\":",
                                          "Content-Length 100 but the connection closed after 5 bytes", '{"a":'),
    "Content-Length and chunked": ("Content-Length: 2\r\n" + CHUNKED + "\r\n2\r\n{}\r\n0\r\n\r\n",
                                   "both Content-Length and Transfer-Encoding: chunked", "{}"),
    "unsupported Transfer-Encoding": ("Transfer-Encoding: gzip\r\n\r\n{}",
                                      "unsupported Transfer-Encoding 'gzip' (only chunked is read)", None),
}
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
    answer = b""
    while chunk := sock.recv(65536):
        answer += chunk
    return answer


@pytest.mark.parametrize("scheme", ["http", "https"])
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("case", list(CASES))
def test_broken_framing_is_recorded_and_answered_400(live_server, scheme, path, case):
    listening = live_server.listening
    port = listening.port if scheme == "http" else listening.https_port
    rest, problem, kept = CASES[case]
    broken = _open(port, scheme)
    try:
        broken.sendall((HEAD.format(path=path) + rest).encode("latin-1"))
        good = connection(port, scheme)
        try:
            assert send(good, "beacon", f"good-{scheme}") == 200
        finally:
            good.close()
        answer = _half_close_and_read(broken)
    finally:
        broken.close()

    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.split(b"\r\n")[0] == b"HTTP/1.1 400 BAD REQUEST"
    assert body.decode() == f"malformed request body: {problem}\n"
    records = live_server.store.query()
    assert len(records) == 2
    [good_record] = [r for r in records if r.status == "ok"]
    assert good_record.payload["projectId"] == f"good-{scheme}"
    [record] = [r for r in records if r.status == "invalid"]
    assert (record.request.path, record.request.scheme) == (path, scheme)
    assert record.problems == [f"malformed request body: {problem}"]
    assert record.request.body == kept


def test_a_good_chunked_body_is_still_read_and_the_connection_kept(live_server):
    with _open(live_server.listening.port, "http") as sock:
        for marker in ("first", "second"):  # one keep-alive connection, two chunked requests
            body = f'{{"command": "dev", "projectId": "{marker}"}}'
            half = len(body) // 2
            sock.sendall((HEAD.format(path="/cli") + CHUNKED + f"\r\n{half:x};ext=1\r\n{body[:half]}\r\n"
                          f"{len(body) - half:X}\r\n{body[half:]}\r\n0\r\nX-Trailer: 1\r\n\r\n").encode())
            answer = b""
            while not answer.endswith(b'{"ok": true}'):
                answer += sock.recv(65536)
            assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    assert [r.payload["projectId"] for r in live_server.store.query()] == ["first", "second"]


def test_journal_api_is_not_recorded_but_never_5xx(live_server):
    with _open(live_server.listening.port, "http") as sock:
        sock.sendall(b"GET /__inspector/count HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: -5\r\n\r\n")
        answer = _half_close_and_read(sock)
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    assert live_server.store.query() == []

