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
import socket
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cheroot import errors as cheroot_errors
from cheroot import server as cheroot_server
from cheroot import wsgi
from cheroot.ssl.builtin import BuiltinSSLAdapter

from mockserver.core.config import DEFAULT_HOST, is_loopback, tls_dir
from mockserver.core.enrich import preload as preload_user_agents
from mockserver.core.routing import chromium_routing_flags
from mockserver.core.wire import MAX_HEADER_BYTES
from mockserver.serving.access import ensure_token, token_path
from mockserver.serving.app import create_app
from mockserver.serving.egress import EgressLog
from mockserver.serving.endpoints import MalformedBody, framing_problem
from mockserver.serving.proxy import ScopedProxy
from mockserver.serving.tls import CertificateFiles, ensure_certificate
from mockserver.storage.store import BeaconStore

log = logging.getLogger(__name__)

THREADS = 24  # always running; long polls and event streams each hold one while open
MAX_THREADS = 256  # the pool grows up to this while every worker is busy (slow clients, long polls)
GROW_BY = 16  # workers added per check (every POOL_CHECK seconds) while none is idle
POOL_CHECK = 0.1
SHRINK_AFTER = 100  # checks in a row with spare workers (~10 s) before the extra ones go
# Idle keep-alive connections wait in cheroot's selector (no thread each) until
# they send again or time out. cheroot keeps at most 10 by default and closes
# the rest after every response (a new TCP, and for HTTPS a new TLS handshake,
# per request beyond the tenth client), and counting them costs a lock per
# request: no limit here.
KEEP_ALIVE_LIMIT = None
# Connections the kernel completes before cheroot's accept loop takes them.
# cheroot's default of 5 made a burst of new connections wait in SYN retries
# (1 s, 3 s, ...): 80 connects took 13 s; with 128 they are immediate.
LISTEN_BACKLOG = 128
CHUNK_LINE = 4096  # longest chunk-size or trailer line read (a 64-bit size and its extensions fit)
MAX_TRAILERS = 100  # trailer lines read after the last chunk
READ_PIECE = 64 * 1024  # the most read from the socket at once, whatever size a chunk claims
_FRAMING_KEYS = {b"Content-Length": "CONTENT_LENGTH", b"Transfer-Encoding": "HTTP_TRANSFER_ENCODING"}


class _HeaderReader(cheroot_server.HeaderReader):
    """cheroot's header reader, keeping every Content-Length (cheroot keeps only the last)."""

    def __call__(self, rfile: Any, hdict: dict[bytes, bytes] | None = None) -> dict[bytes, bytes]:
        self.hdict = hdict if hdict is not None else {}
        self.earlier: list[bytes] = []
        headers: dict[bytes, bytes] = super().__call__(rfile, self.hdict)
        if self.earlier:  # "5, 10": invalid, and recorded as sent
            headers[b"Content-Length"] = b", ".join([*self.earlier, headers[b"Content-Length"]])
        return headers

    def _allow_header(self, key_name: bytes) -> bool:
        if key_name == b"Content-Length" and key_name in self.hdict:
            self.earlier.append(self.hdict[key_name])
        return True


class _Request(cheroot_server.HTTPRequest):
    """A request whose broken framing reaches the app (to be recorded) instead of cheroot's 400/500/501.

    Headers that cannot delimit the body (see :func:`~mockserver.serving.endpoints.framing_problem`)
    are taken away before cheroot reads them, so it reads no body; the app gets them
    back as sent (:class:`_Gateway`), and the connection closes after the answer,
    since where the next request would start is unknown.
    """

    framing_headers: dict[bytes, bytes] = {}

    def header_reader(self, rfile: Any, hdict: dict[bytes, bytes]) -> dict[bytes, bytes]:
        headers = _HeaderReader()(rfile, hdict)
        sent = {name: headers[name] for name in _FRAMING_KEYS if name in headers}
        if sent and framing_problem(*(sent[name].decode("latin-1") if name in sent else None
                                      for name in _FRAMING_KEYS)):
            self.framing_headers = sent
            self.close_connection = True
            headers.pop(b"Content-Length", None)
            if headers.get(b"Transfer-Encoding", b"").strip().lower() != b"chunked":
                headers.pop(b"Transfer-Encoding", None)
        return headers


