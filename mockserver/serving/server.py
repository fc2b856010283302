"""Run the mock over HTTP and HTTPS in this process (granian's embedded server), stop cleanly.

granian (native code: hyper, tokio, rustls) parses HTTP/1.1 and terminates TLS on one
event loop in a background thread (:mod:`mockserver.serving.embedded`); the Flask app
runs on our own threads behind :mod:`mockserver.serving.bridge`. Sockets are bound in
:meth:`InspectorServer.start` on the caller's thread, so "port in use" is an immediate,
one-line :class:`ServerError`.
"""

from __future__ import annotations

import errno
import logging
import socket
import threading
from dataclasses import dataclass
from pathlib import Path

from mockserver.core.config import DEFAULT_HOST, is_loopback, tls_dir
from mockserver.core.enrich import preload as preload_user_agents
from mockserver.core.routing import chromium_routing_flags
from mockserver.core.wire import MAX_HEADER_BYTES
from mockserver.serving.access import ensure_token, token_path
from mockserver.serving.app import create_app
from mockserver.serving.bridge import WsgiBridge
from mockserver.serving.egress import EgressLog
from mockserver.serving.embedded import EmbeddedServers, Listener, bind_listener
from mockserver.serving.journal import EVENT_STREAM, LONG_POLL, holding_kind
from mockserver.serving.proxy import ScopedProxy
from mockserver.serving.tls import CertificateFiles, ensure_certificate
from mockserver.storage.recorder import Recorder
from mockserver.storage.store import BeaconStore

log = logging.getLogger(__name__)

BEACON_THREADS = 16  # refine's endpoints: enough to fill the store's group commits
MAX_LONG_POLLS = 32  # open at once, each kind; beyond: 503 with Retry-After
MAX_EVENT_STREAMS = 32
SPARE_THREADS = 16  # the journal's other calls, while every long poll and stream is held
# A connection that has not sent a whole request head within this is closed (no answer: granian
# sends no 408); it is also how long an idle keep-alive connection stays open.
HEADER_TIMEOUT = 10.0
# hyper's read buffer for a request head: its limit is loose (a head up to about twice it passed), so it
# is set above MAX_HEADER_BYTES, which the bridge enforces exactly (431, not recorded).
HYPER_HEAD_BUFFER = MAX_HEADER_BYTES + 64 * 1024


class ServerError(Exception):
    """The server cannot start (port in use, no permission); message is one line.

    ``str()`` is the command line's message, advice on flags included;
    ``reason`` is the same without it, for front ends that have no flags.
    """

    def __init__(self, reason: str, flag_advice: str = "") -> None:
        super().__init__(f"{reason} ({flag_advice})" if flag_advice else reason)
        self.reason = reason


@dataclass(frozen=True)
class ListenerSockets:
    """Listening sockets bound elsewhere (``serve --workers``' parent) for an :class:`InspectorServer`."""

    http: socket.socket
    https: socket.socket | None = None


@dataclass(frozen=True)
class Listening:
    """Where the mock is reachable once started."""

    host: str
    port: int
    https_port: int | None
    spki_pin: str | None
    proxy_port: int | None = None

    @property
    def http_url(self) -> str:
        """Base URL of the plain HTTP listener."""
        return f"http://{_url_host(self.host)}:{self.port}"

    @property
    def https_url(self) -> str | None:
        """Base URL of the HTTPS listener, if any."""
        return f"https://{_url_host(self.host)}:{self.https_port}" if self.https_port else None

    @property
    def proxy_url(self) -> str | None:
        """URL of the scoped proxy (``HTTPS_PROXY``, ``curl -x``), if it runs."""
        return f"http://{_url_host(self.host)}:{self.proxy_port}" if self.proxy_port else None


def _url_host(host: str) -> str:
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


