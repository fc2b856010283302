"""Fixtures for the inspector window tests: a real store on disk, a real server, the real window.

The top-level conftest already selects Qt's offscreen platform and a private
TELEMETRY_INSPECTOR_HOME; here every test also gets its own database,
certificate folder and settings file under ``tmp_path``.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from mockserver.server import InspectorServer
from mockserver.store import BeaconStore

CHROME_UA = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
             "Chrome/131.0.0.0 Safari/537.36")
REFERER = "http://localhost:5173/"

REFINE4 = {
    "providers": {"auth": False, "auditLog": False, "live": False, "router": True, "data": True,
                  "i18n": False, "notification": False, "accessControl": False},
    "version": "4.58.0",
    "resourceCount": 2,
}
REFINE5 = {
    "providers": {"auth": True, "auditLog": False, "live": False, "router": True, "data": True,
                  "i18n": True, "notification": False, "accessControl": False},
    "version": "5.0.12",
    "resourceCount": 5,
    "projectId": "3f9c2a7e-demo",
}


def btoa(payload: dict[str, Any]) -> str:
    """``btoa(JSON.stringify(payload))`` as a browser does it (Latin-1 bytes)."""
    return base64.b64encode(json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
                            .encode("latin-1")).decode("ascii")


def send(url: str, *, method: str = "GET", body: bytes | None = None,
         headers: dict[str, str] | None = None) -> int:
    """One real HTTP request over a socket; returns the status (any status)."""
    merged = {"User-Agent": CHROME_UA, "Referer": REFERER, **(headers or {})}
    request = urllib.request.Request(url, data=body, method=method, headers=merged)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as err:
        err.read()
        return err.code


def beacon_url(window, payload: dict[str, Any] | str) -> str:
    """The /telemetry URL of the window's running server for ``payload`` (raw text as given)."""
    encoded = payload if isinstance(payload, str) else btoa(payload)
    return f"{window.server.listening.http_url}/telemetry?payload={encoded}"


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """A database file of the test's own."""
    return tmp_path / "inspector.sqlite3"


@pytest.fixture
def settings(tmp_path: Path):
    """QSettings in a file of the test's own (never the user's)."""
    from PySide6.QtCore import QSettings

    return QSettings(str(tmp_path / "inspector.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def make_window(qtbot, tmp_path: Path, settings):
    """Build real windows over a store at a path, with a server on free ports; all torn down after."""
    from inspector.app import build_window

    made: list[tuple[Any, InspectorServer, BeaconStore]] = []

    def make(path: Path | str, *, port: int = 0, https_port: int | None = 0, start: bool = True,
             theme: str = "light"):
        store = BeaconStore(path)
        server = InspectorServer(store, port=port, https_port=https_port, certificate_dir=tmp_path / "tls")
        window = build_window(store, server, settings=settings, start_server=start, theme=theme)
        qtbot.addWidget(window)
        made.append((window, server, store))
        return window

    yield make
    for window, server, store in made:
        window.close()
        server.stop()
        store.close()


@pytest.fixture
def window(make_window, db_path):
    """The main window over a fresh database, server listening on free ports."""
    return make_window(db_path)


@pytest.fixture
def send_and_wait(qtbot):
    """Send a request and wait (on the model's signal, no sleeping) until its row is loaded."""

    def go(window, url: str, **kwargs: Any) -> int:
        before = window.model.total
        status = send(url, **kwargs)
        qtbot.waitUntil(lambda: window.model.total > before, timeout=5000)
        return status

    return go
