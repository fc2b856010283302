"""End to end: real Firefox ESR routed by the tool, real refine apps, real sockets.

``verify --browser <firefox>`` runs as a real subprocess: its own mock, its own Firefox on a fresh
profile whose proxy prefs point at a private scoped proxy, the inspector's CA imported with
certutil, the page driven over WebDriver BiDi. The verdicts, the route probe before and after the
page load and the exit codes are the ones a Chromium gets. The private proxy lists the page's
other hosts (here the network is closed: a lookup fails) and never records them as telemetry;
loopback pages load directly, never through it.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import fixture_apps
import pytest
from test_refine_e2e import golden

from mockserver.core.payloads import btoa_json
from mockserver.reach.browser import BrowserError, launch_routed_browser
from mockserver.reach.firefox import FirefoxBrowser
from mockserver.records.advice import CORE_4_AND_5
from tests.support.helpers import REFINE_4_PAYLOAD, interrupt, killed_at_end, read_until
from tests.support.pages import outward_address, serve_pages

ROOT = Path(__file__).resolve().parents[2]
QUIET = "2"  # seconds of quiet after load: the beacon leaves right after the first render
ROUTE_PROVEN = ("Route proven: probes loaded in the browser before and after the page loaded "
                "reached https://127.0.0.1:")
ANNOUNCEMENTS = "https://raw.githubusercontent.com/refinedev/refine/master/packages/cli/ANNOUNCEMENTS.md"
PROXIED = "CONNECT telemetry.refine.dev:443"  # how a record that came through the private proxy says so


def verify(firefox: str, url: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mockserver", "verify", url, "--within", QUIET, "--browser", firefox,
                           *args], cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)


@pytest.fixture(scope="module", params=["refine4", "refine5"])
def app(request) -> Iterator[tuple[str, str]]:
    """(fixture app name, base URL) of a served real refine 4.x or 5.x app."""
    with fixture_apps.serve(fixture_apps.build(request.param)) as base:
        yield request.param, base


def test_default_app_sends_exactly_the_beacon_its_version_sends(firefox, app):
    name, base = app
    version = fixture_apps.APPS[name].version
    expected = golden(4 if name == "refine4" else 5, "default")
    router = "true" if name == "refine4" else "false"
    result = verify(firefox, fixture_apps.page_url(base, "default"), "--expect", "1", "--json",
                    "--field", f"version={version}", "--field", f"providers.router={router}",
                    "--field", "resourceCount=2")
    assert result.returncode == 0, result.stderr + result.stdout
    report = json.loads(result.stdout)
    assert (report["verdict"], report["count"], report["failures"]) == ("PASS", 1, [])
    [record] = report["beacons"]
    assert record["payload"] == expected["decoded"][0]  # what Chromium captured from the same app
    assert record["request"]["query"] == expected["requests"][0]["raw_query"]  # byte for byte
    assert (record["status"], record["encoding"], record["request"]["scheme"]) == ("ok", "utf-8", "https")
    assert record["client"]["host"] == "telemetry.refine.dev"
    assert record["client"]["browser"]["family"] == "Firefox"
    assert record["client"]["via_proxy"] == PROXIED  # through the private proxy, recorded as a direct one
    assert report["route_proven"] is True
    assert report["route_proof"].startswith("route proven: probes loaded in the browser before and after the page")
    assert report["other_requests"] == []  # the app and Firefox itself reached nothing else
    assert report["browser"] == firefox


def test_options_disable_telemetry_passes_expect_none(firefox, app):
    _, base = app
    result = verify(firefox, fixture_apps.page_url(base, "optout"), "--expect", "none")
    assert result.returncode == 0, result.stderr + result.stdout
    lines = result.stdout.strip().splitlines()
    assert lines[-2].startswith(ROUTE_PROVEN)  # a pass only with the route proven
    assert lines[-1] == "PASS: expected no request, got 0"


def test_top_level_disable_telemetry_prop_fails_expect_none(firefox, app):
    name, base = app
    result = verify(firefox, fixture_apps.page_url(base, "toplevel"), "--expect", "none")
    assert result.returncode == 1, result.stderr + result.stdout
    out = result.stdout
    assert "FAIL: expected no request, got 1" in out
    assert f"refine {fixture_apps.APPS[name].version}" in out and "Firefox 1" in out  # the offending beacon
    assert f"How to opt out: {CORE_4_AND_5}\n" in out


def test_refine_4_28_counts_once_under_strict_mode(firefox):
    # 4.28.2 sets img.src twice under StrictMode; Firefox, like Chromium, loads it once.
    with fixture_apps.serve(fixture_apps.build("refine428")) as base:
        result = verify(firefox, fixture_apps.page_url(base, "strict", dev=True), "--expect", "1", "--json",
                        "--field", "version=4.28.2")
    assert result.returncode == 0, result.stderr + result.stdout
    assert json.loads(result.stdout)["count"] == 1


# -- the private proxy's other hosts --------------------------------------------------------------

@pytest.fixture
def other_site() -> Iterator[str]:
    yield from serve_pages(outward_address(), {})


@pytest.fixture
def app_page(other_site: str) -> Iterator[tuple[str, list[str]]]:
    """A local page that sends a beacon, fetches an unresolvable refine host, another host on this machine's
    outward address and its own server; (URL, the paths its own server was asked for)."""
    beacon = f"https://telemetry.refine.dev/telemetry?payload={btoa_json(REFINE_4_PAYLOAD)}"
    page = f"""<!doctype html><title>app</title><script>
