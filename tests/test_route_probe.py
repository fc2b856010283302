"""The route probe: every "nothing was sent" verdict needs proof that the route reaches the inspector.

The app answers probes without recording them; ``verify`` loads one in the
real routed Chromium before and after the page, and says "could not run"
(exit 2) when a browser whose routing flags were dropped cannot deliver it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import warnings
from pathlib import Path

import pytest

from mockserver.reach.remote import RemoteInspector, _insecure_context
from mockserver.serving.probe import MAX_KEPT, PROBE_FUNCTION, ProbeLog, RouteNotProven, probe_url, prove_route
from tests.support.helpers import http, unrouted_chromium

ROOT = Path(__file__).resolve().parents[1]
NONCE = "0123456789abcdef0123456789abcdef"
UNPROVEN = "could not run: the route to the inspector is not proven ("


# -- the app: answered, never recorded ---------------------------------------------

ROUTED = {"base_url": "https://telemetry.refine.dev"}


def test_a_probe_is_answered_with_the_gif_and_never_recorded(client, store):
    assert client.get(f"/__inspector/probes/{NONCE}").json == {"nonce": NONCE, "seen": False}
    answer = client.get(f"/__route-probe/{NONCE}.gif", **ROUTED)
    assert (answer.status_code, answer.mimetype, answer.data[:6]) == (200, "image/gif", b"GIF89a")
    assert client.get(f"/__inspector/probes/{NONCE}").json == {"nonce": NONCE, "seen": True}
    assert store.counts()["total"] == 0
    assert client.get("/__inspector/beacons").json == {"beacons": []}


def test_what_only_looks_like_a_probe_is_on_the_record(client, store):
    for path in ("/__route-probe/not-a-nonce.gif", f"/__route-probe/{NONCE}", f"/__route-probe/{NONCE.upper()}.gif"):
        assert client.get(path, **ROUTED).status_code == 404, path
    assert client.post(f"/__route-probe/{NONCE}.gif", **ROUTED).status_code == 404
    # Not the routed way: plain HTTP, or HTTPS for another name, proves nothing.
    assert client.get(f"/__route-probe/{NONCE}.gif").status_code == 404
    assert client.get(f"/__route-probe/{NONCE}.gif", base_url="https://127.0.0.1:8788").status_code == 404
    assert store.counts()["total"] == 6
    assert client.get(f"/__inspector/probes/{NONCE}").json["seen"] is False


def test_probe_endpoint_refuses_bad_input_in_one_line(client):
    bad = client.get("/__inspector/probes/xyz")
    assert (bad.status_code, bad.json) == (400, {"error": "a probe nonce is 32 hex digits, got 'xyz'"})
    slow = client.get(f"/__inspector/probes/{NONCE}?timeout=31")
    assert (slow.status_code, slow.json) == (400, {"error": "timeout must be between 0 and 30"})


def test_probe_log_keeps_the_newest_and_wakes_a_waiter():
    log = ProbeLog()
    for number in range(MAX_KEPT + 1):
        log.saw(f"{number:032x}")
    assert not log.seen(f"{0:032x}") and log.seen(f"{1:032x}") and log.seen(f"{MAX_KEPT:032x}")
    waiting = threading.Timer(0.05, log.saw, args=(NONCE,))
    waiting.start()
    assert log.wait(NONCE, 30) is True
    assert log.wait("f" * 32, 0) is False


def test_remote_inspector_asks_for_a_probe(live_server):
    remote = RemoteInspector.connect(live_server.listening.http_url)
    assert remote.probe_seen(NONCE) is False
    http("GET", f"{live_server.listening.https_url}/__route-probe/{NONCE}.gif",
         headers={"Host": "telemetry.refine.dev"}, context=_insecure_context())
    assert remote.probe_seen(NONCE, timeout=1) is True
    assert live_server.store.counts()["total"] == 0


@pytest.mark.parametrize(("outcome", "reason"), [
    ("load", "the page loaded the probe https://telemetry.refine.dev/__route-probe/"),
    ("error", "the page could not load the probe https://telemetry.refine.dev/__route-probe/"),
])
def test_prove_route_says_why_when_nothing_arrived(outcome, reason):
    with pytest.raises(RouteNotProven, match=reason):
        prove_route(lambda nonce: outcome, lambda nonce, seconds: False, timeout=0)
    assert len(prove_route(lambda nonce: outcome, lambda nonce, seconds: True)) == 32


# -- verify in a real Chromium ----------------------------------------------------



@pytest.fixture
def quiet_page(tmp_path) -> str:
    page = tmp_path / "quiet.html"
    page.write_text("<!doctype html><title>opted out</title><p>sends nothing</p>")
    return page.as_uri()


@pytest.fixture
def unrouted_browser(tmp_path, chromium) -> str:
    """A wrapper that drops the routing flags, as a managed policy or a launcher script might."""
    return unrouted_chromium(tmp_path / "unrouted-chromium", chromium)


def verify(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mockserver", "verify", *args, "--within", "0.5"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_verify_none_passes_only_with_the_route_proven(quiet_page, chromium):
    result = verify(quiet_page, "--expect", "none", "--browser", chromium)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[-2].startswith("Route proven: probes loaded in the browser before and after the page loaded "
                                "reached https://127.0.0.1:")
    assert lines[-1] == "PASS: expected no request, got 0"


def test_verify_with_the_routing_flags_dropped_is_could_not_run(quiet_page, unrouted_browser, tmp_path):
    result = verify(quiet_page, "--expect", "none", "--browser", unrouted_browser, "--json")
    assert result.returncode == 2, result
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"telemetry-inspector verify: {UNPROVEN}the browser's empty tab could not load the "
                           "probe https://telemetry.refine.dev/__route-probe/"), result.stderr
    data = json.loads(result.stdout)
    assert (data["verdict"], data["passed"]) == ("ERROR", False)
    assert data["error"].startswith(UNPROVEN) and "PASS" not in result.stdout + result.stderr


def test_probes_are_not_counted_or_journaled(live_server, tmp_path, chromium):
    page = tmp_path / "beacon.html"
    page.write_text("<script>new Image().src = 'https://telemetry.refine.dev/telemetry?payload=' + "
                    "btoa(JSON.stringify({version: '5.0.12', resourceCount: 1}))</script>")
    server = live_server.listening.http_url
    result = verify(page.as_uri(), "--expect", "1", "--server", server, "--browser", chromium, "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert (data["count"], data["route_proven"]) == (1, True)
    assert live_server.store.counts() == {"total": 1, "ok": 1, "invalid": 0, "by_kind": {"beacon": 1}}
    [record] = live_server.store.query()
    assert record.request.path == "/telemetry"


# -- the pytest plugin's probe through a real page ------------------------------------

class DevToolsPage:
    """The one Playwright page method the plugin uses (``evaluate(function, arg)``), over DevTools."""

    def __init__(self, routed) -> None:
        self.routed = routed

    def evaluate(self, function: str, arg: str) -> object:
        from mockserver.reach.cdp import DevToolsConnection, page_websocket_url

        with DevToolsConnection(page_websocket_url(self.routed.devtools_port())) as page:
            result = page.call("Runtime.evaluate", {"expression": f"({function})({json.dumps(arg)})",
                                                    "awaitPromise": True, "returnByValue": True})
        return result["result"]["value"]


@pytest.mark.parametrize("routed", [True, False])
def test_plugin_probe_through_a_real_page(live_server, chromium, unrouted_browser, routed):
    from mockserver.pytest_plugin import RefineTelemetry, RouteUnprovenWarning
    from mockserver.reach.browser import launch_routed_browser

    telemetry = RefineTelemetry(live_server, live_server.store)
    browser = launch_routed_browser("about:blank", telemetry.https_port, telemetry.spki_pin,
                                    browser=chromium if routed else unrouted_browser, headless=True,
                                    remote_debugging=True)
    try:
        page = DevToolsPage(browser)
        if routed:
            with warnings.catch_warnings():
                warnings.simplefilter("error", RouteUnprovenWarning)  # proven: no warning
                telemetry.assert_none(within=0, page=page)
            assert telemetry.records == [] and live_server.store.counts()["total"] == 0
        else:
            with pytest.raises(AssertionError, match="^the route to the mock is not proven: the page could not "
                                                     "load the probe https://telemetry.refine.dev/__route-probe/"):
                telemetry.assert_none(within=0, page=page)
    finally:
        browser.stop()


def test_plugin_assert_none_without_a_page_warns_that_the_route_is_unproven(live_server):
    from mockserver.pytest_plugin import RefineTelemetry, RouteUnprovenWarning

    with pytest.warns(RouteUnprovenWarning, match=r"^assert_none\(\) passed without page=: nothing proved"):
        RefineTelemetry(live_server, live_server.store).assert_none(within=0)


def test_probe_function_is_the_one_the_url_is_given_to():
    assert PROBE_FUNCTION.startswith("(url) => new Promise(")
    assert probe_url(NONCE) == f"https://telemetry.refine.dev/__route-probe/{NONCE}.gif"


# -- the `browser` command --------------------------------------------------------------

def browser_command(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "mockserver", "browser", *args, "--headless", "--port", "0",
                             "--https-port", "0", "--db", ":memory:"], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_browser_command_says_the_route_is_proven(quiet_page, chromium):
    proc = browser_command(quiet_page, "--browser", chromium)
    try:
        lines = []
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith("Waiting for requests"):
                break
    finally:
        proc.terminate()  # the Ctrl-C path is tested in test_browser.py
        proc.communicate(timeout=60)
    assert lines[-4:-1] == ["Route     proven: a probe loaded in the browser reached this inspector",
                            f"Opened    {quiet_page}", ""]


def test_browser_command_without_routing_is_could_not_run(quiet_page, unrouted_browser):
    proc = browser_command(quiet_page, "--browser", unrouted_browser)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2, err
    assert err.strip().splitlines()[-1].startswith(
        f"telemetry-inspector browser: {UNPROVEN}the browser's empty tab could not load the probe "
        "https://telemetry.refine.dev/__route-probe/")
    assert "Route     proven" not in out and "Waiting for requests" not in out


def test_an_inspector_without_the_probe_endpoint_is_too_old_not_a_pass():
    import http.server

    from mockserver.reach.remote import RemoteError

    class NotFound(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_error(404)

        def log_message(self, *args):
            pass

    old = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    threading.Thread(target=old.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{old.server_address[1]}"
        remote = RemoteInspector(base_url=base, host="127.0.0.1", https_port=1, spki_pin="pin")
        with pytest.raises(RemoteError, match=f"^the inspector at {base} is too old to confirm route probes "
                                              r"\(no /__inspector/probes endpoint\); update it$"):
            remote.probe_seen(NONCE)
    finally:
        old.shutdown()
