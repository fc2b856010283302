"""What the mock puts on and accepts from the wire, shared by the live server and HAR import.

The live server answers a beacon with :data:`GIF` and refuses a request line
plus headers over :data:`MAX_HEADER_BYTES` (counted by :func:`head_size`). Its
HTTP layer (granian: hyper) refuses, before the app sees them, a request with
more than :data:`MAX_HEADER_LINES` headers or a request target over
:data:`MAX_TARGET_BYTES` (``tests/reliability/test_framing.py``). An imported HAR
entry is answered and refused the same way, so all of these live here rather
than in the server.
"""

from __future__ import annotations

from collections.abc import Iterable

# The smallest transparent 1x1 GIF: what an <img> beacon expects back.
GIF = bytes.fromhex("47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b")

MAX_HEADER_BYTES = 1024 * 1024  # beyond this the server answers 431 and records nothing; below it we record
MAX_HEADER_LINES = 100  # hyper's fixed limit: one more header line is answered 431 before the app runs
MAX_TARGET_BYTES = 65_534  # hyper's limit on the request target (path and query): one byte more is 414
_REQUEST_LINE_REST = len(b"  HTTP/1.1\r\n\r\n")  # the spaces around the target, the version, the blank line


def head_size(method: bytes, target: bytes, headers: Iterable[tuple[bytes, bytes]]) -> int:
    """Bytes of the request line and headers (``Name: value`` lines), as counted against MAX_HEADER_BYTES;
    the count stops once it is over."""
    size = len(method) + len(target) + _REQUEST_LINE_REST
    for name, value in headers:
        size += len(name) + len(value) + 4  # ": " and CRLF
        if size > MAX_HEADER_BYTES:
            break
    return size