new Image().src = {json.dumps(beacon)};
fetch({json.dumps(ANNOUNCEMENTS)}).catch(() => {{}});
fetch({json.dumps(other_site + "/other?secret=s3cr3t")});
fetch("/local-api");
</script>""".encode()
    seen: list[str] = []
    for base in serve_pages("127.0.0.1", {"/": ("text/html", page)}, seen):
        yield f"{base}/", seen


def test_other_hosts_come_from_the_private_proxy_and_are_never_telemetry(firefox, app_page, other_site):
    url, seen = app_page
    result = verify(firefox, url, "--expect", "1", "--json")
    assert result.returncode == 0, result.stderr + result.stdout
    data = json.loads(result.stdout)
    assert (data["verdict"], data["count"]) == ("PASS", 1)
    [beacon] = data["beacons"]
    assert (beacon["request"]["path"], beacon["client"]["via_proxy"]) == ("/telemetry", PROXIED)
    listed = sorted((r["method"], r["url"], r["status"], r["source"], r["browser_own"], r["query_shown"])
                    for r in data["other_requests"])
    host = other_site.split("//")[1]
    assert listed == sorted([
        # https is tunneled, never decrypted: only host and port are known, and the lookup failed here
        ("CONNECT", "raw.githubusercontent.com:443", None, "proxy", False, True),
        ("GET", f"http://{host}/other?…", 200, "proxy", False, False),  # plain http is forwarded: its answer
    ])
    [tunnel] = [r for r in data["other_requests"] if r["method"] == "CONNECT"]
    assert tunnel["failure"] in ("Name or service not known", "Temporary failure in name resolution",
                                 "No address associated with hostname")
    assert "s3cr3t" not in result.stdout + result.stderr
    assert "other host: CONNECT raw.githubusercontent.com:443 → failed: " in result.stderr  # live progress
    # The page's own loopback server, reached directly (after verify's own URL check): never listed.
    assert seen[:3] == ["/", "/", "/local-api"] and set(seen) <= {"/", "/local-api", "/favicon.ico"}

    strict = verify(firefox, url, "--expect", "1", "--egress", "none")
    assert strict.returncode == 1, strict.stderr + strict.stdout
    summary = strict.stdout.strip().splitlines()[-1]
    assert summary.startswith("FAIL: expected exactly 1 request, got 1; --egress none: 2 other hosts contacted (")


def test_verify_with_a_running_inspector_routes_to_its_listeners(firefox, live_server, tmp_path):
    page = tmp_path / "beacon.html"
    page.write_text(f"<script>new Image().src = 'https://telemetry.refine.dev/telemetry?payload="
                    f"{btoa_json(REFINE_4_PAYLOAD)}'</script>")
    result = verify(firefox, page.as_uri(), "--expect", "1", "--server", live_server.listening.http_url)
    assert result.returncode == 0, result.stderr + result.stdout
    lines = result.stdout.strip().splitlines()
    assert lines[-2] == ("Route proven: probes loaded in the browser before and after the page loaded reached "
                         f"{live_server.listening.http_url}")
    assert lines[-1] == "PASS: expected exactly 1 request, got 1"
    [record] = live_server.store.query()  # in that inspector's journal, through verify's private proxy
    assert (record.request.scheme, record.client["host"], record.payload) == (
        "https", "telemetry.refine.dev", REFINE_4_PAYLOAD)
    # The proxy runs in verify's process: that inspector cannot tell its connection from a direct one.
    assert "via_proxy" not in record.client


# -- the browser itself ------------------------------------------------------------------------

@pytest.fixture
def routed(firefox, live_server) -> Iterator[FirefoxBrowser]:
    listening = live_server.listening
    browser = launch_routed_browser(None, listening.https_port, listening.spki_pin, browser=firefox, headless=True,
                                    remote_debugging=True, http_port=listening.port,
                                    ca_pem=live_server.certificate.ca_cert.read_bytes)
    assert isinstance(browser, FirefoxBrowser)
    yield browser
    browser.stop()


def test_a_localhost_page_loads_directly_never_through_the_proxy(routed):
    seen: list[str] = []
    for base in serve_pages("127.0.0.1", {"/": ("text/html", b"<script>fetch('/api')</script>")}, seen):
        port = base.rsplit(":", 1)[1]
        routed.load(f"http://localhost:{port}/", timeout=30)
        routed.load(f"{base}/", timeout=30)
        routed.load_probe("0" * 32)  # the probe alone goes through the proxy, to the inspector
    assert [path for path in seen if path != "/favicon.ico"] == ["/", "/api", "/", "/api"]
    assert routed.proxy.egress.entries() == []  # neither localhost nor 127.0.0.1 was relayed
    assert routed.other_requests() == []


def test_a_navigation_that_fails_is_one_line(routed):
    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    with pytest.raises(BrowserError) as caught:
        routed.load(f"http://127.0.0.1:{port}/", timeout=30)
    assert str(caught.value) == f"could not load http://127.0.0.1:{port}/: NS_ERROR_CONNECTION_REFUSED"
    assert routed.running()  # the browser is fine, and drives on
    routed.load("about:blank", timeout=30)
    assert routed.load_probe("1" * 32) == "load"


def test_the_profile_is_private_holds_the_route_and_is_removed_on_stop(routed):
    profile = routed.profile_dir
    assert stat.S_IMODE(profile.stat().st_mode) == 0o700 and stat.S_IMODE(profile.parent.stat().st_mode) == 0o700
    user_js = (profile / "user.js").read_text("utf-8")
    assert f'user_pref("network.proxy.ssl_port", {routed.proxy.port});' in user_js
    assert (profile / "cert9.db").is_file()
    assert routed.bidi_port() > 0
    proxy_port = routed.proxy.port
    routed.stop()
    assert not routed.running() and not profile.parent.exists()
    with pytest.raises(OSError):  # its proxy is gone with it
        socket.create_connection(("127.0.0.1", proxy_port), timeout=2).close()


def test_missing_certutil_is_one_line_and_firefox_never_starts(firefox, live_server, tmp_path):
    bare = tmp_path / "bin"
    bare.mkdir()
    page = tmp_path / "page.html"
    page.write_text("nothing")
    result = verify(firefox, page.as_uri(), "--expect", "none", env={**os.environ, "PATH": str(bare)})
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip().splitlines()[-1] == (
        "telemetry-inspector verify: Firefox needs certutil (the NSS tools) to trust the inspector's certificate "
        "in its profile: on Debian/Ubuntu apt install libnss3-tools, on macOS brew install nss, on Windows the NSS "
        "tools' certutil.exe on PATH (not Windows' own certutil.exe, a different program)")
    assert "browser " not in result.stderr  # it never got as far as starting Firefox


def test_the_browser_command_drives_firefox_and_ctrl_c_closes_it(firefox, tmp_path):
    page = tmp_path / "beacon.html"
    page.write_text(f"<script>new Image().src = 'https://telemetry.refine.dev/telemetry?payload="
                    f"{btoa_json(REFINE_4_PAYLOAD)}'</script>")
    with killed_at_end(subprocess.Popen([sys.executable, "-m", "mockserver", "browser", page.as_uri(), "--headless",
                                         "--port", "0", "--https-port", "0", "--db", ":memory:", "--browser",
                                         firefox], cwd=ROOT, text=True, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE)) as proc:
        _, lines = read_until(proc.stdout, r" beacon .*refine 4\.58\.0 .*Firefox")
        assert any(line.startswith("Route     proven: a probe loaded in the browser reached this inspector")
                   for line in lines)
        out, err = interrupt(proc, lines)
    assert proc.returncode == 0, err
    assert "stopped: 1 request captured" in out
    assert f"Browser   {firefox} (headless), temporary profile" in out


def test_a_firefox_whose_proxy_prefs_are_dropped_is_could_not_run(firefox, app, tmp_path):
    # A launcher (or a policy) that throws the profile's user.js away: refine's beacon would go to the
    # real host (here: nowhere), and an opt-out check must not pass by that.
    _, base = app
    wrapper = tmp_path / "unrouted-firefox"
    wrapper.write_text('#!/bin/sh\nrm -f "$2/user.js"\n'  # firefox_args puts the profile second
                       f'exec {firefox} "$@"\n')
    wrapper.chmod(0o755)
    result = verify(str(wrapper), fixture_apps.page_url(base, "optout"), "--expect", "none")
    assert result.returncode == 2, result.stderr + result.stdout
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("telemetry-inspector verify: could not run: the route to the inspector is not proven "
                           "(the browser's empty tab could not load the probe https://telemetry.refine.dev/"
                           "__route-probe/")
    assert last.endswith(".gif: the profile's proxy settings and the inspector's CA imported with certutil did "
                         "not take effect)")
    assert result.stdout == ""
