"""The opt-out check proves the route through a real headless Chromium (or Firefox) the window started,
before any PASS.

The window starts the browser itself (``TELEMETRY_INSPECTOR_BROWSER`` points at a wrapper that
adds ``--headless``); a probe loaded in its page must reach the window's own server. A browser
whose routing flags are dropped, or one the window did not start, never gives a PASS.
"""

from __future__ import annotations

import http.server
import re
import sys
import threading
from pathlib import Path

import pytest

from mockserver.reach.browser import RouteCheck, launch_routed_browser
from mockserver.serving.probe import UNPROVEN
from tests.support.helpers import unrouted_chromium

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX shell wrappers start the browser")

PROOF = re.compile(r"^Route proven: a probe loaded in the browser reached this inspector at \d\d:\d\d:\d\d "
                   r"\(probes are never recorded\)\.$")
NOT_LOADED = (f"{UNPROVEN} (the routed browser's page could not load the probe "
              "https://telemetry.refine.dev/__route-probe/")




def headless(wrapper: Path, browser: str) -> str:
    """A launcher that starts the real Chromium or Firefox headless (the tests have no display)."""
    flags = "--headless" if "firefox" in wrapper.name else "--headless --disable-gpu"
    wrapper.write_text(f'#!/bin/sh\nexec {browser} {flags} "$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper)


@pytest.fixture
def app_page(tmp_path):
    """A local app that sends nothing to refine; ``loaded`` is set once its page has loaded in a browser."""
    loaded = threading.Event()
    page = b"<!doctype html><title>opted out</title><body onload=\"fetch('/loaded')\">sends nothing</body>"

    class App(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path == "/loaded":
                loaded.set()
            body = page if self.path == "/" else b""
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), App)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", loaded
    server.shutdown()
    server.server_close()


def watch_headlines(panel) -> list[tuple[str, int]]:
    """(headline, proofs run so far) at every state change of the panel."""
    seen: list[tuple[str, int]] = []
    panel.stateChanged.connect(lambda: seen.append((panel.headline.text(), panel.proofs_run)))
    return seen


def open_in_window(window, url: str, qtbot):
    job = window.open_routed_browser(url)
    with qtbot.waitSignal(job.finished, timeout=60000):
        pass
    assert job.error is None, job.error
    return job.result


def test_a_browser_the_window_started_passes_only_once_the_route_is_proven(window, chromium, app_page, tmp_path,
                                                                          monkeypatch, qtbot):
    url, loaded = app_page
    monkeypatch.setenv("TELEMETRY_INSPECTOR_BROWSER", headless(tmp_path / "chromium-headless", chromium))
    launched = open_in_window(window, url, qtbot)
    assert launched.route == RouteCheck(True, "proven: a probe loaded in the browser reached this inspector")
    assert window.statusBar().full_message.startswith(f"Opened chromium-headless at {url}: route proven, ")
    qtbot.waitUntil(loaded.is_set, timeout=30000)  # the app was opened after the proof

    panel = window.optout
    seen = watch_headlines(panel)
    assert window.start_opt_out_check()
    # The check proves the route again in the app's page before anything is called a PASS.
    assert panel.proving and panel.headline.text() == "PROVING"
    assert window.mode_actions["optout"].text() == "Opt-out check"
    qtbot.waitUntil(lambda: not panel.proving, timeout=30000)
    assert (panel.headline.text(), panel.proofs_run) == ("PASS", 1)
    assert panel.summary.text() == "PASS so far: expected no request, got 0"
    assert PROOF.match(panel.proof_label.text()), panel.proof_label.text()
    assert window.mode_actions["optout"].text() == "Opt-out check: PASS so far"

    panel.prove_button.click()  # again, after a reload the user made
    assert panel.proving and not panel.prove_button.isEnabled()
    qtbot.waitUntil(lambda: not panel.proving, timeout=30000)
    assert (panel.headline.text(), panel.proofs_run) == ("PASS", 2)

    panel.stop_button.click()  # stopping proves it once more
    assert panel.proving
    qtbot.waitUntil(lambda: not panel.proving, timeout=30000)
    assert (panel.headline.text(), panel.proofs_run) == ("PASS", 3)
    assert panel.summary.text() == "PASS: expected no request, got 0"
    assert PROOF.match(panel.proof_label.text())
    assert window.mode_actions["optout"].text() == "Opt-out check: PASS"
    # Every PASS came with a proof of this check; the probes were never recorded or shown.
    assert seen and all(runs >= 1 for headline, runs in seen if headline == "PASS")
    assert (window.store.counts()["total"], window.model.total, panel.offending_ids()) == (0, 0, [])


