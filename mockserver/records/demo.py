"""Realistic sample traffic for screenshots and manual checks (no Qt here).

Each request is what the real senders put on the wire (see the wire facts):
Chrome/Firefox/Edge beacons from refine 4.58.0 and 5.0.12, a StrictMode
double beacon from 4.28.1 (no guard up to 4.28.x), a projectId given by a template, a payload broken by
form decoding, ``POST /projects`` with an email, ``POST /cli`` from node-fetch.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from mockserver.core.capture import RawRequest
from mockserver.core.clock import utc_now
from mockserver.core.payloads import beacon_payload, btoa_json, buffer_json
from mockserver.storage.recorder import Recorder
from mockserver.storage.store import BeaconStore

CHROME_MAC = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/131.0.0.0 Safari/537.36")
CHROME_LINUX = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                "Chrome/131.0.0.0 Safari/537.36")
EDGE_WINDOWS = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.2903.86")
FIREFOX_UBUNTU = "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
NODE_FETCH = "node-fetch/1.0 (+https://github.com/bitinn/node-fetch)"



def _chrome_headers(ua: str, platform: str, referer: str) -> dict[str, str]:
    return {
        "Host": "telemetry.refine.dev",
        "User-Agent": ua,
        "Accept": "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8",
        "Referer": referer,
        "Sec-CH-UA": '"Google Chrome";v="131", "Chromium";v="131", "Not_A Brand";v="24"',
        "Sec-CH-UA-Mobile": "?0",
        "Sec-CH-UA-Platform": f'"{platform}"',
        "Sec-Fetch-Dest": "image",
        "Sec-Fetch-Mode": "no-cors",
        "Sec-Fetch-Site": "cross-site",
    }


def _beacon(payload: dict[str, Any] | str, headers: dict[str, str], peer: str = "127.0.0.1",
            latin1: bool = True) -> RawRequest:
    encode = btoa_json if latin1 else buffer_json
    encoded = payload if isinstance(payload, str) else encode(payload)  # a str: encoded (or broken) already
    return RawRequest("GET", "/telemetry", f"payload={encoded}", headers, scheme="https", peer=peer)


def _post(path: str, body: dict[str, Any], peer: str = "127.0.0.1") -> RawRequest:
    data = json.dumps(body).encode("utf-8")
    headers = {"Host": "telemetry.refine.dev", "User-Agent": NODE_FETCH, "Content-Type": "application/json",
               "Accept": "*/*", "Content-Length": str(len(data))}
    return RawRequest("POST", path, "", headers, data, scheme="https", peer=peer)


def demo_requests() -> list[tuple[float, RawRequest]]:
    """(seconds before now, request) pairs, oldest first."""
    v4 = beacon_payload("4.58.0", resources=2)  # router and data: a minimal app
    v5 = beacon_payload("5.0.12", ("auth", "router", "data", "i18n", "notification"), 5, "3f9c2a7e-refine-demo")
    v428 = beacon_payload("4.28.1", ("auth", "live", "router", "data"), 3)
    html = beacon_payload("4.58.0", resources=1, project_id="<b>x</b>")
    cafe = beacon_payload("4.58.0", resources=4, project_id="café")
    project = {"email": "dev@example.com", "source": "CREATE_REFINE_APP",
               "answers": {"ui_framework": "antd", "data_provider": "data-provider-simple-rest",
                           "auth_provider": "none", "router": "react-router"}}
    cli = {"nodeEnv": "development", "nodeVersion": "v22.11.0", "os": "Linux", "osVersion": "6.8.0",
           "command": "dev", "packages": [{"name": "@refinedev/core", "version": "4.58.0"},
                                          {"name": "@refinedev/cli", "version": "2.16.52"}],
           "projectFramework": "vite", "projectId": "3f9c2a7e-refine-demo"}
    local = _chrome_headers(CHROME_MAC, "macOS", "http://localhost:5173/")
    return [
        (310.0, _post("/projects", project)),
        (295.0, _post("/cli", cli)),
        (281.0, _beacon(v4, local)),
        (242.5, _beacon(v428, {"Host": "telemetry.refine.dev", "User-Agent": FIREFOX_UBUNTU,
                               "Referer": "http://localhost:3000/"})),
        (242.4, _beacon(v428, {"Host": "telemetry.refine.dev", "User-Agent": FIREFOX_UBUNTU,
                               "Referer": "http://localhost:3000/"})),
        (190.0, _beacon(v5, _chrome_headers(EDGE_WINDOWS, "Windows", "http://localhost:5173/"),
                        peer="127.0.0.1")),
        (151.0, _beacon("eyJh bGc", _chrome_headers(CHROME_LINUX, "Linux", "http://localhost:8080/"))),
        (120.0, _beacon(cafe, _chrome_headers(CHROME_LINUX, "Linux", "https://admin.example.test/"))),
        (64.0, _beacon(html, _chrome_headers(CHROME_MAC, "macOS", "http://localhost:5173/"))),
        (12.0, _beacon(v4, local)),
    ]


def fill_demo(store: BeaconStore, now: datetime | None = None, *, part: slice = slice(None),
              recorder: Recorder | None = None) -> int:
    """Record the demo requests (or the ``part`` of them) into ``store`` as the server would; returns how many.

    Pass the same ``recorder`` for the parts of one demo, so duplicates are detected across them.
    """
    now = now or utc_now()
    recorder = recorder or Recorder(store)
    requests = demo_requests()[part]
    for seconds, raw in requests:
        recorder.record(raw, received_at=now - timedelta(seconds=seconds))
    return len(requests)
