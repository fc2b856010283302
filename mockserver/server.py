"""Run the mock over HTTP and HTTPS in background threads (cheroot), stop cleanly.

cheroot serves both listeners from one stack: measured here it is about
twice werkzeug's threaded dev server, and unlike waitress it speaks TLS.
Sockets are bound in :meth:`InspectorServer.start` on the caller's thread,
so "port in use" is an immediate, one-line :class:`ServerError`.
"""

from __future__ import annotations

import errno
import logging
import re
import threading
from dataclasses import dataclass
from pathlib import Path

from cheroot import wsgi
from cheroot.ssl.builtin import BuiltinSSLAdapter

from .app import create_app
from .config import DEFAULT_HOST, is_loopback, tls_dir
from .routing import chromium_routing_flags
from .store import BeaconStore
from .tls import CertificateFiles, ensure_certificate

log = logging.getLogger(__name__)

THREADS = 24  # long polls and event streams each hold one while open
MAX_HEADER_BYTES = 1024 * 1024  # beyond this cheroot answers 414 itself; below it we record


class ServerError(Exception):
    """The server cannot start (port in use, no permission); message is one line."""


@dataclass(frozen=True)
class Listening:
    """Where the mock is reachable once started."""

    host: str
    port: int
    https_port: int | None
    spki_pin: str | None

    @property
    def http_url(self) -> str:
        """Base URL of the plain HTTP listener."""
        return f"http://{_url_host(self.host)}:{self.port}"

    @property
    def https_url(self) -> str | None:
        """Base URL of the HTTPS listener, if any."""
        return f"https://{_url_host(self.host)}:{self.https_port}" if self.https_port else None


def _url_host(host: str) -> str:
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def _quiet_error_log(msg: str = "", level: int = 20, traceback: bool = False) -> None:
    # TLS handshakes refused by clients and dropped keep-alives are normal here.
    log.debug("cheroot: %s", msg)


class InspectorServer:
    """The mock's HTTP and HTTPS listeners over one store."""

    def __init__(self, store: BeaconStore, *, host: str = DEFAULT_HOST, port: int = 0,
                 https_port: int | None = 0, trust_proxy: bool = False,
                 certificate_dir: Path | None = None, threads: int = THREADS) -> None:
        self.store = store
        self.host = host
        self.port = port
        self.https_port = https_port
        self.app = create_app(store, trust_proxy=trust_proxy)
        self.certificate_dir = certificate_dir
        self.threads = threads
        self.certificate: CertificateFiles | None = None
        self._servers: list[wsgi.Server] = []
        self._threads: list[threading.Thread] = []
        self.listening: Listening | None = None

    @property
    def loopback_only(self) -> bool:
        """True unless the user asked to listen beyond this machine."""
        return is_loopback(self.host)

    def _make(self, port: int, scheme: str) -> wsgi.Server:
        server = wsgi.Server((self.host, port), self.app, numthreads=self.threads,
                             server_name="telemetry-inspector")
        server.max_request_header_size = MAX_HEADER_BYTES
        server.error_log = _quiet_error_log
        if scheme == "https":
            assert self.certificate is not None
            server.ssl_adapter = BuiltinSSLAdapter(str(self.certificate.cert), str(self.certificate.key))
        try:
            server.prepare()
        except OSError as exc:
            server.stop()
            raise ServerError(_bind_error(self.host, port, scheme, exc)) from exc
        return server

    def start(self) -> Listening:
        """Bind both listeners (raising ServerError on failure) and serve in the background."""
        if self.listening is not None:
            return self.listening
        self.app.extensions["shutdown"].clear()
        try:
            http = self._make(self.port, "http")
            self._servers.append(http)
            https_port = None
            if self.https_port is not None:
                self.certificate = ensure_certificate(self.certificate_dir or tls_dir())
                https = self._make(self.https_port, "https")
                self._servers.append(https)
                https_port = https.bind_addr[1]
        except BaseException:
            self.stop()
            raise
        for server in self._servers:
            thread = threading.Thread(target=server.serve, name=f"mock-{server.bind_addr[1]}", daemon=True)
            thread.start()
            self._threads.append(thread)
        self.listening = Listening(self.host, http.bind_addr[1], https_port,
                                   self.certificate.spki_pin if self.certificate else None)
        return self.listening

    def chromium_flags(self) -> list[str]:
        """Flags routing a Chromium-family browser's telemetry to this server."""
        if not self.listening or not self.listening.https_port or not self.listening.spki_pin:
            raise ServerError("routing needs the HTTPS listener (started without --no-https)")
        return chromium_routing_flags(self.listening.https_port, self.listening.spki_pin,
                                      _url_host(self.host).strip("[]"))

    def stop(self) -> None:
        """Stop both listeners and wait for their threads."""
        self.app.extensions["shutdown"].set()
        # Both listeners stop side by side: each takes up to a poll interval.
        stoppers = [threading.Thread(target=_stop_quietly, args=(server,)) for server in self._servers]
        for stopper in stoppers:
            stopper.start()
        for stopper in stoppers:
            stopper.join(timeout=15)
        for thread in self._threads:
            thread.join(timeout=10)
        self._servers, self._threads = [], []
        self.listening = None

    def __enter__(self) -> InspectorServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _stop_quietly(server: wsgi.Server) -> None:
    try:
        server.stop()
    except Exception:  # stopping must always finish
        log.exception("stopping the server failed")


def _bind_error(host: str, port: int, scheme: str, exc: OSError) -> str:
    what = "HTTPS" if scheme == "https" else "HTTP"
    flag = "--https-port" if scheme == "https" else "--port"
    code = exc.errno
    if code is None:  # cheroot wraps the socket error in a plain OSError message
        found = re.search(r"\[Errno (\d+)\]", str(exc))
        code = int(found.group(1)) if found else None
    if code == errno.EADDRINUSE:
        return f"{what} port {port} on {host} is already in use (pick another with {flag}, or 0 for a free one)"
    if code == errno.EACCES:
        return f"no permission to listen on {host}:{port} ({what}); ports below 1024 need privileges"
    if code == errno.EADDRNOTAVAIL:
        return f"cannot listen on {host}: not an address of this machine"
    return f"cannot listen on {host}:{port} ({what}): {' '.join(str(exc).split())}"
