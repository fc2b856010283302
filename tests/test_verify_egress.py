"""``verify`` lists the other hosts a page contacted (DevTools Network events), in real headless Chromium.

The page sends a real-shaped beacon and also reaches: a host on this machine's non-loopback
address (a real server: 200, and a cross-site iframe whose own request comes from another
renderer process), an unresolvable refine host (the network here is closed: the lookup fails),
and its own localhost server (not egress). ``--egress none`` turns the other hosts into a failure
while the telemetry verdict stays what it was.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from mockserver.core.payloads import btoa_json
from mockserver.reach.browser import launch_routed_browser
from mockserver.reach.network import NetworkWatch
from tests.support.helpers import REFINE_4_PAYLOAD, interrupt, killed_at_end, read_until
from tests.support.pages import outward_address, serve_pages

ROOT = Path(__file__).resolve().parents[1]
ANNOUNCEMENTS = "https://raw.githubusercontent.com/refinedev/refine/master/packages/cli/ANNOUNCEMENTS.md"


@pytest.fixture
def other_site() -> Iterator[str]:
    frame = b"<!doctype html><script>fetch('/from-frame?token=abc')</script>"
    yield from serve_pages(outward_address(), {"/frame.html": ("text/html", frame)})


@pytest.fixture
def app_page(other_site: str) -> Iterator[str]:
    beacon = f"https://telemetry.refine.dev/telemetry?payload={btoa_json(REFINE_4_PAYLOAD)}"
    page = f"""<!doctype html><title>app</title>
