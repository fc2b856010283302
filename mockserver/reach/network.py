"""The other hosts a page in a routed Chromium contacts, from its DevTools Network events.

A second DevTools connection to the first tab, held on a thread of its own for the browser's
life: ``Network.enable`` on the page and, through flattened auto-attach, on every frame and
worker it starts (a cross-site iframe runs in its own process and reports on its own session).
Each request to a host other than telemetry.refine.dev, the app's own host and loopback becomes
an :class:`~mockserver.records.egress.OtherRequest` once it is answered or fails. Only the
page's requests are seen: the browser's own background traffic never shows up here.
"""

from __future__ import annotations

import threading
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mockserver.core.clock import iso_utc, utc_now
from mockserver.core.config import REFINE_HOST
from mockserver.reach.cdp import DevToolsConnection, DevToolsError
from mockserver.records.egress import OtherRequest, leaves_machine

KEPT = 2000  # requests listed; a page that makes more is still judged, the rest are counted
_AUTO_ATTACH = {"autoAttach": True, "waitForDebuggerOnStart": True, "flatten": True}
_LISTED_SCHEMES = ("http", "https", "ws", "wss")


@dataclass
class _Pending:
    method: str
    url: str
    host: str
    at: str


def request_host(url: str) -> str | None:
    """The host of an http(s)/ws(s) URL, lower-case, or None for any other scheme (data:, blob:…)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in _LISTED_SCHEMES:
        return None
    try:
        return (parts.hostname or "").rstrip(".") or None
    except ValueError:
        return None


def _status(value: object) -> int | None:
    """An HTTP status from an event, or None when it is not a plausible one."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 100 <= value <= 999:
        return None
    return int(value)


class NetworkWatch:
    """Collects the page's other requests; start with :meth:`start`, read with :meth:`requests`.

    ``own_hosts``: the app's hosts (the URL being checked), left off the list.
    ``on_request`` is called on the watch's thread with each finished request.
    """

    def __init__(self, ws_url: str, *, own_hosts: frozenset[str] = frozenset(),
                 on_request: Callable[[OtherRequest], None] | None = None, timeout: float = 10.0) -> None:
        self.ws_url = ws_url
        self.own_hosts = frozenset(h.lower() for h in own_hosts)
        self.on_request = on_request
        self.timeout = timeout
        self.dropped = 0  # finished requests beyond KEPT
        self.error: str | None = None  # why the watch ended early, if it did
        self._pending: dict[tuple[str, str], _Pending] = {}
        self._done: list[OtherRequest] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._connection: DevToolsConnection | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> NetworkWatch:
        """Connect and enable the Network domain; returns once the page is being watched.

        Raises :class:`~mockserver.reach.cdp.DevToolsError` or TimeoutError when it cannot.
        """
        self._connection = DevToolsConnection(self.ws_url, self.timeout)
        try:
            self._connection.call("Network.enable", {}, self.timeout)
            self._connection.call("Target.setAutoAttach", _AUTO_ATTACH, self.timeout)
        except BaseException:
            self._connection.close()
            raise
        self._thread = threading.Thread(target=self._run, name="devtools-network", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        assert self._connection is not None
        try:
            while not self._stop.is_set():
                try:
                    message = self._connection.next_message(0.25)
                except TimeoutError:
                    continue
                except DevToolsError as exc:  # the browser went away: keep what was seen
                    if not self._stop.is_set():
                        self.error = str(exc)
                    return
                try:
                    self._handle(message)
                except DevToolsError:  # a closing browser may refuse the follow-up commands
                    continue
                except (TypeError, ValueError, OverflowError) as exc:  # one odd event must not end the watch
                    self.error = f"an unreadable network event: {exc}"
        finally:
            # Frames wait for this watcher before they run (waitForDebuggerOnStart): once it stops
            # reading, its connection must go, so that the browser lets them run by themselves.
            self._connection.close()

    def _handle(self, message: dict[str, Any]) -> None:
        method = message.get("method")
        params = message.get("params")
        if not isinstance(method, str) or not isinstance(params, dict):
            return  # an answer to one of our commands
        session = str(message.get("sessionId") or "")
        if method == "Target.attachedToTarget":
            self._attach(str(params.get("sessionId") or ""))
        elif method == "Network.requestWillBeSent":
            self._sent(session, params)
        elif method == "Network.responseReceived":
            response = params.get("response")
            status = response.get("status") if isinstance(response, dict) else None
            self._finish(session, params, status=_status(status))
        elif method == "Network.loadingFailed":
            reason = params.get("blockedReason") or params.get("errorText") or "failed"
            self._finish(session, params, failure=str(reason))

    def _attach(self, session: str) -> None:
        """A frame or worker of the page started: watch it too, then let it run."""
        if not session or self._connection is None:
            return
        self._connection.post("Network.enable", {}, session)
        self._connection.post("Target.setAutoAttach", _AUTO_ATTACH, session)
        self._connection.post("Runtime.runIfWaitingForDebugger", {}, session)

    def _sent(self, session: str, params: dict[str, Any]) -> None:
        request = params.get("request")
        if not isinstance(request, dict):
            return
        key = (session, str(params.get("requestId")))
        redirect = params.get("redirectResponse")
        if isinstance(redirect, dict):  # the same id goes on to a new URL: the last hop is finished
            self._finish(session, params, status=_status(redirect.get("status")))
        url = str(request.get("url", ""))
        host = request_host(url)
        if host is None or host == REFINE_HOST or host in self.own_hosts or not leaves_machine(host):
            return
        with self._lock:
            self._pending[key] = _Pending(str(request.get("method", "GET")), url, host, iso_utc(utc_now()))

    def _finish(self, session: str, params: dict[str, Any], *, status: int | None = None,
                failure: str | None = None) -> None:
        with self._lock:
            pending = self._pending.pop((session, str(params.get("requestId"))), None)
        if pending is not None:
            self._add(OtherRequest(pending.method, pending.url, pending.host, "browser", status=status,
                                   failure=failure, at=pending.at))

    def _add(self, request: OtherRequest) -> None:
        with self._lock:
            if len(self._done) >= KEPT:
                self.dropped += 1
                return
            self._done.append(request)
        if self.on_request is not None:
            self.on_request(request)

    def requests(self) -> list[OtherRequest]:
        """Every other request seen so far, oldest first; one still waiting for its answer is
        listed as it stands (``no answer``)."""
        with self._lock:
            waiting = [OtherRequest(p.method, p.url, p.host, "browser", at=p.at) for p in self._pending.values()]
            return [*self._done, *waiting]

    def stop(self) -> None:
        """End the watch and close its connection (the browser keeps running)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        elif self._connection is not None:
            self._connection.close()
