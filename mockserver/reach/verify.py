"""What ``telemetry-inspector verify URL`` does: load a page in a routed headless browser, judge what it sent.

QA's question "does opting out really send nothing?" as one command with an
exit status: 0 pass, 1 fail, 2 could not run (no browser, the URL does not
answer, bad arguments). The URL is checked before anything starts, so an app
that is not running can never "pass" ``--expect none`` by sending nothing.
"""

from __future__ import annotations

import math
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mockserver.core.beacon import Beacon
from mockserver.core.text import plural
from mockserver.reach.browser import (
    BrowserError,
    BrowserNotFound,
    BrowserProcess,
    check_url,
    launch_routed_browser,
    locate_browser,
)
from mockserver.reach.remote import RemoteError, RemoteInspector
from mockserver.records.egress import OtherRequest
from mockserver.records.verdict import (
    Expectation,
    FieldCheck,
    Verdict,
    judge,
)
from mockserver.serving.probe import UNPROVEN, RouteNotProven
from mockserver.serving.server import InspectorServer, ServerError
from mockserver.storage.store import BeaconStore, StoreError

POLL_SECONDS = 0.2


class CouldNotRun(Exception):
    """The check could not be made (exit 2); the message is one line."""


@dataclass
class VerifyResult:
    """What a finished check found."""

    url: str
    verdict: Verdict
    load_seconds: float
    browser: str
    seconds: float
    server: str  # where the requests were captured
    notes: list[str] = field(default_factory=list)
    route_proof: str = ""  # how the route to the inspector was proven (it always is, or CouldNotRun)