class _ChunkedBody:
    """A chunked request body, decoded strictly and in bounded reads (cheroot's ChunkedRFile is
    neither: it reads a whole chunk of whatever size it claims, loses what it read on an error and
    takes a negative size for the last chunk). Broken framing raises MalformedBody with what arrived.
    """

    def __init__(self, request: cheroot_server.HTTPRequest) -> None:
        self.request = request
        self.rfile = request.conn.rfile
        self.left = 0  # bytes still to come in the current chunk
        self.done = False

    def read(self, size: int | None = -1) -> bytes:
        """Up to ``size`` bytes of the body (all of it when ``size`` is None or negative)."""
        out = bytearray()
        try:
            while not self.done and (size is None or size < 0 or len(out) < size):
                if self.left == 0:
                    self.left = self._chunk_size()
                    if self.left == 0:
                        self._trailers()
                        self.done = True
                        break
                want = self.left if size is None or size < 0 else min(self.left, size - len(out))
                piece = self.rfile.read(min(want, READ_PIECE))
                out += piece
                self.left -= len(piece)
                if not piece:
                    raise MalformedBody("the connection closed inside a chunk")
                if self.left == 0 and self.rfile.read(2) != b"\r\n":
                    raise MalformedBody("a chunk is longer than its size (no CRLF after it)")
        except MalformedBody as exc:
            self._broken()
            raise MalformedBody(str(exc), bytes(out)) from None
        except OSError as exc:  # a timeout or a reset: what arrived is kept all the same
            self._broken()
            raise MalformedBody(f"the connection failed inside the body ({exc})", bytes(out)) from None
        return bytes(out)

    def _broken(self) -> None:
        self.done = True
        self.request.close_connection = True  # the rest of the stream is not a request

    def _line(self, closed: str) -> bytes:
        line: bytes = self.rfile.readline(CHUNK_LINE)
        if not line.endswith(b"\n"):
            raise MalformedBody(closed if len(line) < CHUNK_LINE else "a chunk line is too long")
        return line

    def _chunk_size(self) -> int:
        text = self._line("the connection closed before the last chunk").split(b";", 1)[0].strip()
        shown = text[:40].decode("latin-1")
        if not text or text.strip(b"0123456789abcdefABCDEF"):
            raise MalformedBody(f"invalid chunk size {shown!r}")
        if len(text.lstrip(b"0")) > 16:
            raise MalformedBody(f"invalid chunk size {shown!r} (over 64 bits)")
        return int(text, 16)

    def _trailers(self) -> None:
        for _ in range(MAX_TRAILERS):
            if self._line("the connection closed before the end of the trailers").strip() == b"":
                return
        raise MalformedBody(f"more than {MAX_TRAILERS} trailer lines")

    def close(self) -> None:
        """Nothing to release: the connection owns the socket."""


class _Gateway(wsgi.Gateway_10):
    """cheroot's WSGI 1.0 gateway, with a strict chunked body and the framing headers as sent."""

    def get_environ(self) -> dict[str, Any]:  # type: ignore[override]  # cheroot's stub says None; it is the environ
        env: dict[str, Any] = super().get_environ()
        request = self.req
        if request.chunked_read:
            env["wsgi.input"] = _ChunkedBody(request)
        for name, value in request.framing_headers.items():
            env[_FRAMING_KEYS[name]] = value.decode("latin-1")
        return env


class _Connection(cheroot_server.HTTPConnection):
    """A connection whose TLS handshake runs on the worker, not in cheroot's accept loop.

    cheroot's BuiltinSSLAdapter handshakes inside the single thread that
    accepts every connection: one client that connected and sent nothing (a
    browser's preconnect, a port scan) stalled the whole HTTPS listener for the
    socket timeout (10 s each; measured). Here the socket is wrapped without a
    handshake; the worker that gets it (only once it has sent something, see
    ``_Server.process_conn``) handshakes first, with cheroot's own error
    handling: plain HTTP gets cheroot's 400, a dropped handshake is closed.
    """

    RequestHandlerClass = _Request
    handshake_pending = False

    def communicate(self) -> bool:
        if self.handshake_pending:
            self.handshake_pending = False
            if not self._handshake():
                return False
        return bool(super().communicate())

    def _handshake(self) -> bool:
        adapter = self.server.ssl_adapter
        try:
            self.socket.do_handshake()
        except ssl.SSLError as exc:
            if exc.errno == ssl.SSL_ERROR_SSL and "http request" in str(exc).lower():
                self._plain_http_answer()
            return False
        except OSError:  # dropped, reset or timed out during the handshake
            return False
        self.ssl_env = adapter.get_environ(self.socket)
        return True

    def _plain_http_answer(self) -> None:
        """What cheroot answers a plain HTTP request on the TLS port (see its connections.py)."""
        msg = "The client sent a plain HTTP request, but this server only speaks HTTPS on this port."
        text = (f"{self.server.protocol} 400 Bad Request\r\nContent-Length: {len(msg)}\r\n"
                f"Content-Type: text/plain\r\n\r\n{msg}")
        try:  # in the clear, on the TLS socket's descriptor
            socket.socket.sendall(self.socket, text.encode("iso-8859-1"))
        except OSError:  # the client is gone: nothing more to do
            pass


