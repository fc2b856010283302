"""A scripted WebSocket peer on loopback for the DevTools and WebDriver BiDi client tests: websockets'
own sync server, running a handler the test writes to answer as a browser would (or would not)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from websockets.http11 import Request, Response
from websockets.sync.server import ServerConnection, serve

Handler = Callable[[ServerConnection], None]
ProcessRequest = Callable[[ServerConnection, Request], Response | None]


@contextmanager
def websocket_servers(path: str) -> Iterator[Callable[..., str]]:
    """``start(handler, process_request=None)`` runs a server on a free loopback port and returns its
    ``ws://127.0.0.1:PORT<path>`` URL; every server started is shut down when the block ends."""
    servers = []

    def start(handler: Handler, process_request: ProcessRequest | None = None) -> str:
        server = serve(handler, "127.0.0.1", 0, process_request=process_request)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"ws://127.0.0.1:{server.socket.getsockname()[1]}{path}"

    try:
        yield start
    finally:
        for server in servers:
            server.shutdown()
