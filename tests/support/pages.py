"""Pages on real sockets for browser tests: a small site on any address, and this machine's own
non-loopback address (a host that is "elsewhere" for egress, yet answers here)."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import pytest

from tests.support.helpers import own_address


def outward_address() -> str:
    """This machine's own non-loopback IPv4 address (:func:`~tests.support.helpers.own_address`);
    skips the test when the machine has none."""
    found = own_address()
    if found is None:
        pytest.skip("this machine has no non-loopback address to stand in for another host")
    return found


class _Pages(http.server.BaseHTTPRequestHandler):
    pages: dict[str, tuple[str, bytes]] = {}
    seen: list[str] | None = None

    def do_GET(self) -> None:
        if self.seen is not None:
            self.seen.append(self.path)
        content_type, body = self.pages.get(self.path.split("?")[0], ("text/plain", b"ok"))
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


def serve_pages(host: str, pages: dict[str, tuple[str, bytes]], seen: list[str] | None = None) -> Iterator[str]:
    """Serve ``pages`` (path → content type, body; anything else is ``ok``) on ``host``; yields the base URL.

    ``seen`` gets every path asked for, query included.
    """
    handler = type("Pages", (_Pages,), {"pages": pages, "seen": seen})
    server = http.server.ThreadingHTTPServer((host, 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://{host}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
