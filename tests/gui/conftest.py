"""Fixtures for the inspector window tests: a real store on disk, a real server, the real window.

The top-level conftest already selects Qt's offscreen platform and a private
TELEMETRY_INSPECTOR_HOME; here every test also gets its own database,
certificate folder and settings file under ``tmp_path``.
"""

from __future__ import annotations

import http.client
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from mockserver.core.payloads import beacon_payload, btoa_json
from mockserver.serving.server import InspectorServer
from mockserver.storage.store import BeaconStore
from tests.support.helpers import BROWSER_HEADERS, REFINE_4_PAYLOAD
from tests.support.helpers import http as http_request

REFINE4 = REFINE_4_PAYLOAD
REFINE5 = beacon_payload("5.0.12", ("auth", "router", "data", "i18n"), 5, "3f9c2a7e-demo")


def send(url: str, *, method: str = "GET", body: bytes | None = None,
         headers: dict[str, str] | None = None) -> int:
    """One real HTTP request over a socket, as a page in Chrome sends it; returns the status (any status)."""
    return http_request(method, url, body, {**BROWSER_HEADERS, **(headers or {})})[0]


def send_from(url: str, source_ip: str, *, method: str = "GET", body: bytes | None = None,
              headers: dict[str, str] | None = None) -> int:
    """One real request whose client address is ``source_ip`` (any 127.x address works on Linux),
    so a test can tell the client's IP from the server's own address; the target is sent as given."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10,
                                            source_address=(source_ip, 0))
    try:
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        connection.request(method, target, body=body,
                           headers={**BROWSER_HEADERS, **(headers or {})})
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def widget_texts(root) -> list[str]:
    """Every text a user could see or copy in ``root`` and its children, shown or not: labels, line and
    text edits, buttons, combo items, tree/list items with tooltips, every cell and tooltip of item views."""
    from PySide6.QtWidgets import (
        QAbstractButton,
        QAbstractItemView,
        QComboBox,
        QLabel,
        QLineEdit,
        QPlainTextEdit,
        QTextEdit,
        QWidget,
    )

    texts: list[str] = [root.windowTitle()]
    for widget in [root, *root.findChildren(QWidget)]:
        texts.append(widget.toolTip())
        if isinstance(widget, QLabel):
            texts.append(widget.text())
        elif isinstance(widget, QLineEdit):
            texts += [widget.text(), widget.placeholderText()]
        elif isinstance(widget, (QPlainTextEdit, QTextEdit)):
            texts.append(widget.toPlainText())
        elif isinstance(widget, QAbstractButton):
            texts.append(widget.text())
        elif isinstance(widget, QComboBox):
            texts += [widget.itemText(i) for i in range(widget.count())]
        if isinstance(widget, QAbstractItemView) and widget.model() is not None:
            texts += model_texts(widget.model())
    return [t for t in texts if t]


def model_texts(model, parent=None) -> list[str]:
    """Display and tooltip text of every cell of ``model`` (trees included)."""
    from PySide6.QtCore import QAbstractListModel, QModelIndex, Qt

    parent = parent if parent is not None else QModelIndex()
    out: list[str] = []
    flat = isinstance(model, QAbstractListModel)  # PySide6 keeps a list model's columnCount private
    columns = 1 if flat else model.columnCount(parent)
    for row in range(model.rowCount(parent)):
        for column in range(columns):
            index = model.index(row, column, parent)
            for role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
                value = index.data(role)
                if value is not None:
                    out.append(str(value))
            if column == 0 and not flat and model.rowCount(index) > 0:
                out += model_texts(model, index)
    return out


def beacon_url(window, payload: dict[str, Any] | str) -> str:
    """The /telemetry URL of the window's running server for ``payload`` (raw text as given)."""
    encoded = payload if isinstance(payload, str) else btoa_json(payload)
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
             theme: str | None = "light", proxy_port: int | None = None):
        store = BeaconStore(path)
        server = InspectorServer(store, port=port, https_port=https_port, certificate_dir=tmp_path / "tls",
                                 proxy_port=proxy_port)
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
