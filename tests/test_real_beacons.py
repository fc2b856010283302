"""Beacons captured from the real @refinedev/core 4.58.0 / 5.0.12 in headless Chromium.

``tests/data/real_beacons.json`` holds what reached a TLS listener (raw
query and headers, byte for byte) and ``encoder_vectors.json`` what Node's
``btoa`` and ``Buffer`` produce; ``tests/e2e/capture_golden.py`` regenerates
both. The live end-to-end tests run the same apps against the inspector.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mockserver.core.capture import RawRequest, capture
from mockserver.core.payloads import BtoaRefused, btoa_json, buffer_json, js_stringify

DATA = Path(__file__).parent / "data"
CAPTURES = json.loads((DATA / "real_beacons.json").read_text())
VECTORS = json.loads((DATA / "encoder_vectors.json").read_text())

REQUESTS = [
    pytest.param(entry, i, request, id=f"{entry['refine_version']}-{entry['scenario']}-{i}")
    for entry in CAPTURES for i, request in enumerate(entry["requests"])
]


@pytest.mark.parametrize(("entry", "index", "request_"), REQUESTS)
def test_real_beacon_decodes_exactly(entry, index, request_):
    record = capture(RawRequest(request_["method"], request_["path"], request_["raw_query"],
                                request_["headers"], scheme="https", peer="127.0.0.1"))
    assert record.problems == []
    assert record.payload == entry["decoded"][index]
    assert list(record.payload) == list(entry["decoded"][index])  # key order as sent
    assert record.encoding == entry["decoded_text_encoding"][index]
    assert record.payload["version"] == entry["refine_version"]
    if entry["project_id"] is not None:
        assert record.payload["projectId"] == entry["project_id"]
    assert record.client["host"] == "telemetry.refine.dev"
    assert record.client["hostname"] == "127.0.0.1"
    assert record.client["browser"]["family"] == "HeadlessChrome"
    assert record.client["client_hints"]["platform"] == "Linux"


def test_captures_cover_what_the_issue_needs():
    by = {(e["refine_version"], e["scenario"]): e["count"] for e in CAPTURES}
    for version in ("4.58.0", "5.0.12"):
        assert by[(version, "default")] == 1
        assert by[(version, "strict")] == 1  # the useRef guard: one beacon under StrictMode
        assert by[(version, "optout")] == 0
        assert by[(version, "toplevel")] == 1  # the documented top-level prop is ignored
        assert by[(version, "projectid-euro")] == 0  # btoa throws above U+00FF: nothing sent
    latin1 = [e for e in CAPTURES if e["scenario"] == "projectid-cafe"]
    assert all(e["decoded_text_encoding"] == ["latin-1"] for e in latin1)
    plus = [e for e in CAPTURES if e["scenario"] == "projectid-plus-slash"]
    assert all("+" in e["requests"][0]["raw_query"] and "/" in e["requests"][0]["raw_query"] for e in plus)


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: js_stringify(v["payload"])[:40])
def test_encoder_mirrors_match_node(vector):
    """Our btoa/Buffer mirrors (used across the tests) equal what Node printed."""
    assert js_stringify(vector["payload"]) == vector["json"]
    assert buffer_json(vector["payload"]) == vector["buffer"]
    if vector["btoa_error"]:
        with pytest.raises(BtoaRefused):
            btoa_json(vector["payload"])
    else:
        assert btoa_json(vector["payload"]) == vector["btoa"]
