"""pytest plugin: the ``refine_telemetry`` fixture for your own browser tests.

Installed with the package (entry point ``pytest11``/``refine_telemetry``), so
any test can ask for it::

    from playwright.sync_api import sync_playwright

    def test_opt_out_sends_nothing(refine_telemetry):
        with sync_playwright() as p:
            browser = p.chromium.launch(args=refine_telemetry.chromium_args)
            page = browser.new_page()
            page.goto("http://localhost:5173/")
            refine_telemetry.assert_none(within=3, page=page)  # proves the route first

``assert_none`` only means something when the page's requests do reach the
mock: with ``page=`` (a Playwright page or a Selenium WebDriver) it first
loads a probe image through the page (:meth:`RefineTelemetry.probe`) and
fails when that does not arrive. Without a page it cannot prove the route and
says so with a :class:`RouteUnprovenWarning` (``-W error::mockserver.pytest_plugin.RouteUnprovenWarning``
makes that a failure).

One mock per test session (in-memory journal, free loopback ports, a private
certificate in a temporary folder); each test sees only the requests that
arrived after it asked for the fixture. Disable with ``-p no:refine_telemetry``.
"""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from mockserver.core.beacon import Beacon
from mockserver.core.routing import chromium_routing_flags
from mockserver.core.text import plural
from mockserver.records.advice import advice_for_all
from mockserver.serving.probe import PROBE_FUNCTION, PROBE_WAIT, RouteNotProven, probe_url, prove_route
from mockserver.serving.server import InspectorServer
from mockserver.storage.store import BeaconStore, StoreEvent


class RouteUnprovenWarning(UserWarning):
    """``assert_none()`` passed without a page, so nothing proved that the app's requests reach the mock."""


def _load_probe_in(page: Any, nonce: str) -> str:
    """Load the probe image in a Playwright page (``evaluate``) or a Selenium WebDriver; "load" or "error"."""
    url = probe_url(nonce)
    if hasattr(page, "evaluate"):
        return str(page.evaluate(PROBE_FUNCTION, url))
    if hasattr(page, "execute_async_script"):
        script = f"const done = arguments[arguments.length - 1]; ({PROBE_FUNCTION})(arguments[0]).then(done);"
        return str(page.execute_async_script(script, url))
    raise TypeError(f"probe() wants a Playwright page or a Selenium WebDriver, got {type(page).__name__}")


def _describe(beacons: list[Beacon]) -> str:
    from mockserver.records.lines import format_line

    return "\n".join("  " + format_line(b) for b in beacons) or "  (none)"


