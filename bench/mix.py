"""The request mix every load run sends: what a room full of refine apps would send.

Deterministic (seeded), so every run and every target sees the same requests:

* ~88 % valid browser beacons from ``@refinedev/core`` 4.x and 5.x, encoded the
  way ``btoa(JSON.stringify(x))`` does (Latin-1, raw ``+``/``/``/``=``), with the
  headers real Chrome/Edge/Firefox/Safari send for an ``<img>`` request
  (``Referer`` = the app's origin, ``Sec-CH-UA*`` on Chromium, ``Sec-Fetch-*``);
  some carry a ``projectId`` (a few with non-ASCII, as btoa writes it);
* ~8 % invalid beacons (a ``+`` turned into a space, truncated base64, not JSON,
  no ``payload`` parameter): recorded and answered 400;
* ~4 % ``POST /cli`` bodies as ``@refinedev/cli`` sends them (node-fetch).
"""

from __future__ import annotations

import base64
import json
import random
from dataclasses import dataclass, field

from mockserver.core.checks import PROVIDERS
from mockserver.core.payloads import beacon_payload, btoa_json

HOST = "telemetry.refine.dev"

V4 = ("4.58.0", "4.57.1", "4.56.0", "4.53.0", "4.47.1", "4.28.2")
V5 = ("5.0.12", "5.0.11", "5.0.9", "5.0.4")
ORIGINS = ("http://localhost:5173/", "http://localhost:3000/", "http://127.0.0.1:5173/",
           "http://localhost:4173/", "https://admin.example.com/", "http://localhost:8080/")
PROJECT_IDS = ("5ab1c2d3-e4f5-4a6b-8c7d-9e0f1a2b3c4d", "my-refine-project", "café-admin", "ops/dashboard+v2")

_CHROME_IMG = {
    "Accept": "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8",
    "Sec-Fetch-Site": "cross-site",
    "Sec-Fetch-Mode": "no-cors",
    "Sec-Fetch-Dest": "image",
    "Sec-Fetch-Storage-Access": "none",
    "Accept-Encoding": "gzip, deflate, br, zstd",
    "Accept-Language": "en-US,en;q=0.9",
}

BROWSERS: tuple[dict[str, str], ...] = (
    {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                   "Chrome/156.0.0.0 Safari/537.36",
     "sec-ch-ua": '"Not:A-Brand";v="8", "Chromium";v="156", "Google Chrome";v="156"',
     "sec-ch-ua-mobile": "?0", "sec-ch-ua-platform": '"Linux"', **_CHROME_IMG},
    {"User-Agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                   "Chrome/155.0.0.0 Safari/537.36",
     "sec-ch-ua": '"Google Chrome";v="155", "Chromium";v="155", "Not_A Brand";v="24"',
     "sec-ch-ua-mobile": "?0", "sec-ch-ua-platform": '"Windows"', **_CHROME_IMG},
    {"User-Agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
                   "Chrome/156.0.0.0 Safari/537.36 Edg/156.0.0.0",
     "sec-ch-ua": '"Microsoft Edge";v="156", "Chromium";v="156", "Not:A-Brand";v="8"',
     "sec-ch-ua-mobile": "?0", "sec-ch-ua-platform": '"macOS"', **_CHROME_IMG},
    {"User-Agent": "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:146.0) Gecko/20100101 Firefox/146.0",
     "Accept": "image/avif,image/webp,image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5",
     "Accept-Language": "en-US,en;q=0.5", "Accept-Encoding": "gzip, deflate, br, zstd",
     "Sec-Fetch-Dest": "image", "Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Site": "cross-site"},
    {"User-Agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
                   "Version/19.1 Safari/605.1.15",
     "Accept": "image/webp,image/avif,image/jxl,image/heic,image/heic-sequence,video/*;q=0.8,image/png,"
               "image/svg+xml,image/*;q=0.8,*/*;q=0.5",
     "Accept-Language": "en-GB,en;q=0.9", "Accept-Encoding": "gzip, deflate, br",
     "Sec-Fetch-Dest": "image", "Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Site": "cross-site"},
)

CLI_HEADERS = {"User-Agent": "node-fetch/1.0 (+https://github.com/bitinn/node-fetch)",
               "Content-Type": "application/json", "Accept": "*/*", "Accept-Encoding": "gzip,deflate"}


@dataclass(frozen=True)
class Request:
    """One request of the mix and the status the inspector must answer."""

    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    expect: int = 200

    def wire(self) -> bytes:
        """The whole HTTP/1.1 request as bytes (keep-alive)."""
        head = [f"{self.method} {self.path} HTTP/1.1", f"Host: {HOST}"]
        head += [f"{k}: {v}" for k, v in self.headers.items()]
        if self.body or self.method == "POST":
            head.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + self.body


def _payload(rng: random.Random) -> dict[str, object]:
    v5 = rng.random() < 0.4
    on = {name for name in PROVIDERS if rng.random() < 0.3} | {"data"}
    if not v5 or rng.random() < 0.9:  # 4.x always reports a router
        on.add("router")
    else:
        on.discard("router")
    version = rng.choice(V5 if v5 else V4)
    resources = rng.randint(0, 14)
    project_id = rng.choice(PROJECT_IDS) if rng.random() < 0.3 else None
    return beacon_payload(version, on, resources, project_id)


def _beacon(rng: random.Random) -> Request:
    headers = {**rng.choice(BROWSERS), "Referer": rng.choice(ORIGINS), "Connection": "keep-alive"}
    return Request("GET", f"/telemetry?payload={btoa_json(_payload(rng))}", headers)


def _invalid(rng: random.Random) -> Request:
    good = btoa_json(_payload(rng))
    headers = {**rng.choice(BROWSERS), "Referer": rng.choice(ORIGINS), "Connection": "keep-alive"}
    flavour = rng.randrange(4)
    if flavour == 0 and "+" in good:
        query = "payload=" + good.replace("+", " ").replace(" ", "%20")  # what a form decoder did
    elif flavour == 1:
        query = "payload=" + good[: len(good) - 5]  # cut short
    elif flavour == 2:
        query = "payload=" + base64.b64encode(b'{"providers":{"data":true},"version":').decode()
    else:
        query = "foo=bar"
    return Request("GET", f"/telemetry?{query}", headers, expect=400)


def _cli(rng: random.Random) -> Request:
    body = {"nodeEnv": "development", "nodeVersion": rng.choice(("v22.11.0", "v20.18.1", "v24.2.0")),
            "os": rng.choice(("Linux", "Darwin", "Windows_NT")), "osVersion": "6.8.0",
            "command": rng.choice(("dev", "build", "start", "add")),
            "packages": [{"name": "@refinedev/core", "version": rng.choice(V4 + V5)},
                         {"name": "@refinedev/cli", "version": "2.16.52"}],
            "projectFramework": rng.choice(("vite", "nextjs", "remix")),
            "projectId": rng.choice(PROJECT_IDS)}
    data = json.dumps(body).encode()
    return Request("POST", "/cli", {**CLI_HEADERS, "Connection": "keep-alive"}, data)


def build_mix(size: int = 400, seed: int = 6) -> list[Request]:
    """``size`` requests in a fixed pseudo-random order."""
    rng = random.Random(seed)
    mix = []
    for _ in range(size):
        roll = rng.random()
        mix.append(_beacon(rng) if roll < 0.88 else _invalid(rng) if roll < 0.96 else _cli(rng))
    return mix


def expected_share(mix: list[Request]) -> float:
    """Fraction of the mix the inspector answers 2xx."""
    return sum(r.expect < 300 for r in mix) / len(mix)
