"""Opt-out advice by refine generation, as the packages' dist code reads the flags (mockserver.records.advice)."""

from __future__ import annotations

import json

import pytest

from mockserver.core.capture import RawRequest, capture
from mockserver.core.payloads import btoa_json
from mockserver.records.advice import (
    CLI,
    CORE_3_BOTH,
    CORE_3_ENCRYPTED,
    CORE_4_AND_5,
    CREATE_REFINE_APP,
    SUPERPLATE,
    advice_for,
    advice_for_all,
)
from mockserver.records.verdict import Expectation, judge
from tests.support.helpers import REFINE_4_PAYLOAD

JWE = "eyJhbGciOiJSU0EtT0FFUC0yNTYiLCJlbmMiOiJBMjU2R0NNIn0.a2V5.aXY.Y2lwaGVy.dGFn"


def beacon(version: str | None):
    payload = {**REFINE_4_PAYLOAD, "version": version} if version is not None else REFINE_4_PAYLOAD
    return capture(RawRequest("GET", "/telemetry", f"payload={btoa_json(payload)}", {}))


def post(path: str, body: str | dict, content_type: str = "application/json"):
    data = body if isinstance(body, str) else json.dumps(body)
    return capture(RawRequest("POST", path, body=data.encode(), headers={"Content-Type": content_type}))


@pytest.mark.parametrize(("version", "advice"), [
    ("5.0.12", [CORE_4_AND_5]),
    ("4.58.0", [CORE_4_AND_5]),
    ("4.28.2", [CORE_4_AND_5]),
    ("3.103.0", [CORE_3_BOTH]),  # a 3.x GET /telemetry is 3.69 or later: both forms are read
    ("3.69.6", [CORE_3_BOTH]),
    ("v4.1.0", [CORE_4_AND_5]),
    ("next", [CORE_4_AND_5, CORE_3_BOTH]),  # unreadable: both possibilities, newest first
])
def test_a_browser_beacon_gets_the_advice_of_its_core_version(version, advice):
    assert advice_for(beacon(version)) == advice


def test_each_other_sender_gets_its_own_advice():
    assert advice_for(post("/send", JWE, "application/text")) == [CORE_3_ENCRYPTED]
    assert advice_for(post("/cli", {"command": "dev"})) == [CLI]
    assert advice_for(post("/projects", {"email": "a@b.example", "answers": {}, "source": "CREATE_REFINE_APP"})) \
        == [CREATE_REFINE_APP]
    assert advice_for(post("/superplate", {"event": "generate", "properties": {}})) == [SUPERPLATE]
    assert advice_for(capture(RawRequest("GET", "/favicon.ico", "", {}))) == [CORE_4_AND_5]


def test_the_texts_say_what_the_packages_read():
    assert "options={{ disableTelemetry: true }}" in CORE_4_AND_5 and "is ignored" in CORE_4_AND_5
    assert "before 3.62 only the top-level" in CORE_3_ENCRYPTED
    assert 'REFINE_NO_TELEMETRY=true (exactly "true"' in CLI
    assert "stops POST /superplate only" in CREATE_REFINE_APP and "email" in CREATE_REFINE_APP


def test_a_failed_opt_out_check_lists_each_advice_once_in_order():
    records = [post("/cli", {"command": "dev"}), beacon("4.58.0"), beacon("5.0.12"), post("/send", JWE)]
    assert advice_for_all(records) == [CLI, CORE_4_AND_5, CORE_3_ENCRYPTED]
    assert judge(records, Expectation.parse("none")).advice == [CLI, CORE_4_AND_5, CORE_3_ENCRYPTED]
    assert judge(records, Expectation.parse("4")).advice == []  # a count was expected and met: no advice


def test_counted_nouns_agree():
    from mockserver.core.text import plural

    assert [plural(n, "request") for n in (0, 1, 2, 1024)] == ["0 requests", "1 request", "2 requests",
                                                              "1,024 requests"]
    assert plural("1", "resource") == "1 resource" and plural("12", "resource") == "12 resources"
    assert plural("1e400", "resource") == "1e400 resources"  # a payload's text that is no whole number
    assert plural(1, "difference", "differences") == "1 difference" and plural(3, "entry", "entries") == "3 entries"
