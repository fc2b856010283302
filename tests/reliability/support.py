"""Helpers for the reliability tests: unique beacons, keep-alive clients, ``serve`` that fails to start.

``serve`` that runs is the ``serve_process`` fixture (tests/support/serve.py).

Everything talks to 127.0.0.1 only, with bounded request counts and timeouts.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import ssl
import subprocess
import sys
from pathlib import Path

from mockserver.core.payloads import btoa_json
from tests.support.helpers import BROWSER_HEADERS, REFINE_4_PAYLOAD

ROOT = Path(__file__).resolve().parents[2]
HEADERS = {**BROWSER_HEADERS, "Host": "telemetry.refine.dev"}


def beacon_path(marker: str) -> str:
    """A valid refine 4.x beacon whose projectId is ``marker`` (to find it in the store)."""
    return "/telemetry?payload=" + btoa_json({**REFINE_4_PAYLOAD, "projectId": marker})


def invalid_path(marker: str) -> str:
    """A beacon that cannot decode (answered 400, recorded as invalid); ``marker`` is in the raw query."""
    return f"/telemetry?payload=not-base64!{marker}"


def cli_body(marker: str) -> bytes:
    return json.dumps({"command": "dev", "nodeEnv": "development", "projectId": marker}).encode()


def marker_of(record: dict) -> str | None:
    """The marker a test request carried, from its stored record."""
    payload = record.get("payload") or {}
    if "projectId" in payload:
        return payload["projectId"]
    found = re.search(r"not-base64!(\S+)$", record["request"]["query"] or "")
    return found.group(1) if found else None


def connection(port: int, scheme: str = "http", timeout: float = 30) -> http.client.HTTPConnection:
    """A keep-alive client connection (TLS without verification: the tests pin nothing here)."""
    if scheme == "https":
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return http.client.HTTPSConnection("127.0.0.1", port, timeout=timeout, context=context)
    return http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)


def send(conn: http.client.HTTPConnection, kind: str, marker: str) -> int:
    """Send one request of ``kind`` (beacon, invalid, cli) carrying ``marker``; return the status."""
    if kind == "cli":
        conn.request("POST", "/cli", body=cli_body(marker),
                     headers={"Content-Type": "application/json", "User-Agent": "node-fetch/1.0"})
    else:
        conn.request("GET", beacon_path(marker) if kind == "beacon" else invalid_path(marker), headers=HEADERS)
    resp = conn.getresponse()
    resp.read()
    return resp.status


def run_serve(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    """``serve`` expected to exit by itself (an error at start-up)."""
    return subprocess.run([sys.executable, "-m", "mockserver", "serve", *args], cwd=ROOT,
                          env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=timeout)
