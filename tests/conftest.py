"""Shared test setup: offscreen Qt, a private data folder, real servers.

Qt must never need a display: the platform is set here, before anything
imports Qt, so the suite does not depend on the caller's environment.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import tempfile

os.environ["QT_QPA_PLATFORM"] = "offscreen"
# Never touch the user's real database or certificate.
os.environ["TELEMETRY_INSPECTOR_HOME"] = tempfile.mkdtemp(prefix="telemetry-inspector-tests-")
os.environ.pop("TELEMETRY_INSPECTOR_DB", None)

import pytest

from mockserver.reach.browser import FIREFOX_PATH_NAMES, BrowserNotFound, firefox_candidates, locate_browser
from mockserver.serving.server import InspectorServer
from mockserver.storage.store import BeaconStore
from tests.support.helpers import Journal
from tests.support.serve import pytest_runtest_makereport, serve_process  # noqa: F401 - a hook and a fixture for every test

TESTS = pathlib.Path(__file__).resolve().parent
MARKER_BY_FOLDER = {"e2e": "e2e", "gui": "gui", "reliability": "reliability"}
SLOW_MODULES = {"test_bench.py"}
E2E_FIXTURES = {"chromium", "firefox", "node_fetch_installed"}  # a real browser; the npm-installed node-fetch


def markers_for(path: pathlib.Path, fixturenames: tuple[str, ...] | list[str]) -> list[str]:
    """The markers (registered in pyproject.toml) a test gets from its folder, its module and its fixtures."""
    try:
        parts = path.resolve().relative_to(TESTS).parts
    except ValueError:  # not one of ours (a pytester run, say)
        return []
    names = [MARKER_BY_FOLDER[parts[0]]] if len(parts) > 1 and parts[0] in MARKER_BY_FOLDER else []
    if parts[-1] in SLOW_MODULES:
        names.append("slow")
    if E2E_FIXTURES.intersection(fixturenames) and "e2e" not in names:
        names.append("e2e")
    return names


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test by where it lives, so a subset runs by marker (``-m "not e2e"``)."""
    for item in items:
        for name in markers_for(item.path, getattr(item, "fixturenames", ())):
            item.add_marker(name)


@pytest.fixture
def store():
    """An in-memory journal."""
    s = BeaconStore(":memory:")
    yield s
    s.close()


@pytest.fixture
def client(store):
    """Flask's test client over a fresh in-memory journal."""
    from mockserver.serving.app import create_app

    return create_app(store).test_client()


@pytest.fixture(scope="session")
def certificate_dir(tmp_path_factory):
    """One local CA for the whole run (keeps the suite fast)."""
    return tmp_path_factory.mktemp("tls")


@pytest.fixture
def live_server(store, certificate_dir):
    """The real mock on free loopback ports, HTTP and HTTPS."""
    server = InspectorServer(store, port=0, https_port=0, certificate_dir=certificate_dir)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def proxied(store, certificate_dir):
    """The mock with its scoped proxy, on free loopback ports."""
    server = InspectorServer(store, port=0, https_port=0, proxy_port=0, certificate_dir=certificate_dir)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def journal(live_server):
    """A client of the live server's journal API, with wait_for / ensure_not_logged."""
    return Journal(live_server.listening.http_url)


@pytest.fixture(scope="session")
def chromium() -> str:
    """A real Chrome/Chromium to drive (skips the test when none is installed)."""
    try:
        found = locate_browser()
    except BrowserNotFound as exc:
        pytest.skip(f"needs Chrome/Chromium (scripts/install-test-deps installs it): {exc}")
    if found.family != "chromium":  # the search falls back to Firefox when there is no Chromium
        pytest.skip(f"needs Chrome/Chromium (scripts/install-test-deps installs it); found only {found.executable}")
    return found.executable


@pytest.fixture(scope="session")
def firefox() -> str:
    """A real Firefox to drive, with certutil to give it the inspector's CA (skips the test otherwise)."""
    found = [shutil.which(name) for name in FIREFOX_PATH_NAMES] + firefox_candidates()
    executable = next((path for path in found if path and os.access(path, os.X_OK)), None)
    if executable is None:
        pytest.skip("needs Firefox (scripts/install-test-deps installs firefox-esr)")
    if shutil.which("certutil") is None:
        pytest.skip("needs certutil (scripts/install-test-deps installs libnss3-tools)")
    return executable
