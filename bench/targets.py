"""The servers a load run compares, each started as its own process.

``python3 -m bench.targets KIND --home DIR [--https]`` prints ``LISTENING <port>`` and
serves until killed. KIND is one of:

* ``naive``   – what one writes in five minutes: a Flask app answering the GIF on
  werkzeug's threaded development server (``app.run(threaded=True)``); no decoding,
  no storage.
* ``ceiling`` – the inspector's former stack (cheroot, its thread count, backlog and
  keep-alive settings, the standard library's TLS, the same Flask) answering the
  constant GIF with no work at all: what the pipeline was measured against before it
  moved to granian (the new stack's ceiling comes with the benchmark's update).
* ``wsgi``    – cheroot with a bare WSGI function answering the GIF: the ceiling of
  that HTTP server alone, without Flask (shown for reference).

The full pipeline itself is the real ``python3 -m mockserver serve`` (see
``throughput.py``); it is not started from here.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

GIF = bytes.fromhex("47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b")
_HEADERS = {"Access-Control-Allow-Origin": "*", "Cache-Control": "no-store"}
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


def gif_wsgi(environ, start_response):
    """The GIF from a bare WSGI callable (reads and drops any body)."""
    length = environ.get("CONTENT_LENGTH")
    if length:
        environ["wsgi.input"].read(int(length))
    start_response("200 OK", [("Content-Type", "image/gif"), ("Content-Length", str(len(GIF))),
                              *_HEADERS.items()])
    return [GIF]


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
    if https:
        server.ssl_adapter = BuiltinSSLAdapter(*_cert(home))
    server.prepare()
    print(f"LISTENING {server.bind_addr[1]}", flush=True)
    threading.Thread(target=server.serve, daemon=True).start()
    _wait_for_signal()
    server.stop()


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
    parser.add_argument("kind", choices=("naive", "ceiling", "wsgi"))
    parser.add_argument("--home", type=Path, required=True, help="folder holding tls/ (certificate)")
    parser.add_argument("--https", action="store_true")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    if args.kind == "naive":
        _serve_werkzeug(gif_flask_app(), args.https, args.home, args.port)
    elif args.kind == "ceiling":
        _serve_cheroot(gif_flask_app(), args.https, args.home, args.port)
    else:
        _serve_cheroot(gif_wsgi, args.https, args.home, args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