def test_firefox_opened_by_the_window_proves_the_route_and_passes(window, firefox, app_page, tmp_path, monkeypatch,
                                                                   qtbot):
    url, loaded = app_page
    monkeypatch.setenv("TELEMETRY_INSPECTOR_BROWSER", headless(tmp_path / "firefox-headless", firefox))
    launched = open_in_window(window, url, qtbot)
    assert launched.browser.family == "firefox"  # named so: the wrapper is routed as Firefox, not Chromium
    assert launched.route == RouteCheck(True, "proven: a probe loaded in the browser reached this inspector")
    assert window.statusBar().full_message.startswith(f"Opened firefox-headless at {url}: route proven, ")
    qtbot.waitUntil(loaded.is_set, timeout=30000)  # the app was opened after the proof

    panel = window.optout
    assert window.start_opt_out_check()
    assert panel.proving  # proven again in the app's page, through Firefox's private proxy
    qtbot.waitUntil(lambda: not panel.proving, timeout=30000)
    assert (panel.headline.text(), panel.proofs_run) == ("PASS", 1)
    assert PROOF.match(panel.proof_label.text()), panel.proof_label.text()
    assert (window.store.counts()["total"], panel.other_requests()) == (0, [])
    profile = launched.browser.profile_dir
    window.close()  # quitting stops Firefox, its proxy and its profile
    assert not launched.browser.running() and not profile.exists()


def test_a_browser_without_its_routing_flags_is_not_proven_never_pass(window, chromium, app_page, tmp_path,
                                                                      monkeypatch, qtbot):
    url, loaded = app_page
    launcher = unrouted_chromium(tmp_path / "unrouted", headless(tmp_path / "chromium-headless", chromium))
    monkeypatch.setenv("TELEMETRY_INSPECTOR_BROWSER", launcher)
    launched = open_in_window(window, url, qtbot)
    assert not launched.route.proven
    assert launched.route.line.startswith(f"{UNPROVEN} (the browser's empty tab could not load the probe "
                                          "https://telemetry.refine.dev/__route-probe/")
    assert window.last_error == (f"The routed browser's route is not proven: {launched.route.line}. "
                                 f"unrouted stays on its empty tab; {url} was not opened.")
    assert not loaded.is_set()  # the app was never opened in an unproven browser

    panel = window.optout
    seen = watch_headlines(panel)
    assert window.start_opt_out_check()
    qtbot.waitUntil(lambda: not panel.proving, timeout=30000)
    assert (panel.headline.text(), panel.proofs_run) == ("NOT PROVEN", 1)
    assert panel.summary.text().startswith(NOT_LOADED)
    assert panel.summary.text().endswith(".gif: the routing flags --host-resolver-rules and "
                                         "--ignore-certificate-errors-spki-list did not take effect, or the "
                                         "page's Content-Security-Policy blocks images from it)")
    assert panel.proof_label.text().startswith("Route: not proven at ")
    assert panel.advice_title.text() == "What to do:"
    assert window.mode_actions["optout"].text() == "Opt-out check: NOT PROVEN"

    panel.stop_button.click()
    qtbot.waitUntil(lambda: not panel.proving, timeout=30000)
    assert (panel.headline.text(), panel.proofs_run) == ("NOT PROVEN", 2)
    assert panel.summary.text().startswith(NOT_LOADED)
    assert window.mode_actions["optout"].text() == "Opt-out check: NOT PROVEN"
    assert "PASS" not in [headline for headline, _ in seen]
    assert window.store.counts()["total"] == 0


def test_a_routed_browser_the_window_did_not_start_is_never_a_pass(window, chromium, app_page, qtbot):
    url, loaded = app_page
    listening = window.server.listening
    # Routed to this window's server, but started by someone else: the window cannot prove it.
    own = launch_routed_browser(url, listening.https_port, listening.spki_pin, browser=chromium, headless=True)
    try:
        qtbot.waitUntil(loaded.is_set, timeout=30000)
        panel = window.optout
        assert window.start_opt_out_check()
        assert panel.proof_job is None and not panel.proving  # nothing of the window's to prove through
        assert panel.headline.text() == "NOT PROVEN"
        assert panel.summary.text() == (f"{UNPROVEN} (no browser opened by this window is running; the window "
                                        "can prove the route only through a browser it started)")
        panel.prove_button.click()
        panel.stop_button.click()
        assert (panel.headline.text(), panel.proofs_run) == ("NOT PROVEN", 0)
        assert window.mode_actions["optout"].text() == "Opt-out check: NOT PROVEN"
    finally:
        own.stop()



def test_opening_the_app_during_a_check_proves_the_route_for_it(window, chromium, app_page, tmp_path, monkeypatch,
                                                                 qtbot):
    url, loaded = app_page
    monkeypatch.setenv("TELEMETRY_INSPECTOR_BROWSER", headless(tmp_path / "chromium-headless", chromium))
    panel = window.optout
    assert window.start_opt_out_check()
    assert panel.headline.text() == "NOT PROVEN"  # no browser of the window yet
    launched = open_in_window(window, url, qtbot)  # its empty tab is proven during the check
    assert launched.route.proven
    assert (panel.headline.text(), panel.proofs_run) == ("PASS", 1)
    assert PROOF.match(panel.proof_label.text())
    assert window.mode_actions["optout"].text() == "Opt-out check: PASS so far"
    qtbot.waitUntil(loaded.is_set, timeout=30000)
    panel.stop_button.click()  # and once more in the app's page
    qtbot.waitUntil(lambda: not panel.proving, timeout=30000)
    assert (panel.headline.text(), panel.proofs_run) == ("PASS", 2)
    assert window.store.counts()["total"] == 0
