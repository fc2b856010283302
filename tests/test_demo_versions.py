"""The demo data and the bench's mix report only versions npm has published (npm goes from 4.26.4 to
4.28.0: the demo once showed a refine 4.27.0). The list is ``npm view <package> versions --json``,
committed in tests/data/npm-versions.json, so the test needs no network."""

from __future__ import annotations

import json
from pathlib import Path

from bench.mix import V4, V5
from mockserver.core.capture import capture
from mockserver.records.demo import demo_requests

PUBLISHED = json.loads((Path(__file__).parent / "data" / "npm-versions.json").read_text())


def demo_versions() -> list[tuple[str, str]]:
    """(package, version) of every version the demo's requests report, decoded as the mock decodes them."""
    found = []
    for _, raw in demo_requests():
        payload = capture(raw).payload or {}
        if "version" in payload:
            found.append(("@refinedev/core", payload["version"]))
        found += [(p["name"], p["version"]) for p in payload.get("packages", [])]
    return found


def test_the_demo_reports_published_versions_only():
    found = demo_versions()
    assert sorted(set(found)) == [("@refinedev/cli", "2.16.52"), ("@refinedev/core", "4.28.1"),
                                  ("@refinedev/core", "4.58.0"), ("@refinedev/core", "5.0.12")]
    assert [f"{name}@{v}" for name, v in found if v not in PUBLISHED[name]] == []


def test_the_bench_mix_reports_published_versions_only():
    assert [v for v in (*V4, *V5) if v not in PUBLISHED["@refinedev/core"]] == []
