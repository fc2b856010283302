"""What the scoped proxy knows besides telemetry: the other hosts it relayed, and its own tunnels.

:class:`EgressLog` lists every connection the proxy passed through to a host other than
telemetry.refine.dev (bounded, newest kept). :class:`ProxiedConnections` remembers the
connections the proxy itself opened to the inspector's listeners, so that a request
arriving on one of them is recorded as having come through the proxy (``client.via_proxy``).
Both are plain Python, read from any thread.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from mockserver.core.clock import iso_utc, utc_now
from mockserver.records.egress import OtherRequest, is_browser_service, leaves_machine

EGRESS_KEPT = 1000  # entries kept; the oldest go first


@dataclass
class Egress:
    """One connection the proxy relayed to another host, never decrypted.

    ``method`` is ``CONNECT`` for a tunnel, else the forwarded request's method (``url`` is
    then its absolute URL, query included: front ends decide what to show). ``outcome`` is
    ``open`` while it lasts, then ``closed``, ``idle timeout`` or ``failed: <why>``.
    ``bytes_sent`` went from the client to the host, ``bytes_received`` came back.
    """

    host: str
    port: int
    method: str
    started_at: str
    client: str
    url: str | None = None
    status: int | None = None  # the forwarded request's answer (None for tunnels)
    bytes_sent: int = 0
    bytes_received: int = 0
    outcome: str = "open"
    ended_at: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Its JSON form."""
        return {"host": self.host, "port": self.port, "method": self.method, "url": self.url,
                "status": self.status, "client": self.client, "started_at": self.started_at,
                "ended_at": self.ended_at, "bytes_sent": self.bytes_sent,
                "bytes_received": self.bytes_received, "outcome": self.outcome}

    def as_other_request(self, browser: bool = False) -> OtherRequest:
        """This entry as one of the other hosts listed beside a verdict (source ``proxy``).

        A tunnel that opened has no HTTP status (its bytes are never read): its answer is
        ``tunneled``, with how it ended when that was not a plain close.
        """
        authority = f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"
        failure = self.outcome.removeprefix("failed: ") if self.outcome.startswith("failed: ") else None
        answer = None
        if failure is None and self.method == "CONNECT":
            answer = "tunneled" if self.outcome == "closed" else f"tunneled ({self.outcome})"
        return OtherRequest(self.method, self.url or authority, self.host, "proxy", status=self.status,
                            failure=failure, at=self.started_at, answer=answer,
                            browser_own=browser and is_browser_service(self.host))


class EgressLog:
    """The proxy's other hosts, newest last, at most ``keep`` of them."""

    def __init__(self, keep: int = EGRESS_KEPT) -> None:
        self._entries: deque[Egress] = deque(maxlen=keep)
        self._lock = threading.Lock()
        self._listener: Callable[[Egress], None] | None = None

    def listen(self, callback: Callable[[Egress], None] | None) -> None:
        """Call ``callback`` with a copy of each entry as it closes (None: stop). It runs on the proxy's
        connection thread: it must be quick."""
        self._listener = callback

    def open(self, host: str, port: int, method: str, client: str, url: str | None = None) -> Egress:
        """A new entry (outcome ``open``), listed at once; the proxy updates it through :meth:`update`."""
        entry = Egress(host=host, port=port, method=method, url=url, client=client, started_at=iso_utc(utc_now()))
        with self._lock:
            self._entries.append(entry)
        return entry

    def update(self, entry: Egress, **changes: Any) -> None:
        """Change ``entry``'s fields under the log's lock (``bytes_sent``, ``outcome``...)."""
        with self._lock:
            for name, value in changes.items():
                setattr(entry, name, value)

    def add_bytes(self, entry: Egress, sent: int = 0, received: int = 0) -> None:
        """Count bytes relayed on ``entry``."""
        with self._lock:
            entry.bytes_sent += sent
            entry.bytes_received += received

    def close(self, entry: Egress, outcome: str = "closed") -> None:
        """Mark ``entry`` finished (an entry already failed keeps its outcome)."""
        with self._lock:
            if entry.outcome == "open":
                entry.outcome = outcome
            entry.ended_at = iso_utc(utc_now())
            closed = replace(entry)
        listener = self._listener
        if listener is not None:
            listener(closed)

    def entries(self) -> list[Egress]:
        """Copies of every entry kept, oldest first (safe to read while the proxy goes on)."""
        with self._lock:
            return [replace(entry) for entry in self._entries]

    def other_requests(self, since: str | None = None, *, browser: bool = False) -> list[OtherRequest]:
        """The entries to hosts off this machine (loopback is the app talking to itself), as the
        other hosts listed beside a verdict; ``since`` (an ISO time) keeps the later ones only.
        ``browser``: every client of this proxy is a browser, so its own services are marked as such
        (for any other client they are the program's requests, and count)."""
        return [entry.as_other_request(browser) for entry in self.entries()
                if leaves_machine(entry.host) and (since is None or entry.started_at >= since)]

    def clear(self) -> None:
        """Forget every entry."""
        with self._lock:
            self._entries.clear()


class ProxiedConnections:
    """The proxy's own connections to the inspector's listeners, by their addresses.

    The key is what the listener sees as the peer (address and port) and its own port: on
    loopback no two live TCP connections share it. Entries live as long as the connection.
    """

    def __init__(self) -> None:
        self._routes: dict[tuple[str, int, int], str] = {}
        self._lock = threading.Lock()

    def add(self, peer: tuple[str, int], listener_port: int, note: str) -> None:
        """Remember that the connection from ``peer`` to ``listener_port`` is the proxy's ``note``."""
        with self._lock:
            self._routes[(peer[0], peer[1], listener_port)] = note

    def remove(self, peer: tuple[str, int], listener_port: int) -> None:
        """Forget a connection (it has closed)."""
        with self._lock:
            self._routes.pop((peer[0], peer[1], listener_port), None)

    def lookup(self, environ: Mapping[str, Any]) -> str | None:
        """The note for a WSGI request that came through the proxy, else None."""
        if not self._routes:  # no proxy running: the hot path's usual case
            return None
        try:
            key = (str(environ.get("REMOTE_ADDR")), int(environ.get("REMOTE_PORT", 0)),
                   int(environ.get("SERVER_PORT", 0)))
        except (TypeError, ValueError):
            return None
        with self._lock:
            return self._routes.get(key)


PROXIED = ProxiedConnections()  # one per process: every proxy registers here, every app looks here