class RefineTelemetry:
    """A running mock of telemetry.refine.dev, seen from one test.

    Attributes: ``http_url``, ``https_url``, ``https_port``, ``spki_pin``,
    ``ca_cert`` (the CA file: ``NODE_EXTRA_CA_CERTS`` or a trust store),
    ``chromium_args`` (the routing flags), ``proxy_url`` (the scoped proxy, for clients routed by a
    proxy setting: Playwright's ``proxy={"server": …}``, ``HTTPS_PROXY``). ``beacons`` are the captured
    requests as dicts in the record's JSON form (README, "The record");
    ``records`` are the same as :class:`~mockserver.core.beacon.Beacon` objects.
    """

    def __init__(self, server: InspectorServer, store: BeaconStore) -> None:
        assert server.listening and server.listening.https_port and server.listening.spki_pin
        assert server.certificate is not None
        self._server = server
        self._store = store
        self.http_url: str = server.listening.http_url
        self.https_url: str = server.listening.https_url or ""
        self.https_port: int = server.listening.https_port
        self.spki_pin: str = server.listening.spki_pin
        self.ca_cert: Path = server.certificate.ca_cert
        self.proxy_url: str | None = server.listening.proxy_url
        self._since = store.last_id()
        self._route_proven = False  # set by probe(): assert_none() then needs no page

    @property
    def chromium_args(self) -> list[str]:
        """Flags for Chrome/Chromium/Edge (Playwright ``launch(args=…)``, Selenium ``add_argument``).

        Only the routing: ``--host-resolver-rules`` and ``--ignore-certificate-errors-spki-list``.
        Chromium honours the pin only with a ``--user-data-dir``, which Playwright
        always passes; for a hand-started Chromium add one (and ``--no-sandbox`` as root).
        """
        return chromium_routing_flags(self.https_port, self.spki_pin)

    def node_env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """Environment for a Node child process routed here (preload + ``NODE_EXTRA_CA_CERTS``)."""
        import os

        from mockserver.reach.noderun import routed_node_env

        listening = self._server.listening
        assert listening is not None
        return routed_node_env(os.environ if base is None else base, https_port=self.https_port,
                               http_port=listening.port, ca_file=self.ca_cert)

    @property
    def records(self) -> list[Beacon]:
        """Requests captured since this test started, oldest first, as Beacon objects."""
        return self._store.query(since=self._since)

    @property
    def beacons(self) -> list[dict[str, Any]]:
        """Requests captured since this test started, oldest first, as JSON-form dicts."""
        return [b.to_dict() for b in self.records]

    def clear(self) -> None:
        """Forget what arrived so far: later calls see only newer requests."""
        self._since = self._store.last_id()

    def _wait(self, done: Any, timeout: float) -> None:
        arrived = threading.Event()

        def on_event(event: StoreEvent) -> None:
            if event.type == "appended":
                arrived.set()

        unsubscribe = self._store.subscribe(on_event)
        try:
            deadline = time.monotonic() + timeout
            while not done():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                arrived.wait(min(remaining, 0.5))
                arrived.clear()
        finally:
            unsubscribe()

    def _carrying(self) -> int:
        """Requests since the test started that carry data (a CORS preflight is part of its request)."""
        return self._store.count(since=self._since) - self._store.count(since=self._since, kind="preflight")

    def wait_for(self, count: int = 1, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Wait until at least ``count`` requests that carry data arrived since the test started.

        Returns every record since then (dicts), CORS preflights included (kind
        ``preflight``, not counted). Raises AssertionError (listing what did
        arrive) after ``timeout`` seconds.
        """
        self._wait(lambda: self._carrying() >= count, timeout)
        records = self.records
        carrying = sum(1 for b in records if b.kind != "preflight")
        if carrying < count:
            raise AssertionError(f"expected {plural(count, 'request')} to telemetry.refine.dev within {timeout:g} s, "
                                 f"got {carrying}:\n{_describe(records)}")
        return [b.to_dict() for b in records]

    def probe(self, page: Any, timeout: float = PROBE_WAIT) -> None:
        """Prove that ``page`` (Playwright page or Selenium WebDriver) reaches this mock through its routing.

        Loads ``https://telemetry.refine.dev/__route-probe/<nonce>.gif`` in the page and waits
        for it here. The probe is not a record: ``beacons``, ``records`` and counts never show it.
        Raises AssertionError saying why when it does not arrive within ``timeout`` seconds.
        """
        probes = self._server.app.extensions["probes"]
        try:
            prove_route(lambda nonce: _load_probe_in(page, nonce), probes.wait, where="the page", timeout=timeout)
        except RouteNotProven as exc:
            raise AssertionError(f"the route to the mock is not proven: {exc}") from None
        self._route_proven = True

    def assert_none(self, within: float = 2.0, page: Any = None) -> None:
        """Assert that nothing was sent since the test started, watching ``within`` more seconds.

        With ``page`` it first proves the route (:meth:`probe`): an unrouted browser sends
        refine's beacon elsewhere and would pass. Without one, and without an earlier
        :meth:`probe` in this test, a pass warns (RouteUnprovenWarning).
        Fails at once when a request arrives, listing it and how refine is really opted out.
        """
        if page is not None:
            self.probe(page)
        self._wait(lambda: self._store.count(since=self._since) > 0, within)
        records = self.records
        if records:
            raise AssertionError(f"expected no request to telemetry.refine.dev, got {len(records)}:\n"
                                 f"{_describe(records)}\n" + "\n".join(advice_for_all(records)))
        if not self._route_proven:
            warnings.warn(RouteUnprovenWarning(
                "assert_none() passed without page=: nothing proved that the app's requests reach the mock "
                "(an unrouted browser passes too); pass page= or call refine_telemetry.probe(page) first"),
                stacklevel=2)


@pytest.fixture(scope="session")
def refine_telemetry_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InspectorServer]:
    """The session's mock: in-memory journal, free loopback ports, private certificate, the scoped proxy."""
    store = BeaconStore(":memory:")
    server = InspectorServer(store, port=0, https_port=0, proxy_port=0,
                             certificate_dir=tmp_path_factory.mktemp("refine-telemetry-tls"))
    server.start()
    try:
        yield server
    finally:
        server.stop()
        store.close()


@pytest.fixture(scope="session")
def refine_telemetry_chromium_args(refine_telemetry_server: InspectorServer) -> list[str]:
    """The routing flags, session-scoped (for pytest-playwright's ``browser_type_launch_args``)."""
    listening = refine_telemetry_server.listening
    assert listening is not None and listening.https_port and listening.spki_pin
    return chromium_routing_flags(listening.https_port, listening.spki_pin)


@pytest.fixture
def refine_telemetry(refine_telemetry_server: InspectorServer) -> RefineTelemetry:
    """The mock of telemetry.refine.dev, showing only what this test's app sends."""
    return RefineTelemetry(refine_telemetry_server, refine_telemetry_server.store)
