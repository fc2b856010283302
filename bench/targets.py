"""The servers a load run compares with the pipeline, each started as its own process.

``python3 -m bench.targets KIND --home DIR [--https] [--port N]`` prints ``LISTENING <port>``
and serves until SIGTERM or SIGINT. KIND is one of:

* ``naive``   – what one writes in five minutes: a Flask app answering the GIF on
  werkzeug's threaded development server (``app.run(threaded=True)``); no decoding,
  no storage.
* ``ceiling`` – the inspector's own stack answering the constant GIF with no work: granian's
  embedded server on sockets from :func:`~mockserver.serving.embedded.bind_listener`
  (:class:`~mockserver.serving.embedded.EmbeddedServers`, the server's header timeout and
  head buffer), the same :class:`~mockserver.serving.bridge.WsgiBridge` (refine's routes on the
  beacon pool, the same pools and caps), and Flask behind it. Flask routes every request
  here; the pipeline's :class:`~mockserver.serving.endpoints.BeaconFastPath` skips Flask for
  refine's routes, so the pipeline may come close to this, or pass it.
* ``asgi``    – granian's embedded server with the same settings and a bare ASGI callable
  answering the GIF: the HTTP(S) stack alone, without the bridge, its threads or Flask.
* ``cheroot`` – the former stack, kept as a reference: cheroot as the inspector ran it (its
  thread count, backlog and keep-alive settings, the standard library's TLS) with the same
  Flask app answering the GIF; issue 6's ceiling.

The full pipeline itself is the real ``python3 -m mockserver serve`` (see
``throughput.py``); it is not started from here.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

GIF = bytes.fromhex("47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b")
_HEADERS = {"Access-Control-Allow-Origin": "*", "Cache-Control": "no-store"}
KINDS = ("naive", "ceiling", "asgi", "cheroot")
_METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]


def gif_flask_app():
    """Flask answering every path with the GIF (``/cli`` with ``{"ok": true}``)."""
    from flask import Flask, Response, request

    app = Flask("bench")

    @app.route("/cli", methods=["POST"])
    def cli():
        request.get_data()
        return Response('{"ok": true}', mimetype="application/json", headers=_HEADERS)

    @app.route("/", defaults={"path": ""}, methods=_METHODS)
    @app.route("/<path:path>", methods=_METHODS)
    def gif(path: str):
        return Response(GIF, mimetype="image/gif", headers=_HEADERS)

    return app


# refine's endpoints (path, method): the pairs the server runs on its beacon pool (the bridge's
# ``fast_routes``); tests/test_bench.py checks they are the real app's.
REFINE_ROUTES = frozenset({("/telemetry", "GET"), ("/telemetry", "POST"), ("/cli", "POST"), ("/superplate", "POST"),
                           ("/send", "POST"), ("/projects", "POST"), ("/location", "GET")})
_ASGI_HEADERS = [(b"content-type", b"image/gif"), (b"content-length", str(len(GIF)).encode()),
                 *((k.lower().encode(), v.encode()) for k, v in _HEADERS.items())]


async def gif_asgi(scope: dict[str, Any], receive: Callable[[], Awaitable[dict[str, Any]]],
                   send: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
    """The GIF from a bare ASGI callable (reads and drops any body)."""
    if scope["type"] != "http":
        return
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            break
    await send({"type": "http.response.start", "status": 200, "headers": _ASGI_HEADERS})
    await send({"type": "http.response.body", "body": GIF, "more_body": False})


def inspector_bridge(app: Any) -> Any:
    """``app`` behind the bridge the inspector's server builds, with its pools and caps
    (:meth:`mockserver.serving.server.InspectorServer.start`)."""
    from mockserver.serving.bridge import WsgiBridge
    from mockserver.serving.journal import EVENT_STREAM, LONG_POLL, holding_kind
    from mockserver.serving.server import BEACON_THREADS, MAX_EVENT_STREAMS, MAX_LONG_POLLS, SPARE_THREADS

    limits = {LONG_POLL: MAX_LONG_POLLS, EVENT_STREAM: MAX_EVENT_STREAMS}
    return WsgiBridge(app, fast_routes=REFINE_ROUTES, holding=holding_kind, limits=limits,
                      beacon_threads=BEACON_THREADS, other_threads=sum(limits.values()) + SPARE_THREADS,
                      shutdown=threading.Event())


def _cert(home: Path) -> tuple[str, str]:
    from mockserver.serving.tls import ensure_certificate

    files = ensure_certificate(home / "tls")
    return str(files.cert), str(files.key)


def _serve_cheroot(app, https: bool, home: Path, port: int = 0) -> None:
    """cheroot as the inspector ran it (24 threads growing to 256, backlog 128, no keep-alive limit)."""
    from cheroot import wsgi
    from cheroot.ssl.builtin import BuiltinSSLAdapter

    server = wsgi.Server(("127.0.0.1", port), app, numthreads=24, max=256, server_name="telemetry-inspector",
                         request_queue_size=128)
    server.keep_alive_conn_limit = None  # type: ignore[assignment]  # cheroot reads None as no limit; its stub says int
    server.error_log = lambda *args, **kwargs: None  # type: ignore[method-assign]  # no line per dropped handshake
    if https:
        server.ssl_adapter = BuiltinSSLAdapter(*_cert(home))
    server.prepare()
    print(f"LISTENING {server.bind_addr[1]}", flush=True)
    threading.Thread(target=server.serve, daemon=True).start()
    _wait_for_signal()
    server.stop()


def _serve_granian(app: Any, https: bool, home: Path, port: int = 0) -> None:
    """granian's embedded server as the inspector runs it: our socket, its header timeout and head buffer."""
    from mockserver.serving.bridge import WsgiBridge
    from mockserver.serving.embedded import EmbeddedServers, Listener, bind_listener
    from mockserver.serving.server import HEADER_TIMEOUT, HYPER_HEAD_BUFFER

    sock = bind_listener("127.0.0.1", port)
    listener = Listener(sock, *map(Path, _cert(home))) if https else Listener(sock)
    servers = EmbeddedServers(app, [listener], header_timeout=HEADER_TIMEOUT, max_header_bytes=HYPER_HEAD_BUFFER)
    servers.start()
    print(f"LISTENING {listener.port}", flush=True)
    _wait_for_signal()
    if isinstance(app, WsgiBridge):
        servers.call(app.stop_requests)
    if servers.stop():
        if isinstance(app, WsgiBridge):
            app.close_pools()
        servers.close()
    sock.close()


def _serve_werkzeug(app, https: bool, home: Path, port: int = 0) -> None:
    import logging

    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log: it would only slow it down
    ssl_context = _cert(home) if https else None
    server = make_server("127.0.0.1", port, app, threaded=True, ssl_context=ssl_context)
    print(f"LISTENING {server.server_port}", flush=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _wait_for_signal()
    server.shutdown()


def _wait_for_signal() -> None:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    while not stop.wait(0.5):
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m bench.targets")
    parser.add_argument("kind", choices=KINDS)
    parser.add_argument("--home", type=Path, required=True, help="folder holding tls/ (certificate)")
    parser.add_argument("--https", action="store_true")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    if args.kind == "naive":
        _serve_werkzeug(gif_flask_app(), args.https, args.home, args.port)
    elif args.kind == "ceiling":
        _serve_granian(inspector_bridge(gif_flask_app()), args.https, args.home, args.port)
    elif args.kind == "asgi":
        _serve_granian(gif_asgi, args.https, args.home, args.port)
    else:
        _serve_cheroot(gif_flask_app(), args.https, args.home, args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