class InspectorServer:
    """The mock's HTTP and HTTPS listeners over one store."""

    def __init__(self, store: BeaconStore, *, host: str = DEFAULT_HOST, port: int = 0,
                 https_port: int | None = 0, trust_proxy: bool = False,
                 certificate_dir: Path | None = None, require_token: bool | None = None,
                 token_dir: Path | None = None, proxy_port: int | None = None,
                 max_long_polls: int = MAX_LONG_POLLS, max_event_streams: int = MAX_EVENT_STREAMS,
                 header_timeout: float = HEADER_TIMEOUT, listen_on: ListenerSockets | None = None,
                 recorder: Recorder | None = None) -> None:
        """``require_token`` (default: when ``host`` is not loopback) makes the journal want the token
        kept in ``token_dir`` (default: the data folder), made there on first use. ``proxy_port``
        (0 = any free port) also starts the scoped proxy (:mod:`mockserver.serving.proxy`), loopback only;
        ``egress`` lists what it passed to other hosts. ``max_long_polls`` and ``max_event_streams`` cap
        the journal's waiting requests open at once (each kind; beyond, 503 with Retry-After);
        ``header_timeout`` is the seconds a connection has to send a request's head, and may stay idle.
        ``listen_on``: sockets already bound and listening (a worker of ``serve --workers``), served
        instead of binding ``port`` and ``https_port``, and closed on stop; ``recorder``: the app's
        (default: a new one over ``store``)."""
        self.store = store
        self.host = host
        self._given = listen_on
        if listen_on is not None:
            port = listen_on.http.getsockname()[1]
            https_port = listen_on.https.getsockname()[1] if listen_on.https is not None else None
        self.port = port
        self.https_port = https_port
        self.proxy_port = proxy_port
        self.proxy: ScopedProxy | None = None
        self.egress = EgressLog()
        if require_token is None:
            require_token = not is_loopback(host)
        self.journal_token: str | None = ensure_token(token_dir) if require_token else None
        self.token_file: Path | None = token_path(token_dir) if require_token else None
        self.app = create_app(store, trust_proxy=trust_proxy, journal_token=self.journal_token, recorder=recorder)
        self.certificate_dir = certificate_dir
        self.limits = {LONG_POLL: max_long_polls, EVENT_STREAM: max_event_streams}
        self.header_timeout = header_timeout
        self.certificate: CertificateFiles | None = None
        self._listeners: list[Listener] = []
        self._bridge: WsgiBridge | None = None
        self._servers: EmbeddedServers | None = None
        self.listening: Listening | None = None

    @property
    def loopback_only(self) -> bool:
        """True unless the user asked to listen beyond this machine."""
        return is_loopback(self.host)

    def _bind(self, port: int, scheme: str) -> Listener:
        given = None if self._given is None else self._given.https if scheme == "https" else self._given.http
        sock = given or bind_socket(self.host, port, scheme)
        if scheme == "https":
            assert self.certificate is not None
            listener = Listener(sock, self.certificate.cert, self.certificate.key)
        else:
            listener = Listener(sock)
        self._listeners.append(listener)
        return listener

    def start(self) -> Listening:
        """Bind both listeners (raising ServerError on failure) and serve in the background."""
        if self.listening is not None:
            return self.listening
        if self.proxy_port is not None and not is_loopback(self.host):  # before anything listens
            raise ServerError(f"the proxy listens on loopback only (127.0.0.1 or ::1), not on {self.host}",
                              "--proxy-port needs --host 127.0.0.1 or ::1")
        shutdown = self.app.extensions["shutdown"]
        shutdown.clear()
        try:
            http = self._bind(self.port, "http")
            https_port = None
            if self.https_port is not None:
                self.certificate = ensure_certificate(self.certificate_dir or tls_dir())
                https_port = self._bind(self.https_port, "https").port
            self._bridge = WsgiBridge(self.app, fast_routes=self.app.extensions["fast_routes"], holding=holding_kind,
                                      limits=self.limits, beacon_threads=BEACON_THREADS,
                                      other_threads=sum(self.limits.values()) + SPARE_THREADS, shutdown=shutdown,
                                      submit=self.app.extensions.get("submit_beacon"))
            self._servers = EmbeddedServers(self._bridge, self._listeners, header_timeout=self.header_timeout,
                                            max_header_bytes=HYPER_HEAD_BUFFER)
            proxy_port = self._start_proxy(http.port, https_port)
        except BaseException:
            self.stop()
            raise
        self._servers.start()  # the sockets listen already: a request sent now waits in the kernel's queue
        self.listening = Listening(self.host, http.port, https_port,
                                   self.certificate.spki_pin if self.certificate else None, proxy_port)
        self.app.extensions["listening"] = self.listening
        self.app.extensions["certificate"] = self.certificate  # its CA for GET /__inspector/ca.pem
        # Listening already; the first beacon need not wait for the parser's import.
        threading.Thread(target=preload_user_agents, name="preload-user-agents", daemon=True).start()
        return self.listening

    def _start_proxy(self, http_port: int, https_port: int | None) -> int | None:
        """Start the scoped proxy if asked (ServerError if it cannot listen); its port or None."""
        if self.proxy_port is None:
            return None
        target = _url_host(self.host).strip("[]")
        self.proxy = ScopedProxy(self.host, self.proxy_port, http_target=(target, http_port),
                                 https_target=(target, https_port) if https_port else None, egress=self.egress)
        try:
            return self.proxy.start()
        except OSError as exc:
            self.proxy = None
            raise ServerError(*_bind_error(self.host, self.proxy_port, "proxy", exc)) from exc

    def chromium_flags(self) -> list[str]:
        """Flags routing a Chromium-family browser's telemetry to this server."""
        if not self.listening or not self.listening.https_port or not self.listening.spki_pin:
            raise ServerError("routing needs the HTTPS listener (started without --no-https)")
        return chromium_routing_flags(self.listening.https_port, self.listening.spki_pin,
                                      _url_host(self.host).strip("[]"))

    def stop(self) -> None:
        """Stop both listeners: long polls, streams and bodies still arriving end first; then the app's threads."""
        self.app.extensions["shutdown"].set()
        if self.proxy is not None:  # first: its tunnels end before the listeners they lead to
            self.proxy.stop()
            self.proxy = None
        servers, bridge = self._servers, self._bridge
        if servers is not None and bridge is not None:
            servers.call(bridge.stop_requests)
            if servers.stop():
                bridge.close_pools()
                servers.close()
        for listener in self._listeners:
            listener.sock.close()
        self._listeners, self._servers, self._bridge = [], None, None
        self.listening = None
        self.app.extensions["listening"] = None
        self.app.extensions["certificate"] = None

    def __enter__(self) -> InspectorServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def bind_socket(host: str, port: int, scheme: str) -> socket.socket:
    """A listening socket on ``host:port`` for ``scheme`` (http or https); ServerError (one line) if the port
    cannot be used."""
    try:
        return bind_listener(host, port)
    except OSError as exc:
        raise ServerError(*_bind_error(host, port, scheme, exc)) from exc


def _bind_error(host: str, port: int, scheme: str, exc: OSError) -> tuple[str, str]:
    """Why ``port`` cannot be used, in one line, and the command line's advice (or "")."""
    what = {"https": "HTTPS", "proxy": "proxy"}.get(scheme, "HTTP")
    flag = {"https": "--https-port", "proxy": "--proxy-port"}.get(scheme, "--port")
    code = exc.errno
    if code == errno.EADDRINUSE:
        return f"{what} port {port} on {host} is already in use", f"pick another with {flag}, or 0 for a free one"
    if code == errno.EACCES:
        return f"no permission to listen on {host}:{port} ({what}); ports below 1024 need privileges", ""
    if code == errno.EADDRNOTAVAIL:
        return f"cannot listen on {host}: not an address of this machine", ""
    return f"cannot listen on {host}:{port} ({what}): {' '.join(str(exc).split())}", ""
