"""A scoped HTTP(S) proxy: telemetry.refine.dev goes to the inspector, every other host passes by.

For programs that honour ``HTTPS_PROXY`` / ``-x`` / ``--proxy-server`` (curl, Python, Electron,
Firefox's proxy prefs). Loopback only, its own small listener (threads and sockets):

* ``CONNECT telemetry.refine.dev:443`` is tunneled to the inspector's own HTTPS listener,
  which terminates TLS with the mock's certificate; ``GET http://telemetry.refine.dev/…``
  (absolute form) is forwarded to its HTTP listener. Either way the request is recorded
  exactly as a direct one; the proxy registers each connection it opens to a listener in
  :data:`~mockserver.serving.egress.PROXIED`, and the record gets ``client.via_proxy``.
* Any other host is tunneled or forwarded byte for byte, never decrypted, never recorded,
  only listed in an :class:`~mockserver.serving.egress.EgressLog`.
* Bounded: a request head within HEAD_TIMEOUT and MAX_HEAD, at most MAX_CONNECTIONS at once,
  a connection idle for IDLE_TIMEOUT closed. A peer beyond loopback gets 403. A malformed
  request gets a 400 with the reason; nothing here answers 500.
"""

from __future__ import annotations

import logging
import re
import selectors
import socket
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from mockserver.core.config import REFINE_HOST, is_loopback
from mockserver.serving.egress import PROXIED, Egress, EgressLog, ProxiedConnections

log = logging.getLogger(__name__)

MAX_HEAD = 64 * 1024  # request line and headers
HEAD_TIMEOUT = 10.0  # seconds for the request head to arrive
IDLE_TIMEOUT = 600.0  # a relayed connection with no byte either way for this long is closed (long: a dev
# server's HMR WebSocket can sit silent for minutes, and closing it makes the page reload)
CONNECT_TIMEOUT = 10.0  # to reach another host
MAX_CONNECTIONS = 256  # client connections at once; one more gets 503
PIECE = 64 * 1024
LINGER_BYTES = 1024 * 1024  # read and dropped after a refusal, so that the client gets the answer
_METHOD = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_HOP_BY_HOP = frozenset(("connection", "keep-alive", "proxy-connection", "proxy-authorization", "te",
                         "trailer", "upgrade"))


class ProxyError(Exception):
    """The proxy cannot start (a non-loopback address, the port in use); the message is one line."""


