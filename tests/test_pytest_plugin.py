"""The ``refine_telemetry`` pytest plugin, exercised the way users use it (pytester)."""

from __future__ import annotations

import os
import shutil
import tomllib
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from mockserver.reach.browser import BrowserNotFound, find_browser

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]
SEND_JS = ROOT / "tests" / "noderun" / "send.js"


def _installed() -> bool:
    return any(ep.name == "refine_telemetry" and ep.value == "mockserver.pytest_plugin"
               for ep in entry_points(group="pytest11"))


# Installed (pip install -e .): the entry point loads the plugin by itself.
PLUGIN_ARGS = [] if _installed() else ["-p", "mockserver.pytest_plugin"]


@pytest.fixture(autouse=True)
def _inner_runs_find_the_package(monkeypatch):
    # Inner runs are subprocesses (an in-process run would load pytest-qt a second
    # time into this process); they must import mockserver even when not installed.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))

HELPERS = '''
import json, base64, ssl, urllib.request

PAYLOAD = {"providers": {"auth": False, "router": True, "data": True}, "version": "4.58.0", "resourceCount": 2}

def send_beacon(base, context=None):
    # refine's browser encoding: btoa(JSON.stringify(payload)), not URL-encoded
    b64 = base64.b64encode(json.dumps(PAYLOAD, separators=(",", ":")).encode("latin-1")).decode()
    with urllib.request.urlopen(f"{base}/telemetry?payload={b64}", context=context, timeout=10) as r:
        assert r.status == 200
'''


def test_entry_point_is_declared():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["entry-points"]["pytest11"] == {"refine_telemetry": "mockserver.pytest_plugin"}


