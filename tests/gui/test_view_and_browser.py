"""Presentation mode, themes remembered, and "Open app in routed browser" (with a stand-in browser)."""

from __future__ import annotations

import stat
import sys

import pytest
from PySide6.QtWidgets import QApplication, QInputDialog

from inspector.widgets import theme
from tests.gui.conftest import REFINE4, beacon_url
from tests.support.helpers import stand_in_browser, was_started


def test_presentation_mode_makes_text_larger_and_is_remembered(make_window, db_path, send_and_wait, settings, qtbot):
    window = make_window(db_path)
    send_and_wait(window, beacon_url(window, REFINE4))
    window.select_record(1)
    before = {name: widget.font().pointSizeF() for name, widget in (
        ("table", window.table), ("title", window.detail.title), ("json", window.detail.json_view),
        ("filter", window.filter_edit))}
    row_height = window.table.verticalHeader().defaultSectionSize()
    window.presentation_action.trigger()  # View ▸ Presentation mode
    assert window.presentation_action.isChecked()
    qtbot.waitUntil(lambda: window.table.font().pointSizeF() > before["table"], timeout=5000)
    after = {"table": window.table.font().pointSizeF(), "title": window.detail.title.font().pointSizeF(),
             "json": window.detail.json_view.font().pointSizeF(), "filter": window.filter_edit.font().pointSizeF()}
    for name, size in after.items():
        assert size == pytest.approx(before[name] * theme.PRESENTATION_SCALE), name
    assert window.detail.title.font().bold()
    assert window.table.verticalHeader().defaultSectionSize() > row_height
    window.close()
    assert settings.value("view/presentation") in (True, "true")

    again = make_window(db_path, start=False)
    assert again.presentation_action.isChecked()
    assert QApplication.font().pointSizeF() == pytest.approx(after["table"])
    again.set_presentation(False)
    qtbot.waitUntil(lambda: again.table.font().pointSizeF() == pytest.approx(before["table"]), timeout=5000)
    assert again.detail.title.font().pointSizeF() == pytest.approx(before["title"])


def test_theme_is_switchable_and_remembered(make_window, db_path, settings):
    window = make_window(db_path, start=False, theme=None)
    window.theme_actions["dark"].trigger()
    assert theme.is_dark() and settings.value("view/theme") == "dark"
    window.close()
    try:
        again = make_window(db_path, start=False, theme=None)  # no theme given: the saved one
        assert theme.is_dark() and again.theme_actions["dark"].isChecked()
        again.theme_actions["light"].trigger()
        assert not theme.is_dark()
    finally:
        theme.apply_theme(QApplication.instance(), "light")


# A stand-in for Chrome: records its arguments, opens a DevTools "port" whose only page cannot be
# connected to (a closed port), then waits to be stopped. The route probe fails at once, not after a timeout.
FAKE_CHROME = """\
import http.server, json, os, pathlib, socket, sys
args_file = pathlib.Path(sys.argv[1])
args = sys.argv[2:]
part = args_file.with_suffix(".part")
part.write_text("\\n".join(args) + "\\n")
os.replace(part, args_file)
closed = socket.socket()
closed.bind(("127.0.0.1", 0))
dead = closed.getsockname()[1]
closed.close()

class DevTools(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps([{"type": "page", "webSocketDebuggerUrl": f"ws://127.0.0.1:{dead}/devtools/page/1"}])
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *a):
        pass

server = http.server.HTTPServer(("127.0.0.1", 0), DevTools)
profile = next(pathlib.Path(a.split("=", 1)[1]) for a in args if a.startswith("--user-data-dir="))
(profile / "DevToolsActivePort.part").write_text(f"{server.server_port}\\n/devtools/browser/x\\n")
os.replace(profile / "DevToolsActivePort.part", profile / "DevToolsActivePort")
server.serve_forever()
"""


