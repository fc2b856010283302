"""Realistic sample traffic for screenshots and manual checks (no Qt here).

Each request is what the real senders put on the wire (see the wire facts):
Chrome/Firefox/Edge beacons from refine 4.58.0 and 5.0.12, a StrictMode
double beacon from 4.28.1 (no guard up to 4.28.x), a projectId given by a template, a payload broken by
form decoding, ``POST /projects`` with an email, ``POST /cli`` from node-fetch.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from mockserver.core.capture import RawRequest
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

PROVIDERS_OFF = {"auth": False, "auditLog": False, "live": False, "router": True, "data": True,
                 "i18n": False, "notification": False, "accessControl": False}


def encode_beacon(payload: dict[str, Any], *, latin1: bool = False) -> str:
    """``btoa(JSON.stringify(payload))``: Latin-1 bytes like a browser (or UTF-8 like Buffer)."""
    text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    return base64.b64encode(text.encode("latin-1" if latin1 else "utf-8")).decode("ascii")


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
    encoded = payload if isinstance(payload, str) else encode_beacon(payload, latin1=latin1)
    return RawRequest("GET", "/telemetry", f"payload={encoded}", headers, scheme="https", peer=peer)


def _post(path: str, body: dict[str, Any], peer: str = "127.0.0.1") -> RawRequest:
    data = json.dumps(body).encode("utf-8")
    headers = {"Host": "telemetry.refine.dev", "User-Agent": NODE_FETCH, "Content-Type": "application/json",
               "Accept": "*/*", "Content-Length": str(len(data))}
    return RawRequest("POST", path, "", headers, data, scheme="https", peer=peer)


def demo_requests() -> list[tuple[float, RawRequest]]:
    """(seconds before now, request) pairs, oldest first."""
    v4 = {"providers": PROVIDERS_OFF, "version": "4.58.0", "resourceCount": 2}
    v5 = {"providers": {**PROVIDERS_OFF, "auth": True, "i18n": True, "notification": True},
          "version": "5.0.12", "resourceCount": 5, "projectId": "3f9c2a7e-refine-demo"}
    v428 = {"providers": {**PROVIDERS_OFF, "auth": True, "live": True}, "version": "4.28.1", "resourceCount": 3}
    html = {"providers": PROVIDERS_OFF, "version": "4.58.0", "resourceCount": 1, "projectId": "<b>x</b>"}
    cafe = {"providers": PROVIDERS_OFF, "version": "4.58.0", "resourceCount": 4, "projectId": "café"}
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
    now = now or datetime.now(UTC)
    recorder = recorder or Recorder(store)
    requests = demo_requests()[part]
    for seconds, raw in requests:
        recorder.record(raw, received_at=now - timedelta(seconds=seconds))
    return len(requests)
