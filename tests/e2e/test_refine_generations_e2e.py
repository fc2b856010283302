"""End to end: refine generations before 4.58, real packages in real headless Chromium, through ``verify``.

- ``@pankod/refine-core`` 3.58.1 (``refine3jwe``): an encrypted ``POST /send``
  with ``Content-Type: application/text``, so Chromium preflights it; only the
  top-level ``<Refine disableTelemetry>`` prop opts out.
- ``@pankod/refine-core`` 3.103.0 (``refine3``): ``GET /telemetry``; both
  ``options.disableTelemetry`` and the top-level prop opt out.
- ``@refinedev/core`` 4.28.2 (``refine428``) in the React development bundle
  under ``<React.StrictMode>``: ``img.src`` is set twice, one request arrives.

What each version sends and reads is noted in ``fixture_apps.APPS`` (read in
the packages' dist sources). Every verify is a real subprocess with its own
mock and its own routed Chromium.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator

import fixture_apps
import pytest
from test_refine_e2e import verify

from mockserver.core.payloads import providers_object
from mockserver.records.advice import CORE_3_BOTH, CORE_3_ENCRYPTED, CORE_4_AND_5
from tests.support.helpers import unrouted_chromium

#: What every fixture app's <Refine> reports: no providers but data and router, two resources.
PROVIDERS = providers_object(("router", "data"))
ROUTE_PROVEN = ("Route proven: probes loaded in the browser before and after the page loaded "
                "reached https://127.0.0.1:")


pytestmark = pytest.mark.usefixtures("chromium")  # every test here drives a real Chromium


def _served(name: str) -> Iterator[str]:
    with fixture_apps.serve(fixture_apps.build(name)) as base:
        yield base


@pytest.fixture(scope="module")
def jwe_app() -> Iterator[str]:
    """Base URL of the served @pankod/refine-core 3.58.1 app."""
    yield from _served("refine3jwe")


@pytest.fixture(scope="module")
def core3_app() -> Iterator[str]:
    """Base URL of the served @pankod/refine-core 3.103.0 app."""
    yield from _served("refine3")


@pytest.fixture(scope="module")
def core428_app() -> Iterator[str]:
    """Base URL of the served @refinedev/core 4.28.2 app."""
    yield from _served("refine428")


def _jwe_header(compact: str) -> dict:
    protected = compact.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(protected + "=" * (-len(protected) % 4)))


def _assert_passed_none(result) -> None:
    assert result.returncode == 0, result.stderr + result.stdout
    lines = result.stdout.strip().splitlines()
    assert lines[-2].startswith(ROUTE_PROVEN)  # a pass only with the route proven
    assert lines[-1] == "PASS: expected no request, got 0"


# --- @pankod/refine-core 3.58.1: the encrypted POST /send and its preflight ---------------------------------


def test_jwe_default_is_one_request_after_its_preflight(jwe_app):
    result = verify(fixture_apps.page_url(jwe_app, "default"), "--expect", "1", "--json")
    assert result.returncode == 0, result.stderr + result.stdout
    report = json.loads(result.stdout)
    # The preflight is part of the request it announces: --expect 1 counts the one that carries data.
    assert report["verdict"] == "PASS" and report["count"] == 1 and report["preflights"] == 1
    assert report["failures"] == []
    preflight, sent = report["beacons"]
    assert (preflight["kind"], preflight["status"], preflight["request"]["method"], preflight["request"]["path"]) \
        == ("preflight", "ok", "OPTIONS", "/send")
    assert preflight["request"]["headers"]["Access-Control-Request-Method"] == "POST"
    assert preflight["request"]["headers"]["Access-Control-Request-Headers"] == "content-type"
    assert preflight["problems"] == []
    assert preflight["notes"] == ["CORS preflight: the browser asks whether it may send POST /send with the headers "
                                  "content-type; answered 204. It carries no data: the request it announces "
                                  "follows, linked to it"]
    assert (sent["kind"], sent["status"], sent["request"]["method"], sent["request"]["path"]) \
        == ("encrypted", "ok", "POST", "/send")
    assert sent["preflight"] == preflight["id"]  # the data request names the preflight that announced it
    assert sent["request"]["headers"]["Content-Type"] == "application/text"
    body = sent["request"]["body"]
    assert len(body.split(".")) == 5 and sent["request"]["body_size"] == len(body)  # compact JWE
    assert _jwe_header(body) == {"alg": "RSA-OAEP-256", "enc": "A256GCM"}
    assert sent["payload"] is None  # encrypted with refine's public key: nothing to decode here
    encrypted_notes, linked_note = sent["notes"][:2], sent["notes"][2:]
    assert encrypted_notes == ["encrypted (JWE from @pankod/refine-core 3.x): cannot be decoded locally",
                               "JWE header: alg RSA-OAEP-256, enc A256GCM"]
    [linked] = linked_note
    assert re.fullmatch(rf"announced by the CORS preflight #{preflight['id']}, \d+\.\d\d s earlier", linked), linked
    assert preflight["preflight"] is None and preflight["payload"] is None


def test_jwe_top_level_prop_passes_expect_none(jwe_app):
    # 3.58.1 renders <Telemetry /> unless the top-level prop is set: the one opt-out it reads.
    _assert_passed_none(verify(fixture_apps.page_url(jwe_app, "toplevel"), "--expect", "none"))


def test_jwe_options_disable_telemetry_still_sends_and_the_advice_says_so(jwe_app):
    # 3.58.1's <Refine> has no `options` prop: options.disableTelemetry is dropped unread.
    result = verify(fixture_apps.page_url(jwe_app, "optout"), "--expect", "none")
    assert result.returncode == 1, result.stderr + result.stdout
    out = result.stdout
    assert "FAIL: expected no request, got 1 (+ 1 CORS preflight)" in out
    assert f"How to opt out: {CORE_3_ENCRYPTED}\n" in out
    assert CORE_4_AND_5 not in out and CORE_3_BOTH not in out


def test_jwe_opt_out_in_a_browser_that_drops_the_routing_is_could_not_run(jwe_app, chromium, tmp_path):
    wrapper = unrouted_chromium(tmp_path / "unrouted-chromium", chromium)
    result = verify(fixture_apps.page_url(jwe_app, "toplevel"), "--expect", "none", "--browser", wrapper)
    assert result.returncode == 2, result.stderr + result.stdout
    assert result.stderr.strip().splitlines()[-1].startswith(
        "telemetry-inspector verify: could not run: the route to the inspector is not proven (")
    assert result.stdout == ""


# --- @pankod/refine-core 3.103.0: GET /telemetry, both opt-out forms ---------------------------------------


def test_core3_default_sends_its_beacon_and_the_advice_names_both_forms(core3_app):
    result = verify(fixture_apps.page_url(core3_app, "default"), "--expect", "none", "--json")
    assert result.returncode == 1, result.stderr + result.stdout
    report = json.loads(result.stdout)
    assert report["verdict"] == "FAIL" and report["count"] == 1
    assert report["failures"] == ["expected no request, got 1"]
    [beacon] = report["beacons"]
    assert (beacon["kind"], beacon["status"], beacon["request"]["method"], beacon["request"]["path"]) \
        == ("beacon", "ok", "GET", "/telemetry")
    assert beacon["payload"] == {"providers": PROVIDERS, "version": "3.103.0", "resourceCount": 2}
    assert report["offending"] == [beacon["id"]]
    assert report["advice"] == [CORE_3_BOTH]


@pytest.mark.parametrize("variant", ["optout", "toplevel"])
def test_core3_either_opt_out_passes_expect_none(core3_app, variant):
    # handleRefineOptions: options?.disableTelemetry ?? disableTelemetry ?? false
    _assert_passed_none(verify(fixture_apps.page_url(core3_app, variant), "--expect", "none"))


# --- @refinedev/core 4.28.2 under React.StrictMode (development bundle) ------------------------------------


def test_core428_strict_mode_is_one_request_not_a_duplicate(core428_app):
    # No useRef guard before 4.29: StrictMode runs the effect twice and sets img.src twice with the
    # same URL; Chromium loads that image once, so one request arrives and nothing is a duplicate.
    url = fixture_apps.page_url(core428_app, "strict", dev=True)
    result = verify(url, "--expect", "1", "--json", "--field", "version=4.28.2")
    assert result.returncode == 0, result.stderr + result.stdout
    report = json.loads(result.stdout)
    assert report["verdict"] == "PASS" and report["count"] == 1
    [beacon] = report["beacons"]
    assert (beacon["kind"], beacon["status"], beacon["request"]["method"], beacon["request"]["path"]) \
        == ("beacon", "ok", "GET", "/telemetry")
    assert beacon["payload"] == {"providers": PROVIDERS, "version": "4.28.2", "resourceCount": 2}
    assert beacon["notes"] == ["providers: sent as an object of booleans; the docs say boolean[]"]
    assert not any(note.startswith("duplicate") for note in beacon["notes"])
    assert "DUPLICATE" not in result.stderr  # nor in the progress lines
