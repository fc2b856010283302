"""Pages on real sockets for browser tests: a small site on any address, and this machine's own
non-loopback address (a host that is "elsewhere" for egress, yet answers here)."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from tests.support.helpers import own_address


def outward_address() -> str:
    """This machine's own non-loopback IPv4 address (:func:`~tests.support.helpers.own_address`);
    skips the test when the machine has none."""
    found = own_address()
    if found is None:
        pytest.skip("this machine has no non-loopback address to stand in for another host")
    return found


Page = tuple[str, bytes]  # content type, body


def _ok(_path: str) -> Page:
    return "text/plain", b"ok"


class _Pages(http.server.BaseHTTPRequestHandler):
    pages: dict[str, Page] = {}
    seen: list[str] | None = None
    default: Callable[[str], Page] = staticmethod(_ok)

    def do_GET(self) -> None:
        if self.seen is not None:
            self.seen.append(self.path)
        page = self.pages.get(self.path.split("?")[0])
        content_type, body = page if page is not None else self.default(self.path)
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


def serve_pages(host: str, pages: dict[str, Page], seen: list[str] | None = None, *,
                default: Callable[[str], Page] = _ok) -> Iterator[str]:
    """Serve ``pages`` (path → content type, body; any other path gets ``default(path)``, ``ok``
    unless given) on ``host``; yields the base URL.

    ``seen`` gets every path asked for, query included.
    """
    handler = type("Pages", (_Pages,), {"pages": pages, "seen": seen, "default": staticmethod(default)})
    server = http.server.ThreadingHTTPServer((host, 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://{host}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def answering_server(address: str) -> Iterator[int]:
    """A real HTTP server on ``address`` (a free port) while the block runs, answering ``GET /any/path``
    with 200 and ``answer from /any/path``; yields its port."""
    def answer(path: str) -> Page:
        return "text/plain", f"answer from {path}".encode()

    with contextmanager(serve_pages)(address, {}, default=answer) as base:
        yield int(base.rsplit(":", 1)[1])