<iframe src="{other_site}/frame.html"></iframe>
<script>
new Image().src = {json.dumps(beacon)};
fetch({json.dumps(other_site + "/other?secret=s3cr3t")});
fetch({json.dumps(ANNOUNCEMENTS)}).catch(() => {{}});
fetch("/local-api");
</script>""".encode()
    yield from serve_pages("127.0.0.1", {"/": ("text/html", page)})


def verify(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mockserver", "verify", *args, "--within", "2"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_verify_lists_the_other_hosts_and_egress_none_fails_on_them(chromium, app_page, other_site, tmp_path):
    result = verify(app_page, "--expect", "1", "--json", "--browser", chromium)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["verdict"] == "PASS" and data["count"] == 1 and data["egress"] == "any"
    seen = sorted((r["method"], r["url"], r["status"], r["failure"], r["known"], r["source"], r["query_shown"])
                  for r in data["other_requests"])
    assert seen == sorted([
        ("GET", f"{other_site}/frame.html", 200, None, None, "browser", True),
        ("GET", f"{other_site}/from-frame?…", 200, None, None, "browser", False),  # the iframe's own process
        ("GET", f"{other_site}/other?…", 200, None, None, "browser", False),
        ("GET", ANNOUNCEMENTS, None, "net::ERR_NAME_NOT_RESOLVED", "refine CLI announcements (refine dev)",
         "browser", True),
    ])
    # Its live progress names each one on stderr as it finishes; the query stays hidden.
    assert f"other host: GET {other_site}/other?… → 200" in result.stderr
    assert "s3cr3t" not in result.stdout + result.stderr

    junit = tmp_path / "report.xml"
    strict = verify(app_page, "--expect", "1", "--egress", "none", "--full-urls", "--browser", chromium,
                    "--junit", str(junit))
    assert strict.returncode == 1, strict.stderr
    host = other_site.split("//")[1].split(":")[0]
    summary = strict.stdout.strip().splitlines()[-1]
    assert summary.startswith("FAIL: expected exactly 1 request, got 1; --egress none: 2 other hosts contacted (")
    assert sorted(summary.split("(")[-1].rstrip(")").split(", ")) == sorted([host, "raw.githubusercontent.com"])
    assert "Other hosts contacted (2 hosts, 4 requests):" in strict.stdout
    assert f"    GET {other_site}/other?secret=s3cr3t → 200" in strict.stdout  # --full-urls
    case = ET.parse(junit).getroot().find("testsuite/testcase")
    assert case is not None and case.find("failure") is not None
    system_out = case.findtext("system-out") or ""
    assert "Other hosts contacted (2 hosts, 4 requests):" in system_out
    assert f"GET {other_site}/other?… → 200" in system_out  # the report never carries the query


def test_a_page_with_no_other_hosts_passes_egress_none(chromium, tmp_path):
    page = tmp_path / "quiet.html"
    page.write_text(f"<script>new Image().src = 'https://telemetry.refine.dev/telemetry?payload="
                    f"{btoa_json(REFINE_4_PAYLOAD)}'</script>")
    result = verify(page.as_uri(), "--expect", "1", "--egress", "none", "--browser", chromium)
    assert result.returncode == 0, result.stderr
    assert "Other hosts contacted" not in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "PASS: expected exactly 1 request, got 1"


def test_the_browser_command_prints_other_hosts_live_and_all_at_the_end(chromium, app_page, other_site):
    with killed_at_end(subprocess.Popen([sys.executable, "-m", "mockserver", "browser", app_page, "--headless",
                                         "--port", "0", "--https-port", "0", "--db", ":memory:", "--browser",
                                         chromium], cwd=ROOT, text=True, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE)) as proc:
        live: list[str] = []
        while not {f"{other_site}/from-frame?… → 200", f"{other_site}/other?… → 200"} <= {
                line.strip().split("GET ")[-1] for line in live}:
            live += read_until(proc.stdout, r"^Other     GET ")[1]
        out, err = interrupt(proc, [])
    assert proc.returncode == 0, err
    assert "Other hosts contacted (2 hosts, 4 requests):" in out
    assert f"    GET {other_site}/frame.html → 200" in out
    assert "secret" not in out


def test_frames_run_by_themselves_once_the_watch_has_stopped(chromium, live_server, tmp_path):
    """The watch makes new frames wait for it; a stopped watch must not leave them paused."""
    seen: list[str] = []
    frame = b"<!doctype html><script>fetch('/frame-ran')</script>"
    for other in serve_pages(outward_address(), {"/frame.html": ("text/html", frame)}, seen):
        page = tmp_path / "framed.html"
        page.write_text(f'<iframe src="{other}/frame.html"></iframe>')
        listening = live_server.listening
        with launch_routed_browser(None, listening.https_port, listening.spki_pin, headless=True,
                                   remote_debugging=True) as routed:
            routed.watch_network()
            assert routed.network is not None
            routed.network.stop()
            routed.load(page.as_uri(), timeout=30)
            deadline = time.monotonic() + 20
            while "/frame-ran" not in seen and time.monotonic() < deadline:
                time.sleep(0.05)
        assert seen == ["/frame.html", "/frame-ran"]


def test_an_odd_event_does_not_end_the_watch() -> None:
    watch = NetworkWatch("ws://127.0.0.1:9/devtools/page/X")
    watch._handle({"method": "Network.requestWillBeSent", "sessionId": "",
                   "params": {"requestId": "1", "request": {"url": "https://example.com/a", "method": "GET"}}})
    watch._handle({"method": "Network.responseReceived", "params": {"requestId": "1",
                                                                    "response": {"status": float("inf")}}})
    watch._handle({"method": "Network.requestWillBeSent", "sessionId": "S2",
                   "params": {"requestId": "1", "request": {"url": "wss://example.com/socket", "method": "GET"}}})
    watch._handle({"method": "Network.loadingFailed", "sessionId": "S2",
                   "params": {"requestId": "1", "errorText": "net::ERR_FAILED"}})
    watch._handle({"method": "Network.requestWillBeSent", "params": {"requestId": "2", "request": "nonsense"}})
    watch._handle({"method": "Network.requestWillBeSent", "params": {"requestId": "3", "request": {
        "url": "data:text/plain,hi"}}})
    assert [(r.url, r.status, r.failure) for r in watch.requests()] == [
        ("https://example.com/a", None, None),  # a status that is no status is none
        ("wss://example.com/socket", None, "net::ERR_FAILED"),  # the same id in another frame's session
    ]


def test_a_neutral_named_browser_is_asked_its_version_once(chromium, tmp_path):
    """``verify`` identifies the browser once and hands what it found to the launch."""
    asked = tmp_path / "asked"
    wrapper = tmp_path / "kiosk-shell"
    wrapper.write_text("#!/bin/sh\n"
                       f"if [ \"$1\" = --version ]; then echo asked >> '{asked}'; echo 'Chromium 156.0'; exit 0; fi\n"
                       f'exec {chromium} "$@"\n')
    wrapper.chmod(0o755)
    page = tmp_path / "quiet.html"
    page.write_text("<title>quiet</title>")
    result = verify(page.as_uri(), "--expect", "none", "--browser", str(wrapper))
    assert result.returncode == 0, result.stderr
    assert asked.read_text() == "asked\n"