class BadRequest(Exception):
    """A request the proxy refuses: ``status`` and a one-line reason for the client."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


@dataclass(frozen=True)
class ProxyRequest:
    """A parsed proxy request head: ``CONNECT host:port`` or an absolute-form ``http://`` request."""

    method: str
    host: str  # lower case, no brackets, no trailing dot
    port: int
    version: str
    headers: list[tuple[str, str]]  # as sent, in order
    target: str  # the request target as sent
    path: str = ""  # origin form for a forwarded request ("/telemetry?payload=…")

    @property
    def is_connect(self) -> bool:
        """A tunnel rather than a forwarded request."""
        return self.method == "CONNECT"

    def forwarded_head(self) -> bytes:
        """The head sent on for an absolute-form request: origin form, no proxy or hop-by-hop
        headers, ``Connection: close`` (one request per forwarded connection: the proxy does not
        parse responses to find where one ends). An ``Upgrade`` request (WebSocket) keeps its
        ``Connection`` and ``Upgrade`` headers: after the answer the stream is raw bytes anyway."""
        upgrade = any(name.lower() == "upgrade" for name, _ in self.headers)
        dropped = _HOP_BY_HOP - {"connection", "upgrade"} if upgrade else _HOP_BY_HOP
        lines = [f"{self.method} {self.path} {self.version}"]
        lines += [f"{name}: {value}" for name, value in self.headers if name.lower() not in dropped]
        if not any(name.lower() == "host" for name, _ in self.headers):
            lines.append(f"Host: {_authority(self.host, self.port, 80)}")
        if not upgrade:
            lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _authority(host: str, port: int, default: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return shown if port == default else f"{shown}:{port}"


def _host_port(text: str, default: int | None) -> tuple[str, int]:
    """``host:port`` (``[v6]:port``; the port may be left out when there is a ``default``) split and
    checked; BadRequest when it is not one."""
    found = re.fullmatch(r"(\[[0-9A-Fa-f:.]+\]|[^\s:/@\[\]]+)(?::(\d{1,5}))?", text)
    if not found or (found.group(2) is None and default is None):
        wanted = "CONNECT wants host:port" if default is None else "the URL wants host or host:port"
        raise BadRequest(400, f"{wanted}, got {text[:100]!r}")
    port = int(found.group(2)) if found.group(2) is not None else default
    assert port is not None
    if not 0 < port < 65536:
        raise BadRequest(400, f"port {port} is out of range (1-65535)")
    host = found.group(1).strip("[]").rstrip(".").lower()
    if not host:
        raise BadRequest(400, f"no host in {text[:100]!r}")
    return host, port


def parse_head(head: bytes) -> ProxyRequest:
    """The request line and headers of a proxy request (BadRequest with the reason if malformed)."""
    try:
        text = head.decode("ascii")
    except UnicodeDecodeError:
        raise BadRequest(400, "the request head is not ASCII") from None
    lines = text.replace("\r\n", "\n").split("\n")
    if any(ord(ch) < 32 and ch != "\t" for line in lines for ch in line):  # a bare CR could split a header upstream
        raise BadRequest(400, "a control character in the request head")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not _METHOD.fullmatch(parts[0]) or not re.fullmatch(r"HTTP/1\.[01]", parts[2]):
        raise BadRequest(400, f"not an HTTP/1.x request line: {lines[0][:100]!r}")
    method, target, version = parts
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if not line:
            continue
        name, colon, value = line.partition(":")
        if not colon or not _HEADER_NAME.fullmatch(name):
            raise BadRequest(400, f"malformed header line {line[:100]!r}")
        headers.append((name, value.strip()))
    if method == "CONNECT":
        host, port = _host_port(target, None)
        return ProxyRequest(method, host, port, version, headers, target)
    scheme = target.split(":", 1)[0].lower()
    if scheme == "https":
        raise BadRequest(400, "an https:// URL goes through CONNECT host:443, not as a plain request")
    if scheme != "http" or not target[:7].lower() == "http://":
        raise BadRequest(400, "this is a proxy: send an absolute URL (GET http://host/path) or CONNECT host:port")
    url = urlsplit(target)
    if "@" in url.netloc:
        raise BadRequest(400, "a user name or password in the URL is not forwarded")
    host, port = _host_port(url.netloc, 80)
    path = (url.path or "/") + (f"?{url.query}" if url.query or target.endswith("?") else "")
    return ProxyRequest(method, host, port, version, headers, target, path)


def read_head(conn: socket.socket) -> tuple[bytes, bytes] | None:
    """The request head and whatever came after it; None if the client closed before sending one."""
    data = b""
    while True:
        end = data.find(b"\r\n\r\n")
        if 0 <= end <= MAX_HEAD:
            return data[:end], data[end + 4:]
        if len(data) > MAX_HEAD:
            raise BadRequest(431, f"the request head is over {MAX_HEAD // 1024} KiB")
        try:
            piece = conn.recv(PIECE)
        except TimeoutError:
            raise BadRequest(408, f"no complete request head within {HEAD_TIMEOUT:g} s") from None
        if not piece:
            if data.strip():
                raise BadRequest(400, "the connection closed inside the request head")
            return None
        data += piece


_REASONS = {400: "Bad Request", 403: "Forbidden", 408: "Request Timeout", 431: "Request Header Fields Too Large",
            502: "Bad Gateway", 503: "Service Unavailable"}


def answer(conn: socket.socket, status: int, message: str) -> None:
    """A short plain-text answer from the proxy itself, then the connection is done."""
    body = (message + "\n").encode("utf-8")
    head = (f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\nContent-Type: text/plain; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\nProxy-Agent: telemetry-inspector\r\n\r\n")
    try:
        conn.sendall(head.encode("latin-1") + body)
    except OSError:  # the client is gone
        pass


class ScopedProxy:
    """The proxy's listener and its connections (one thread each), started and stopped with the mock.

    ``http_target`` / ``https_target`` are the inspector's listeners (``https_target`` None when
    HTTPS is off: CONNECT to telemetry.refine.dev is then refused, never sent to the real host).
    """

    def __init__(self, host: str, port: int, *, http_target: tuple[str, int],
                 https_target: tuple[str, int] | None, egress: EgressLog | None = None,
                 proxied: ProxiedConnections = PROXIED, idle_timeout: float = IDLE_TIMEOUT,
                 max_connections: int = MAX_CONNECTIONS) -> None:
        if not is_loopback(host):
            raise ProxyError(f"the proxy listens on loopback only (127.0.0.1 or ::1), not on {host}")
        self.host, self.port = host, port
        self.http_target, self.https_target = http_target, https_target
        self.egress = egress if egress is not None else EgressLog()
        self.proxied = proxied
        self.idle_timeout = idle_timeout
        self.max_connections = max_connections
        self._slots = threading.BoundedSemaphore(max_connections)
        self._listener: socket.socket | None = None
        self._stopping = threading.Event()
        self._live: set[socket.socket] = set()
        self._threads: set[threading.Thread] = set()
        self._lock = threading.Lock()
        self._accepting: threading.Thread | None = None
        #: connections to telemetry.refine.dev handed to the inspector's listeners (``run``: a client that
        #: tunneled but never got a request through does not trust the inspector's CA)
        self.intercepted = 0

    def start(self) -> int:
        """Bind (OSError if the port cannot be used) and accept in the background; returns the port."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((self.host, self.port))
            listener.listen(128)
        except OSError:
            listener.close()
            raise
        listener.settimeout(0.25)  # the accept loop looks at the stop flag this often
        self._listener = listener
        self._stopping.clear()
        self.port = listener.getsockname()[1]
        self._accepting = threading.Thread(target=self._accept_loop, name=f"proxy-{self.port}", daemon=True)
        self._accepting.start()
        return self.port

    def stop(self) -> None:
        """Stop accepting, cut every relayed connection, wait for their threads."""
        self._stopping.set()
        if self._accepting is not None:
            self._accepting.join(timeout=5)
            self._accepting = None
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with self._lock:
            live, threads = list(self._live), list(self._threads)
        for sock in live:
            _shut(sock)
        for thread in threads:
            thread.join(timeout=5)

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            try:
                conn, peer = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:  # out of descriptors, or closed under us: try again unless stopping
                if self._stopping.wait(0.1):
                    return
                continue
            if not self._slots.acquire(blocking=False):
                conn.setblocking(False)  # never hold up the accept loop
                _drain(conn)
                answer(conn, 503, f"the proxy already relays {self.max_connections} connection(s); try again")
                _shut(conn, socket.SHUT_WR)
                conn.close()
                continue
            thread = threading.Thread(target=self._connection, args=(conn, peer), daemon=True,
                                      name=f"proxy-conn-{peer[1]}")
            with self._lock:
                self._threads.add(thread)
            thread.start()

    def _connection(self, conn: socket.socket, peer: tuple[Any, ...]) -> None:
        with self._lock:  # stop() sets the flag, then takes the lock to cut what is live
            self._live.add(conn)
            stopping = self._stopping.is_set()
        try:
            if not stopping:
                self.serve_connection(conn, peer)
        except OSError as exc:  # a client or host gone mid-way: the connection is simply over
            log.debug("proxy connection from %s: %s", peer, exc)
        except Exception:  # one connection's failure must never take the proxy down
            log.exception("proxy connection from %s", peer)
        finally:
            with self._lock:
                self._live.discard(conn)
                self._threads.discard(threading.current_thread())
            conn.close()
            self._slots.release()

    def serve_connection(self, conn: socket.socket, peer: tuple[Any, ...]) -> None:
        """Serve one client connection to its end (the caller closes ``conn``)."""
        if not is_loopback(str(peer[0])):
            answer(conn, 403, "this proxy relays for programs on this machine only")
            return
        conn.settimeout(HEAD_TIMEOUT)
        try:
            got = read_head(conn)
            if got is None:
                return
            request = parse_head(got[0])
        except BadRequest as exc:
            answer(conn, exc.status, str(exc))
            _shut(conn, socket.SHUT_WR)
            _drain(conn, LINGER_BYTES)  # unread input would turn the close into a reset that loses the answer
            return
        client = f"{peer[0]}:{peer[1]}"
        if request.host.rstrip(".") == REFINE_HOST:
            self._intercept(conn, request, got[1])
        else:
            self._pass_through(conn, request, got[1], client)

    def _intercept(self, conn: socket.socket, request: ProxyRequest, early: bytes) -> None:
        """telemetry.refine.dev: to the inspector's own listener, registered so the record notes the proxy."""
        if request.port == 443 and request.is_connect:
            target = self.https_target
            if target is None:
                answer(conn, 502, f"{REFINE_HOST}:443 is served by the inspector's HTTPS listener, which is off")
                return
        elif request.port == 80:
            target = self.http_target
        else:
            answer(conn, 502, f"the inspector answers for {REFINE_HOST} on ports 80 and 443 only")
            return
        try:
            upstream = socket.create_connection(target, timeout=CONNECT_TIMEOUT)
        except OSError as exc:
            answer(conn, 502, f"the inspector's listener at {target[0]}:{target[1]} cannot be reached ({exc})")
            return
        with self._lock:
            self.intercepted += 1
        local = upstream.getsockname()
        how = "CONNECT" if request.is_connect else "absolute-form"
        self.proxied.add((local[0], local[1]), target[1], f"{how} {REFINE_HOST}:{request.port}")
        try:
            self._start_relay(conn, upstream, request, early)
            self._relay(conn, upstream, None)
        finally:
            self.proxied.remove((local[0], local[1]), target[1])
            upstream.close()

    def _pass_through(self, conn: socket.socket, request: ProxyRequest, early: bytes, client: str) -> None:
        """Any other host: relayed untouched, listed in the egress log."""
        entry = self.egress.open(request.host, request.port, request.method, client,
                                 None if request.is_connect else request.target)
        if self._is_self(request.host, request.port):
            self.egress.update(entry, outcome="failed: a request to the proxy itself")
            answer(conn, 400, "a request to the proxy itself is not relayed")
            self.egress.close(entry)
            return
        try:
            upstream = socket.create_connection((request.host, request.port), timeout=CONNECT_TIMEOUT)
        except OSError as exc:
            why = exc.strerror or str(exc) or type(exc).__name__
            self.egress.update(entry, outcome=f"failed: {why}")
            self.egress.close(entry)
            answer(conn, 502, f"cannot reach {_authority(request.host, request.port, 0)}: {why}")
            return
        try:
            self.egress.add_bytes(entry, sent=self._start_relay(conn, upstream, request, early))
            self._relay(conn, upstream, entry)
        finally:
            upstream.close()
            self.egress.close(entry)

    def _start_relay(self, conn: socket.socket, upstream: socket.socket, request: ProxyRequest,
                     early: bytes) -> int:
        """Answer a CONNECT or send a forwarded head, then what came after the client's head;
        returns the bytes sent upstream."""
        head = b""
        if request.is_connect:
            conn.sendall(b"HTTP/1.1 200 Connection Established\r\nProxy-Agent: telemetry-inspector\r\n\r\n")
        else:
            head = request.forwarded_head()
        upstream.sendall(head + early)
        return len(head) + len(early)

    def _is_self(self, host: str, port: int) -> bool:
        return port == self.port and (is_loopback(host) or host in ("0.0.0.0", "::"))

    def _relay(self, client: socket.socket, upstream: socket.socket, entry: Egress | None) -> None:
        """Copy bytes both ways until both sides have closed (half-closes passed on) or nothing
        moved for ``idle_timeout``."""
        for sock in (client, upstream):
            sock.settimeout(self.idle_timeout)
        with self._lock:
            self._live.add(upstream)  # stop() cuts it too
            stopping = self._stopping.is_set()
        try:
            if not stopping:
                self._copy_both_ways(client, upstream, entry)
        finally:
            with self._lock:
                self._live.discard(upstream)

    def _copy_both_ways(self, client: socket.socket, upstream: socket.socket, entry: Egress | None) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(client, selectors.EVENT_READ, upstream)
            selector.register(upstream, selectors.EVENT_READ, client)
            open_sides = 2
            while open_sides and not self._stopping.is_set():
                events = selector.select(self.idle_timeout)
                if not events:
                    if entry is not None:
                        self.egress.update(entry, outcome="idle timeout")
                    return
                for key, _ in events:
                    source, sink = key.fileobj, key.data
                    assert isinstance(source, socket.socket)
                    try:
                        data = source.recv(PIECE)
                    except OSError:  # reset: the whole relay is over
                        return
                    if not data:
                        selector.unregister(source)
                        open_sides -= 1
                        _shut(sink, socket.SHUT_WR)
                        continue
                    try:
                        sink.sendall(data)
                    except OSError:
                        return
                    if entry is not None:
                        self._count(entry, data, toward_host=source is client)

    def _count(self, entry: Egress, data: bytes, *, toward_host: bool) -> None:
        if toward_host:
            self.egress.add_bytes(entry, sent=len(data))
            return
        if entry.method != "CONNECT" and entry.bytes_received == 0:
            found = re.match(rb"HTTP/1\.[01] (\d{3})", data)
            if found:
                self.egress.update(entry, status=int(found.group(1)))
        self.egress.add_bytes(entry, received=len(data))


def _drain(sock: socket.socket, limit: int = PIECE) -> None:
    """Read and drop what the client still sends, up to ``limit`` bytes or its end (or a timeout)."""
    try:
        while limit > 0 and (piece := sock.recv(min(PIECE, limit))):
            limit -= len(piece)
    except OSError:  # nothing more for now (non-blocking), a timeout or a reset
        pass


def _shut(sock: socket.socket, how: int = socket.SHUT_RDWR) -> None:
    try:
        sock.shutdown(how)
    except OSError:  # already closed or never connected
        pass