@pytest.mark.skipif(not _installed(), reason="the package is not installed (pip install -e .)")
def test_installed_plugin_loads_by_entry_point(pytester):
    pytester.makepyfile("""
        def test_fixture_is_there(refine_telemetry):
            assert refine_telemetry.https_url.startswith("https://127.0.0.1:")
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    # ...and can be switched off by its name.
    result = pytester.runpytest_subprocess("-p", "no:refine_telemetry")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'refine_telemetry' not found*"])


def test_fixture_attributes_beacons_and_wait_for(pytester):
    pytester.makepyfile(helpers=HELPERS)
    pytester.makepyfile("""
        import ssl
        from pathlib import Path
        from mockserver.core.beacon import Beacon
        from helpers import PAYLOAD, send_beacon

        def test_attributes(refine_telemetry):
            t = refine_telemetry
            assert t.http_url.startswith("http://127.0.0.1:")
            assert t.https_url == f"https://127.0.0.1:{t.https_port}"
            assert t.chromium_args == [
                f"--host-resolver-rules=MAP telemetry.refine.dev 127.0.0.1:{t.https_port}",
                f"--ignore-certificate-errors-spki-list={t.spki_pin}",
            ]
            assert Path(t.ca_cert).is_file()
            assert t.beacons == [] and t.records == []

        def test_wait_for_returns_dicts_in_the_record_form(refine_telemetry):
            # over HTTPS, trusting only the fixture's CA: the certificate is real
            context = ssl.create_default_context(cafile=str(refine_telemetry.ca_cert))
            send_beacon(refine_telemetry.https_url.replace("127.0.0.1", "localhost"), context)
            [record] = refine_telemetry.wait_for(1, timeout=5)
            assert record["kind"] == "beacon" and record["status"] == "ok"
            assert record["payload"] == PAYLOAD and record["request"]["scheme"] == "https"
            assert refine_telemetry.beacons == [record]
            [beacon] = refine_telemetry.records
            assert isinstance(beacon, Beacon) and beacon.payload_get("version") == "4.58.0"

        def test_each_test_sees_only_its_own_requests(refine_telemetry):
            assert refine_telemetry.beacons == []
            send_beacon(refine_telemetry.http_url)
            send_beacon(refine_telemetry.http_url)
            assert len(refine_telemetry.wait_for(2)) == 2
            refine_telemetry.clear()
            assert refine_telemetry.beacons == []

        def test_assert_none_passes_when_nothing_is_sent(refine_telemetry):
            refine_telemetry.assert_none(within=0.5)

        def test_session_scoped_flags_for_pytest_playwright(refine_telemetry_chromium_args, refine_telemetry):
            assert refine_telemetry_chromium_args == refine_telemetry.chromium_args
    """)
    result = pytester.runpytest_subprocess(*PLUGIN_ARGS)
    result.assert_outcomes(passed=5)


def test_failures_explain_themselves(pytester):
    pytester.makepyfile(helpers=HELPERS)
    pytester.makepyfile("""
        import time
        from helpers import send_beacon

        def test_opted_out_app_sent_something(refine_telemetry):
            send_beacon(refine_telemetry.http_url)
            started = time.monotonic()
            refine_telemetry.assert_none(within=30)

        def test_nothing_arrives(refine_telemetry):
            refine_telemetry.wait_for(1, timeout=0.5)
    """)
    result = pytester.runpytest_subprocess(*PLUGIN_ARGS, "--durations=2")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines([
        "*AssertionError: expected no request to telemetry.refine.dev, got 1:",
        "*beacon*ok*GET /telemetry*refine 4.58.0*",
        "*options={{ disableTelemetry: true }}*",
        "*AssertionError: expected 1 request to telemetry.refine.dev within 0.5 s, got 0:",
    ])
    # assert_none fails as soon as something arrives, not after the whole 30 s.
    assert "30." not in result.stdout.str().split("slowest")[-1]


@pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js")
def test_node_env_routes_a_node_child(pytester):
    pytester.makepyfile(f"""
        import subprocess

        def test_cli_telemetry(refine_telemetry):
            subprocess.run(["node", {str(SEND_JS)!r}, "https"], env=refine_telemetry.node_env(), check=True,
                           timeout=60)
            [record] = refine_telemetry.wait_for(1)
            assert record["kind"] == "cli" and record["payload"]["projectId"] == "node-https"

        def test_cli_opted_out(refine_telemetry):
            env = refine_telemetry.node_env()
            env["REFINE_NO_TELEMETRY"] = "true"
            subprocess.run(["node", {str(SEND_JS)!r}, "https"], env=env, check=True, timeout=60)
            refine_telemetry.assert_none(within=0.5)
    """)
    pytester.runpytest_subprocess(*PLUGIN_ARGS).assert_outcomes(passed=2)


def test_proxy_url_routes_a_client_that_takes_a_proxy(pytester):
    pytester.makepyfile(helpers=HELPERS)
    pytester.makepyfile("""
        import json, ssl, urllib.request
        from helpers import PAYLOAD, send_beacon

        def test_through_the_proxy(refine_telemetry):
            assert refine_telemetry.proxy_url.startswith("http://127.0.0.1:")
            proxy = urllib.request.ProxyHandler({"https": refine_telemetry.proxy_url})
            context = ssl.create_default_context(cafile=str(refine_telemetry.ca_cert))
            opener = urllib.request.build_opener(proxy, urllib.request.HTTPSHandler(context=context))
            urllib.request.install_opener(opener)
            send_beacon("https://telemetry.refine.dev")
            [record] = refine_telemetry.wait_for(1)
            assert record["payload"] == PAYLOAD
            assert record["client"]["via_proxy"] == "CONNECT telemetry.refine.dev:443"
    """)
    pytester.runpytest_subprocess(*PLUGIN_ARGS).assert_outcomes(passed=1)


@pytest.mark.e2e  # finds Chromium itself, not through a `chromium` fixture
def test_with_a_real_browser_like_a_users_selenium_or_playwright_test(pytester):
    try:
        chromium = find_browser()
    except BrowserNotFound as exc:
        pytest.skip(str(exc))
    pytester.makepyfile(f"""
        import functools, http.server, json, os, subprocess, tempfile, threading

        PAGE = "<script>new Image().src='https://telemetry.refine.dev/telemetry?payload='+btoa(" + \\
            json.dumps(json.dumps({{"version": "5.0.12", "resourceCount": 1}})) + ")</script>"

        def test_page_beacon(refine_telemetry, tmp_path):
            (tmp_path / "index.html").write_text(PAGE)
            handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
            site = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
            threading.Thread(target=site.serve_forever, daemon=True).start()
            url = f"http://127.0.0.1:{{site.server_address[1]}}/"
            with tempfile.TemporaryDirectory() as profile:
                args = [{chromium!r}, "--headless", "--disable-gpu", "--no-first-run",
                        f"--user-data-dir={{profile}}", *refine_telemetry.chromium_args, url]
                if os.geteuid() == 0:
                    args.insert(1, "--no-sandbox")
                browser = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                try:
                    [record] = refine_telemetry.wait_for(1, timeout=20)
                finally:
                    browser.terminate()
                    browser.wait(10)
                    site.shutdown()
            assert record["payload"] == {{"version": "5.0.12", "resourceCount": 1}}
            assert record["client"]["browser"]["family"].endswith("Chrome")
    """)
    pytester.runpytest_subprocess(*PLUGIN_ARGS).assert_outcomes(passed=1)