class _LazyHandshakeSSLAdapter(BuiltinSSLAdapter):
    """BuiltinSSLAdapter that leaves the handshake to :class:`_Connection`.

    A client that half-closes TCP without TLS's close_notify (the body ends
    short) is read as an end of input, not as a broken connection: OpenSSL 3
    would otherwise refuse the write of the 400 that records it.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.context.options |= getattr(ssl, "OP_IGNORE_UNEXPECTED_EOF", 0)

    def wrap(self, sock: Any) -> tuple[Any, dict[str, str]]:
        try:
            wrapped = self.context.wrap_socket(sock, do_handshake_on_connect=False, server_side=True)
        except OSError as exc:
            raise cheroot_errors.FatalSSLAlert(*exc.args) from exc
        return wrapped, {}


class _Server(wsgi.Server):
    """cheroot's WSGI server with three changes for many idle or slow clients.

    * A new connection waits in cheroot's selector until it sends something,
      instead of taking a worker thread at once: idle connections cost no thread.
    * While no worker is idle, a watcher adds workers (up to MAX_THREADS), so
      clients that send a request slowly (or long polls) cannot starve the
      others; spare workers go again after a quiet spell.
    * Idle keep-alive connections are all kept (cheroot closes all beyond 10).
    """

    ConnectionClass = _Connection
    keep_alive_conn_limit = KEEP_ALIVE_LIMIT  # type: ignore[assignment]  # cheroot reads None as no limit; its stub says int

    def process_conn(self, conn: Any) -> None:
        if conn.last_used is None and not conn.rfile.has_data():
            if isinstance(conn.socket, ssl.SSLSocket):
                conn.handshake_pending = True
            self._connections.put(conn)  # type: ignore[attr-defined]  # cheroot's connection manager, not in its stub
            return
        super().process_conn(conn)

    def serve(self) -> None:
        stop = threading.Event()
        watcher = threading.Thread(target=self._watch_pool, args=(stop,), daemon=True,
                                   name=f"pool-watch-{self.bind_addr[1]}")
        watcher.start()
        try:
            super().serve()
        finally:
            stop.set()
            watcher.join(timeout=5)

    def _watch_pool(self, stop: threading.Event) -> None:
        pool = self.requests
        calm = 0
        while not stop.wait(POOL_CHECK):
            if not self.ready:
                continue
            try:
                size = len(pool._threads)
                if pool.idle == 0 and size < pool.max:
                    self._grow(pool, min(GROW_BY, int(pool.max - size)))
                    calm = 0
                elif pool.idle > GROW_BY and size > pool.min:
                    calm += 1
                    if calm >= SHRINK_AFTER:
                        pool.shrink(GROW_BY)
                        calm = 0
                else:
                    calm = 0
            except Exception:  # the watcher must never take the server down
                log.exception("thread pool watcher")

    @staticmethod
    def _grow(pool: Any, amount: int) -> None:
        spawn = getattr(pool, "_spawn_worker", None)
        if spawn is None:  # another cheroot: its own grow() (waits for each worker)
            pool.grow(amount)
            return
        pool._threads.extend(spawn() for _ in range(amount))


def make_wsgi_server(host: str, port: int, app: Any, *, threads: int = THREADS,
                     certificate: CertificateFiles | None = None) -> wsgi.Server:
    """The cheroot server both listeners use (and the benchmark's ceiling), not yet bound."""
    server = _Server((host, port), app, numthreads=threads, max=max(MAX_THREADS, threads),
                     server_name="telemetry-inspector", request_queue_size=LISTEN_BACKLOG)
    server.max_request_header_size = MAX_HEADER_BYTES
    server.gateway = _Gateway  # cheroot's __init__ sets its own
    server.error_log = _quiet_error_log  # type: ignore[method-assign]  # cheroot's hook for its own log lines
    if certificate is not None:
        server.ssl_adapter = _LazyHandshakeSSLAdapter(str(certificate.cert), str(certificate.key))
    return server


class ServerError(Exception):
    """The server cannot start (port in use, no permission); message is one line.

    ``str()`` is the command line's message, advice on flags included;
    ``reason`` is the same without it, for front ends that have no flags.
    """

    def __init__(self, reason: str, flag_advice: str = "") -> None:
        super().__init__(f"{reason} ({flag_advice})" if flag_advice else reason)
        self.reason = reason


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


def _quiet_error_log(msg: str = "", level: int = 20, traceback: bool = False) -> None:
    # TLS handshakes refused by clients and dropped keep-alives are normal here.
    log.debug("cheroot: %s", msg)


class InspectorServer:
    """The mock's HTTP and HTTPS listeners over one store."""

    def __init__(self, store: BeaconStore, *, host: str = DEFAULT_HOST, port: int = 0,
                 https_port: int | None = 0, trust_proxy: bool = False,
                 certificate_dir: Path | None = None, threads: int = THREADS,
                 require_token: bool | None = None, token_dir: Path | None = None,
                 proxy_port: int | None = None) -> None:
        """``require_token`` (default: when ``host`` is not loopback) makes the journal want the token
        kept in ``token_dir`` (default: the data folder), made there on first use. ``proxy_port``
        (0 = any free port) also starts the scoped proxy (:mod:`mockserver.serving.proxy`), loopback only;
        ``egress`` lists what it passed to other hosts."""
        self.store = store
        self.host = host
        self.port = port
        self.https_port = https_port
        self.proxy_port = proxy_port
        self.proxy: ScopedProxy | None = None
        self.egress = EgressLog()
        if require_token is None:
            require_token = not is_loopback(host)
        self.journal_token: str | None = ensure_token(token_dir) if require_token else None
        self.token_file: Path | None = token_path(token_dir) if require_token else None
        self.app = create_app(store, trust_proxy=trust_proxy, journal_token=self.journal_token)
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
        if scheme == "https":
            assert self.certificate is not None
        server = make_wsgi_server(self.host, port, self.app, threads=self.threads,
                                  certificate=self.certificate if scheme == "https" else None)
        try:
            server.prepare()
        except OSError as exc:
            server.stop()
            raise ServerError(*_bind_error(self.host, port, scheme, exc)) from exc
        return server

    def start(self) -> Listening:
        """Bind both listeners (raising ServerError on failure) and serve in the background."""
        if self.listening is not None:
            return self.listening
        if self.proxy_port is not None and not is_loopback(self.host):  # before anything listens
            raise ServerError(f"the proxy listens on loopback only (127.0.0.1 or ::1), not on {self.host}",
                              "--proxy-port needs --host 127.0.0.1 or ::1")
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
            proxy_port = self._start_proxy(http.bind_addr[1], https_port)
        except BaseException:
            self.stop()
            raise
        for server in self._servers:
            thread = threading.Thread(target=server.serve, name=f"mock-{server.bind_addr[1]}", daemon=True)
            thread.start()
            self._threads.append(thread)
        self.listening = Listening(self.host, http.bind_addr[1], https_port,
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
        """Stop both listeners and wait for their threads."""
        self.app.extensions["shutdown"].set()
        if self.proxy is not None:  # first: its tunnels end before the listeners they lead to
            self.proxy.stop()
            self.proxy = None
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
        self.app.extensions["listening"] = None
        self.app.extensions["certificate"] = None

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


def _bind_error(host: str, port: int, scheme: str, exc: OSError) -> tuple[str, str]:
    """Why ``port`` cannot be used, in one line, and the command line's advice (or "")."""
    what = {"https": "HTTPS", "proxy": "proxy"}.get(scheme, "HTTP")
    flag = {"https": "--https-port", "proxy": "--proxy-port"}.get(scheme, "--port")
    code = exc.errno
    if code is None:  # cheroot wraps the socket error in a plain OSError message
        found = re.search(r"\[Errno (\d+)\]", str(exc))
        code = int(found.group(1)) if found else None
    if code == errno.EADDRINUSE:
        return f"{what} port {port} on {host} is already in use", f"pick another with {flag}, or 0 for a free one"
    if code == errno.EACCES:
        return f"no permission to listen on {host}:{port} ({what}); ports below 1024 need privileges", ""
    if code == errno.EADDRNOTAVAIL:
        return f"cannot listen on {host}: not an address of this machine", ""
    return f"cannot listen on {host}:{port} ({what}): {' '.join(str(exc).split())}", ""
