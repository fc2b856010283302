"""Proof that the window's routed browsers reach this inspector, for "Open app" and the opt-out check.

A check that saw nothing only passes when a request *would* have arrived. The
window can prove that for a browser it started itself (with a DevTools port):
a route probe (:mod:`mockserver.serving.probe`) is loaded in that browser's page and
must reach this inspector. Probes are answered and never recorded, so they
never count and never show in the table.

Everything here that talks to a browser runs as a :class:`~inspector.jobs.Job`
on the window's thread pool; results come back through the job's signals.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from PySide6.QtCore import QThreadPool

from inspector.jobs import Job, ProgressFn
from mockserver.reach.browser import (
    BrowserError,
    BrowserNotFound,
    BrowserProcess,
    RouteCheck,
    launch_routed_browser,
    prove_and_open,
)
from mockserver.records.egress import OtherRequest
from mockserver.serving.egress import EgressLog
from mockserver.serving.probe import UNPROVEN

WaitSeen = Callable[[str, float], bool]

IN_PAGE = "the routed browser's page"
NO_BROWSER = ("no browser opened by this window is running; the window can prove the route only through a "
              "browser it started")


@dataclass(frozen=True)
class Launched:
    """What "Open app in routed browser" did: the browser, and how proving its route went."""

    browser: BrowserProcess
    route: RouteCheck


def probe_waiter(server: object) -> WaitSeen | None:
    """``wait_seen(nonce, seconds)`` of ``server``'s probe log, or None when it has none (a stand-in)."""
    app = getattr(server, "app", None)
    probes = getattr(app, "extensions", {}).get("probes") if app is not None else None
    return probes.wait if probes is not None else None


class RouteProver:
    """Starts and proves the window's routed browsers.

    ``browsers`` is the window's list of browsers it started (guarded by ``lock``);
    ``waiter()`` gives the current server's ``wait_seen``, or None when there is none;
    ``egress()`` the server's proxy log (None without one), for :meth:`other_requests`.
    """

    def __init__(self, pool: QThreadPool, browsers: list[BrowserProcess], lock: threading.Lock,
                 waiter: Callable[[], WaitSeen | None], egress: Callable[[], EgressLog | None] = lambda: None
                 ) -> None:
        self.pool = pool
        self._browsers = browsers
        self._lock = lock
        self._waiter = waiter
        self._egress = egress

    def other_requests(self, since: str) -> list[OtherRequest]:
        """The other hosts contacted since ``since`` (an ISO time): by the pages of the browsers this
        window started (closed ones included), and through the server's proxy. Oldest first."""
        with self._lock:
            browsers = list(self._browsers)
        found = [r for b in browsers for r in b.other_requests() if (r.at or "") >= since]
        log = self._egress()
        if log is not None:
            found += log.other_requests(since)
        return sorted(found, key=lambda r: r.at or "")

    def live_browsers(self) -> list[BrowserProcess]:
        """The browsers this window started that are still running, newest first."""
        with self._lock:
            return [b for b in reversed(self._browsers) if b.running()]

    def launch(self, url: str, https_port: int, pin: str, host: str, *, http_port: int | None = None,
               ca_pem: Callable[[], bytes] | None = None) -> Job:
        """A job (not started) that opens an empty routed tab, proves the route there, then opens ``url``.

        ``http_port`` and ``ca_pem`` (the CA certificate's PEM) route a Firefox. Its result is a
        :class:`Launched`; the app is opened only once the route is proven.
        """
        wait_seen = self._waiter()

        def work(_progress: ProgressFn) -> Launched:
            browser = launch_routed_browser(None, https_port, pin, host=host, remote_debugging=True,
                                            http_port=http_port, ca_pem=ca_pem)
            with self._lock:
                self._browsers.append(browser)  # stopped on quit, even if the window closes first
            with contextlib.suppress(BrowserError):  # without it the app still opens; only the listing is lost
                browser.watch_network(own_hosts=frozenset({urlsplit(url).hostname or ""}))
            if wait_seen is None:
                return Launched(browser, RouteCheck(False, f"{UNPROVEN} (this inspector cannot see probes)"))
            return Launched(browser, prove_and_open(browser, wait_seen, url))

        return Job("Open routed browser", work, expected=(BrowserNotFound, BrowserError))

    def prove(self) -> Job | None:
        """A started job proving the route in every live browser's current page; None when there is none.

        Its result is a :class:`~mockserver.reach.browser.RouteCheck`: proven when each proved it;
        ``browser_closed`` when every one closed before it could be proven.
        """
        browsers = self.live_browsers()
        wait_seen = self._waiter()
        if not browsers:
            return None

        def work(_progress: ProgressFn) -> RouteCheck:
            if wait_seen is None:
                return RouteCheck(False, f"{UNPROVEN} (this inspector cannot see probes)")
            outcome = RouteCheck(False, "not proven: the browser closed first", browser_closed=True)
            for browser in browsers:
                check = prove_and_open(browser, wait_seen, where=IN_PAGE, page_policy=True)
                if not check.proven and not check.browser_closed:
                    return check
                if check.proven:
                    outcome = check
            return outcome

        return Job("Prove route", work).start(self.pool)