@pytest.fixture
def fake_browser(tmp_path, monkeypatch):
    """A stand-in for Chrome (see FAKE_CHROME); returns the file its arguments are written to."""
    args_file = tmp_path / "browser-args.txt"
    program = tmp_path / "fake_chrome.py"
    program.write_text(FAKE_CHROME)
    script = tmp_path / "fake-chrome"
    script.write_text(f"#!/bin/sh\nexec '{sys.executable}' '{program}' '{args_file}' \"$@\"\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("TELEMETRY_INSPECTOR_BROWSER", str(script))
    return args_file


@pytest.mark.skipif(sys.platform == "win32", reason="a POSIX shell script stands in for the browser")
def test_open_app_in_routed_browser_passes_the_routing_and_stops_on_quit(window, fake_browser, qtbot, monkeypatch):
    offered = []

    def ask(parent, title, label, mode, text):
        offered.append(text)
        return "http://localhost:3000/admin", True

    monkeypatch.setattr(QInputDialog, "getText", ask)
    window.browser_action.trigger()
    job = window.last_job
    with qtbot.waitSignal(job.finished, timeout=10000):
        pass
    assert job.error is None, job.error
    assert offered == ["http://localhost:5173/"]  # the default the first time
    listening = window.server.listening
    args = fake_browser.read_text().splitlines()
    assert f"--host-resolver-rules=MAP telemetry.refine.dev 127.0.0.1:{listening.https_port}" in args
    assert f"--ignore-certificate-errors-spki-list={listening.spki_pin}" in args
    assert not any(a == "--ignore-certificate-errors" for a in args)
    assert "--remote-debugging-port=0" in args
    assert args[-1] == "about:blank"  # an empty tab first: the route is proven there before the app opens
    assert any(a.startswith("--user-data-dir=") for a in args)
    # This stand-in cannot load a probe, so the route is not proven and the app is not opened.
    assert not job.result.route.proven
    assert window.last_error.startswith("The routed browser's route is not proven: could not run: the route to "
                                        "the inspector is not proven (the probe could not be started in the "
                                        "browser's empty tab: ")
    assert window.last_error.endswith("fake-chrome stays on its empty tab; http://localhost:3000/admin was not "
                                      "opened.")
    browser = window.browsers[0]
    assert browser.running()
    profile = browser.profile_dir
    assert window.settings.value("browser/url") == "http://localhost:3000/admin"

    window.browser_action.trigger()  # the last URL is offered next time
    with qtbot.waitSignal(window.last_job.finished, timeout=10000):
        pass
    assert offered[-1] == "http://localhost:3000/admin"

    window.close()  # quitting stops every browser it started and removes their profiles
    assert not browser.running() and not profile.exists()
    assert window.browsers == []


def test_routed_browser_problems_are_one_line(make_window, db_path, qtbot, monkeypatch, tmp_path):
    no_https = make_window(db_path, https_port=None)
    assert no_https.open_routed_browser("http://localhost:5173/") is None
    assert no_https.last_error.startswith("Cannot open a routed browser: HTTPS is off")
    no_https.close()

    window = make_window(tmp_path / "other.sqlite3")
    assert window.open_routed_browser("localhost:5173") is None
    assert window.last_error == ("Cannot open a routed browser: Not an app URL: 'localhost:5173'; "
                                 "enter one like http://localhost:5173/")
    monkeypatch.setenv("TELEMETRY_INSPECTOR_BROWSER", str(tmp_path / "no-such-chrome"))
    job = window.open_routed_browser("http://localhost:5173/")
    with qtbot.waitSignal(job.finished, timeout=10000):
        pass
    assert window.last_error == (f"Cannot open a routed browser: TELEMETRY_INSPECTOR_BROWSER "
                                 f"{tmp_path / 'no-such-chrome'}: no such file")
    monkeypatch.setenv("TELEMETRY_INSPECTOR_BROWSER", "")
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing on PATH
    monkeypatch.setattr("mockserver.reach.browser.browser_candidates", lambda *a, **k: [])
    monkeypatch.setattr("mockserver.reach.browser.firefox_candidates", lambda *a, **k: [])
    job = window.open_routed_browser("http://localhost:5173/")
    with qtbot.waitSignal(job.finished, timeout=10000):
        pass
    assert window.last_error.startswith("Cannot open a routed browser: no Chrome, Chromium, Edge or Firefox found")
    assert "\n" not in window.last_error and window.browsers == []


@pytest.mark.skipif(sys.platform == "win32", reason="a POSIX shell script stands in for the browser")
def test_an_unknown_browser_is_refused_in_one_line_and_never_started(window, qtbot, monkeypatch, tmp_path):
    kiosk = stand_in_browser(tmp_path / "browser", "Kiosk Shell 2.1")
    monkeypatch.setenv("TELEMETRY_INSPECTOR_BROWSER", str(kiosk))
    job = window.open_routed_browser("http://localhost:5173/")
    with qtbot.waitSignal(job.finished, timeout=10000):
        pass
    assert window.last_error == (
        f"Cannot open a routed browser: TELEMETRY_INSPECTOR_BROWSER {kiosk}: not Chrome, Chromium, Edge, Brave, "
        "Opera, Vivaldi or Firefox (Kiosk Shell 2.1); to inspect another browser, route it through the proxy "
        "(serve --proxy-port N, then set the browser's HTTPS proxy to 127.0.0.1:N; "
        "docs/routing.md, \"Through a proxy\") or use the hosts file and a trusted certificate "
        "(docs/routing.md, \"The hosts file and a trusted certificate\")")
    assert window.browsers == [] and not was_started(kiosk)