class _Source:
    """Where captured requests are read from: our own in-memory mock, or a running inspector."""

    def __init__(self, server_url: str | None, token: str | None = None) -> None:
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.store: BeaconStore | None = None
        self.server: InspectorServer | None = None
        self.remote: RemoteInspector | None = None
        if server_url:
            try:
                self.remote = RemoteInspector.connect(server_url, token=token)
            except RemoteError as exc:
                raise CouldNotRun(str(exc)) from exc
            self.https_port, self.spki_pin, self.host = (self.remote.https_port, self.remote.spki_pin,
                                                         self.remote.host)
            self.http_port: int | None = self.remote.http_port
            self.ca_pem: Callable[[], bytes] = self.remote.ca_pem  # asked only for a Firefox
            self.where = self.remote.base_url
            return
        # A private certificate per run: nothing of the user's is touched, and
        # parallel runs (CI jobs) never race on one certificate folder.
        self._tmp = tempfile.TemporaryDirectory(prefix="telemetry-inspector-verify-")
        try:
            self.store = BeaconStore(":memory:")
            self.server = InspectorServer(self.store, port=0, https_port=0, certificate_dir=Path(self._tmp.name))
            listening = self.server.start()
        except (StoreError, ServerError) as exc:
            self.close()
            raise CouldNotRun(f"cannot start the mock: {exc}") from exc
        assert listening.https_port and listening.spki_pin and self.server.certificate
        self.https_port, self.spki_pin, self.host = listening.https_port, listening.spki_pin, "127.0.0.1"
        self.http_port, self.ca_pem = listening.port, self.server.certificate.ca_cert.read_bytes
        self.where = f"{listening.https_url} (own mock, in memory)"

    def last_id(self) -> int:
        if self.remote is not None:
            try:
                return self.remote.last_id()
            except RemoteError as exc:
                raise CouldNotRun(f"cannot read the inspector's journal: {exc}") from exc
        assert self.store is not None
        return self.store.last_id()

    def since(self, last: int) -> list[Beacon]:
        if self.remote is not None:
            try:
                return self.remote.beacons(since=last)
            except RemoteError as exc:
                raise CouldNotRun(f"lost the inspector: {exc}") from exc
        assert self.store is not None
        return self.store.query(since=last)

    def probe_seen(self, nonce: str, timeout: float) -> bool:
        if self.remote is not None:
            try:
                return self.remote.probe_seen(nonce, timeout)
            except RemoteError as exc:
                raise CouldNotRun(f"{UNPROVEN} ({exc})") from exc
        assert self.server is not None
        return bool(self.server.app.extensions["probes"].wait(nonce, timeout))

    def close(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None
        if self.store is not None:
            self.store.close()
            self.store = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


def run_verify(url: str, *, expectation: Expectation, fields: Sequence[FieldCheck] = (),
               within: float, server_url: str | None = None, browser: str | None = None,
               load_timeout: float, progress: Callable[[str], None] = lambda _: None,
               on_beacon: Callable[[Beacon], None] = lambda _: None,
               on_other: Callable[[OtherRequest], None] = lambda _: None,
               server_token: str | None = None, egress: str = "any") -> VerifyResult:
    """Load ``url`` in a headless routed browser, wait ``within`` seconds of quiet, judge what arrived.

    The quiet period restarts when a request arrives (capped at
    ``max(3 * within, within + 10)`` seconds after load), so a second beacon
    just after the first is still counted. ``server_token``: the journal token for
    ``server_url`` (see :func:`mockserver.reach.remote.journal_token`). The page's requests to other
    hosts (not the URL's own, not loopback) go into the verdict's ``other_requests``, ``on_other``
    hears each as it finishes, and ``egress="none"`` makes any of them a failure. Raises :class:`CouldNotRun`.
    """
    started = time.monotonic()
    try:
        found = locate_browser(browser)
    except BrowserNotFound as exc:
        raise CouldNotRun(str(exc)) from exc
    executable = found.executable
    reason = check_url(url)
    if reason:
        raise CouldNotRun(reason)
    source = _Source(server_url, server_token)
    routed = None
    try:
        progress(f"capturing at {source.where}")
        try:
            routed = launch_routed_browser("about:blank", source.https_port, source.spki_pin, host=source.host,
                                           browser=found, headless=True, remote_debugging=True,
                                           http_port=source.http_port, ca_pem=source.ca_pem)
        except (BrowserNotFound, BrowserError) as exc:
            raise CouldNotRun(str(exc)) from exc
        progress(f"browser {executable} (headless, temporary profile)")
        try:
            routed.watch_network(own_hosts=frozenset({urllib.parse.urlsplit(url).hostname or ""}), on_request=on_other)
        except BrowserError as exc:
            raise CouldNotRun(str(exc)) from exc
        _prove(routed, source, "the browser's empty tab", page_policy=False)
        last = source.last_id()  # only what arrives from here on counts
        progress(f"loading {url}")
        try:
            load_seconds = routed.load(url, load_timeout)
        except BrowserError as exc:
            raise CouldNotRun(str(exc)) from exc
        _prove(routed, source, f"the page {url}")
        route_proof = (f"route proven: probes loaded in the browser before and after the page loaded "
                       f"reached {source.where}")
        progress(route_proof)
        progress(f"page loaded in {load_seconds:.1f} s; waiting for {within:g} s without requests")
        loaded = last_activity = time.monotonic()
        cap = loaded + max(3 * within, within + 10)
        captured: list[Beacon] = []
        shown_left: int | None = None
        notes: list[str] = []
        while True:
            arrived = source.since(last)
            for beacon in arrived:
                last = max(last, beacon.id or last)
                captured.append(beacon)
                on_beacon(beacon)
            if arrived:
                last_activity = time.monotonic()
            now = time.monotonic()
            if now - last_activity >= within:
                break
            if now >= cap:
                notes.append(f"requests kept arriving; stopped watching {now - loaded:.0f} s after load")
                progress(notes[-1])
                break
            left = math.ceil(within - (now - last_activity))
            if left != shown_left:
                shown_left = left
                progress(f"{plural(len(captured), 'request')} so far; {left} s of quiet to go")
            time.sleep(POLL_SECONDS)
        # Anything committed during the last poll interval still counts.
        for beacon in source.since(last):
            captured.append(beacon)
            on_beacon(beacon)
        verdict = judge(captured, expectation, fields, others=routed.other_requests(), egress=egress)
        return VerifyResult(url=url, verdict=verdict, load_seconds=load_seconds, browser=executable,
                            seconds=time.monotonic() - started, server=source.where, notes=notes,
                            route_proof=route_proof)
    finally:
        if routed is not None:
            routed.stop()
        source.close()


def _prove(routed: BrowserProcess, source: _Source, where: str, *, page_policy: bool = True) -> None:
    """Raise CouldNotRun unless a probe loaded in ``routed``'s page reaches ``source``."""
    try:
        routed.prove_route(source.probe_seen, where=where, page_policy=page_policy)
    except RouteNotProven as exc:
        raise CouldNotRun(f"{UNPROVEN} ({exc})") from exc
