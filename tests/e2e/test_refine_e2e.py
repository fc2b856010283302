"""End to end: the real @refinedev/core 4.58.0 and 5.0.12 apps, real headless Chromium, our routing.

Each app (``fixture_apps.build``) is served locally and loaded by
``python -m mockserver verify`` as a real subprocess: its own mock on free
ports, its own headless Chromium routed by ``mockserver.reach.browser``. What
arrives is compared with the beacons captured from the same apps by
``capture_golden.py`` (``tests/data/real_beacons.json``).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import fixture_apps
import pytest

from mockserver.reach.browser import launch_routed_browser
from mockserver.records.advice import CORE_4_AND_5
from mockserver.records.verdict import OptOutWatch
from tests.support.helpers import unrouted_chromium

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = json.loads((ROOT / "tests" / "data" / "real_beacons.json").read_text(encoding="utf-8"))
VERSIONS = sorted(fixture_apps.REFINE_VERSIONS)  # 4, 5
QUIET = "2"  # seconds of quiet after load: the beacon leaves right after the first render


def golden(version: int, scenario: str) -> dict:
    wanted = fixture_apps.REFINE_VERSIONS[version]
    return next(g for g in GOLDEN if g["refine_version"] == wanted and g["scenario"] == scenario)


pytestmark = pytest.mark.usefixtures("chromium")  # every test here drives a real Chromium


@pytest.fixture(scope="module", params=VERSIONS, ids=lambda v: f"refine{v}")
def app(request) -> Iterator[tuple[int, str]]:
    """(major version, base URL) of a served real refine app."""
    version = request.param
    with fixture_apps.serve(fixture_apps.build(version)) as base:
        yield version, base


def verify(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mockserver", "verify", url, "--within", QUIET, *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_default_app_sends_exactly_the_beacon_its_version_sends(app):
    version, base = app
    expected = golden(version, "default")
    result = verify(fixture_apps.page_url(base, "default"), "--expect", "1", "--json",
                    "--field", f"version={fixture_apps.REFINE_VERSIONS[version]}",
                    "--field", f"providers.router={'true' if version == 4 else 'false'}",
                    "--field", "resourceCount=2")
    assert result.returncode == 0, result.stderr + result.stdout
    report = json.loads(result.stdout)
    assert report["verdict"] == "PASS" and report["count"] == 1
    [record] = report["beacons"]
    assert record["payload"] == expected["decoded"][0]
    assert record["request"]["query"] == expected["requests"][0]["raw_query"]  # byte for byte
    assert record["status"] == "ok" and record["encoding"] == "utf-8"
    assert record["client"]["host"] == "telemetry.refine.dev" and record["request"]["scheme"] == "https"
    assert record["client"]["browser"]["family"] == "HeadlessChrome"
    assert "page loaded in" in result.stderr  # progress lines while it waits


def test_options_disable_telemetry_passes_expect_none(app):
    version, base = app
    result = verify(fixture_apps.page_url(base, "optout"), "--expect", "none")
    assert result.returncode == 0, result.stderr + result.stdout
    lines = result.stdout.strip().splitlines()
    # A pass only with the route proven: probes through the same routing reached the mock.
    assert lines[-2].startswith("Route proven: probes loaded in the browser before and after the page loaded "
                                "reached https://127.0.0.1:")
    assert lines[-1] == "PASS: expected no request, got 0"


def test_opt_out_app_in_a_browser_that_drops_the_routing_is_could_not_run(app, chromium, tmp_path):
    # A launcher or policy that drops the flags: refine's beacon would go nowhere and "pass".
    version, base = app
    wrapper = unrouted_chromium(tmp_path / "unrouted-chromium", chromium)
    result = verify(fixture_apps.page_url(base, "optout"), "--expect", "none", "--browser", wrapper)
    assert result.returncode == 2, result.stderr + result.stdout
    assert result.stderr.strip().splitlines()[-1].startswith(
        "telemetry-inspector verify: could not run: the route to the inspector is not proven (")
    assert result.stdout == ""


def test_top_level_disable_telemetry_prop_fails_expect_none(app, tmp_path):
    version, base = app
    report = tmp_path / "optout.xml"
    result = verify(fixture_apps.page_url(base, "toplevel"), "--expect", "none", "--junit", str(report))
    assert result.returncode == 1, result.stderr + result.stdout
    out = result.stdout
    assert "FAIL: expected no request, got 1" in out
    assert f"refine {fixture_apps.REFINE_VERSIONS[version]}" in out  # the offending beacon, decoded
    assert f"How to opt out: {CORE_4_AND_5}\n" in out  # the advice of the generation that sent it
    suite = ET.parse(report).getroot().find("testsuite")
    assert suite.get("failures") == "1"
    assert "disableTelemetry: true" in suite.find("testcase/failure").text


@pytest.mark.parametrize(("project_id", "scenario", "encoding"), [
    ("p+/=?&?>?>", "projectid-plus-slash", "utf-8"),  # raw '+', '/' and '=' in the query
    ("café", "projectid-cafe", "latin-1"),  # btoa writes é as the single byte 0xE9
], ids=["plus-slash", "latin1"])
def test_project_id_round_trips_exactly(app, project_id, scenario, encoding):
    version, base = app
    expected = golden(version, scenario)
    result = verify(fixture_apps.page_url(base, "projectid", project_id), "--expect", "1", "--json",
                    "--field", f"projectId={project_id}")
    assert result.returncode == 0, result.stderr + result.stdout
    [record] = json.loads(result.stdout)["beacons"]
    assert record["payload"]["projectId"] == project_id
    assert record["payload"] == expected["decoded"][0]
    assert record["encoding"] == encoding
    assert record["request"]["query"] == expected["requests"][0]["raw_query"]
    if "+" in project_id:
        assert "+" in record["raw_payload"] and "/" in record["raw_payload"]


def test_gui_opt_out_check_api_against_the_real_app(app, live_server):
    """What the GUI's "Open app in routed browser" + "Opt-out check" do, without Qt."""
    version, base = app
    listening = live_server.listening
    verdicts = {}
    for variant in ("optout", "toplevel"):
        watch = OptOutWatch(live_server.store, "none").start()
        with launch_routed_browser(None, listening.https_port, listening.spki_pin, headless=True,
                                   remote_debugging=True) as routed:
            routed.load(fixture_apps.page_url(base, variant), timeout=30)
            loaded = time.monotonic()
            # The same quiet period as verify: QUIET seconds after load without a request.
            while min(time.monotonic() - loaded, watch.quiet_for()) < float(QUIET):
                time.sleep(0.1)
        verdicts[variant] = watch.stop()
    assert verdicts["optout"].headline == "PASS" and verdicts["optout"].count == 0
    failed = verdicts["toplevel"]
    assert failed.headline == "FAIL" and failed.count == 1
    [offending] = failed.offending
    assert offending.payload == golden(version, "toplevel")["decoded"][0]
    assert "options={{ disableTelemetry: true }}" in failed.advice[0]
