"""Shared test setup: offscreen Qt, a private data folder, real servers.

Qt must never need a display: the platform is set here, before anything
imports Qt, so the suite does not depend on the caller's environment.
"""

from __future__ import annotations

import os
import tempfile

os.environ["QT_QPA_PLATFORM"] = "offscreen"
# Never touch the user's real database or certificate.
os.environ["TELEMETRY_INSPECTOR_HOME"] = tempfile.mkdtemp(prefix="telemetry-inspector-tests-")
os.environ.pop("TELEMETRY_INSPECTOR_DB", None)

import pytest

from mockserver.server import InspectorServer
from mockserver.store import BeaconStore
from tests.helpers import Journal


@pytest.fixture
def store():
    """An in-memory journal."""
    s = BeaconStore(":memory:")
    yield s
    s.close()


@pytest.fixture
def client(store):
    """Flask's test client over a fresh in-memory journal."""
    from mockserver.app import create_app

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
def journal(live_server):
    """A client of the live server's journal API, with wait_for / ensure_not_logged."""
    return Journal(live_server.listening.http_url)
