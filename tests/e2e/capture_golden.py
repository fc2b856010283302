"""Capture golden telemetry beacons from the REAL ``@refinedev/core`` packages.

For each refine version (4.58.0, 5.0.12) and each scenario below, this script

1. serves the fixture app (``fixture_apps.build`` / ``fixture_apps.serve``) on plain HTTP,
2. starts a local HTTPS listener with a fresh self-signed certificate for
   ``telemetry.refine.dev`` (generated with ``cryptography``),
3. launches headless Chromium with
   ``--host-resolver-rules="MAP telemetry.refine.dev 127.0.0.1:<port>"`` and
   ``--ignore-certificate-errors-spki-list=<base64 sha256 of the cert's SPKI>``,
4. waits until the page title says "fixture ready", then a few seconds more,
5. records every request line + headers that reached the listener.

Results go to ``tests/data/real_beacons.json``; the Node ``btoa`` / ``Buffer``
encoder vectors (``buffer_vectors.mjs``) go to ``tests/data/encoder_vectors.json``.

Usage::

    python tests/e2e/capture_golden.py                 # both versions, all scenarios, + vectors
    python tests/e2e/capture_golden.py --versions 5    # only refine 5
    python tests/e2e/capture_golden.py --vectors-only

Needs ``/usr/bin/chromium`` (or ``--chromium PATH``), Node/npm, and ``cryptography``.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import datetime as dt
import hashlib
import http.server
import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fixture_apps

from mockserver.core.payloads import BtoaRefused, beacon_payload, btoa_json

E2E_DIR = Path(__file__).resolve().parent
DATA_DIR = E2E_DIR.parent / "data"
TELEMETRY_HOST = "telemetry.refine.dev"

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# projectIds chosen so that btoa(JSON.stringify(payload)) contains raw "+" and "/"
# for BOTH the 4.58.0 (router:true) and 5.0.12 (router:false) payloads.
PID_PLUS_SLASH_ASCII = "p+/=?&?>?>"  # also ends in "=" padding in both versions
PID_PLUS_SLASH_LATIN1 = "p+/=?&éûû"  # é,û,û are single Latin-1 bytes via btoa


@dataclass(frozen=True)
class Scenario:
    name: str
    variant: str
    project_id: str | None = None
    dev: bool = False  # React development bundle (dev.html)
    expect_count: int = 1
    note: str = ""


SCENARIOS: list[Scenario] = [
    Scenario("default", "default"),
    Scenario("strict", "strict", note="StrictMode, production bundle (React does not double-invoke in production)"),
    Scenario("default-dev", "default", dev=True, note="React development bundle, no StrictMode"),
    Scenario("strict-dev", "strict", dev=True, note="StrictMode, development bundle: effects mount/unmount/mount"),
    Scenario("toplevel", "toplevel", note="top-level disableTelemetry prop: ignored by refine, beacon still sent"),
    Scenario("optout", "optout", expect_count=0, note="options.disableTelemetry: no beacon"),
    Scenario("projectid-plus-slash", "projectid", PID_PLUS_SLASH_ASCII, note="base64 has raw + / ="),
    Scenario("projectid-plus-slash-latin1", "projectid", PID_PLUS_SLASH_LATIN1,
             note="base64 has raw + /; Latin-1 bytes"),
    Scenario("projectid-cafe", "projectid", "café", note="btoa writes é as the single byte 0xE9"),
    Scenario("projectid-html", "projectid", "<b>x</b>"),
    Scenario("projectid-euro", "projectid", "€", expect_count=0, note="btoa throws above U+00FF: nothing sent"),
]

# 1x1 transparent GIF.
_GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")


# --------------------------------------------------------------------------- TLS


def make_cert(tmp: Path) -> tuple[Path, Path, str]:
    """Write a self-signed cert/key for TELEMETRY_HOST into ``tmp``; return (cert, key, spki_pin)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, TELEMETRY_HOST)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(TELEMETRY_HOST)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    spki = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    pin = base64.b64encode(hashlib.sha256(spki).digest()).decode("ascii")
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path, pin


class _Recorder:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []
        self.tls_errors: list[str] = []

    def add(self, item: dict[str, Any]) -> None:
        with self.lock:
            self.requests.append(item)

    def snapshot(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.requests)


class _TelemetryHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "telemetry-golden-capture"
    sys_version = ""

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass

    def _record_and_reply(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path, _, raw_query = self.path.partition("?")
        headers: dict[str, str] = {}
        for k, v in self.headers.items():
            headers[k] = f"{headers[k]}, {v}" if k in headers else v
        item = {
            "method": self.command,
            "path": path,
            "raw_query": raw_query,
            "request_line": self.requestline,
            "headers": headers,
        }
        if body:
            item["body"] = body.decode("latin-1")
        self.server.recorder.add(item)  # type: ignore[attr-defined]  # a _TLSServer
        self.send_response(200)
        self.send_header("Content-Type", "image/gif")
        self.send_header("Content-Length", str(len(_GIF)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(_GIF)

    do_GET = do_POST = do_HEAD = do_OPTIONS = do_PUT = _record_and_reply


class _TLSServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, ctx: ssl.SSLContext, recorder: _Recorder) -> None:
        super().__init__(("127.0.0.1", 0), _TelemetryHandler)
        self.ctx = ctx
        self.recorder = recorder

    def finish_request(self, request, client_address) -> None:
        # TLS handshake in the per-connection thread, so one slow client can't block accept().
        try:
            request.settimeout(15)
            tls = self.ctx.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            self.recorder.tls_errors.append(repr(exc))
            return
        try:
            self.RequestHandlerClass(tls, client_address, self)  # type: ignore[arg-type]  # typeshed: Self
        finally:
            with contextlib.suppress(OSError):
                tls.close()


@contextlib.contextmanager
def https_listener(cert: Path, key: Path) -> Iterator[tuple[int, _Recorder]]:
    """Run a recording HTTPS server on 127.0.0.1:<free port>; yield (port, recorder)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert), str(key))
    ctx.set_alpn_protocols(["http/1.1"])
    recorder = _Recorder()
    server = _TLSServer(ctx, recorder)
    thread = threading.Thread(target=server.serve_forever, name="telemetry-https", daemon=True)
    thread.start()
    try:
        yield server.server_address[1], recorder
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# ---------------------------------------------------------------------- Chromium


def chromium_version(chromium: str) -> str:
    out = subprocess.run([chromium, "--version"], capture_output=True, text=True, timeout=60).stdout
    m = re.search(r"(Chrom\w+ [\d.]+)", out)
    return m.group(1) if m else out.strip()


def _devtools_port(user_data_dir: Path, deadline: float) -> int | None:
    f = user_data_dir / "DevToolsActivePort"
    while time.monotonic() < deadline:
        with contextlib.suppress(FileNotFoundError, ValueError, IndexError):
            return int(f.read_text().splitlines()[0])
        time.sleep(0.1)
    return None


def _page_title(devtools_port: int) -> str | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{devtools_port}/json/list", timeout=2) as resp:
            targets = json.load(resp)
    except (OSError, ValueError):
        return None
    for t in targets:
        if t.get("type") == "page":
            return t.get("title")
    return None


def run_chromium(
    chromium: str, url: str, listener_port: int, pin: str, settle_s: float, load_timeout_s: float = 30.0
) -> dict[str, Any]:
    """Open ``url`` in a fresh headless Chromium mapped to the listener; return page info."""
    with tempfile.TemporaryDirectory(prefix="chromium-golden-") as ud:
        udd = Path(ud)
        args = [
            chromium,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={udd}",
            f"--host-resolver-rules=MAP {TELEMETRY_HOST} 127.0.0.1:{listener_port}",
            f"--ignore-certificate-errors-spki-list={pin}",
            "--remote-debugging-port=0",
            url,
        ]
        proc = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        title: str | None = None
        ready = False
        try:
            deadline = time.monotonic() + load_timeout_s
            port = _devtools_port(udd, deadline)
            while port is not None and time.monotonic() < deadline:
                title = _page_title(port)
                if title and title.startswith("fixture ready"):
                    ready = True
                    break
                time.sleep(0.2)
            time.sleep(settle_s)
        finally:
            # Kill the process group of the Chromium we started (wrapper script + its children).
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        return {"page_title": title, "page_ready": ready}


# ------------------------------------------------------------------------ decode


def decode_payload(raw_query: str) -> tuple[dict[str, Any] | None, str | None, str | None]:
    """Decode ``payload=<base64>`` from a RAW query string (no form decoding: '+' stays '+').

    Returns (payload, text_encoding, error): base64 -> bytes -> UTF-8 if valid, else Latin-1 -> JSON.
    """
    value = None
    for part in raw_query.split("&"):
        name, sep, val = part.partition("=")
        if name == "payload" and sep:
            value = val
            break
    if value is None:
        return None, None, "no payload parameter"
    try:
        data = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        return None, None, f"base64: {exc}"
    try:
        text, enc = data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        text, enc = data.decode("latin-1"), "latin-1"
    try:
        return json.loads(text), enc, None
    except ValueError as exc:
        return None, enc, f"json: {exc}"


def predicted_btoa(version: str, project_id: str | None) -> str | None:
    """What btoa(JSON.stringify(payload)) should give for the fixture (no providers set: 4.x reports data
    and router, 5.x only data), or None where btoa would throw."""
    providers = ("router", "data") if version.startswith("4.") else ("data",)
    try:
        return btoa_json(beacon_payload(version, providers, 2, project_id))
    except BtoaRefused:
        return None


# -------------------------------------------------------------------------- main


def capture(versions: list[int], chromium: str, settle_s: float) -> list[dict[str, Any]]:
    chrome = chromium_version(chromium)
    captured_on = dt.date.today().isoformat()
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="golden-tls-") as tmp:
        cert, key, pin = make_cert(Path(tmp))
        for major in versions:
            refine_version = fixture_apps.REFINE_VERSIONS[major]
            dist = fixture_apps.build(major)
            with fixture_apps.serve(dist) as base:
                for sc in SCENARIOS:
                    url = fixture_apps.page_url(base, sc.variant, sc.project_id, dev=sc.dev)
                    with https_listener(cert, key) as (port, rec):
                        page = run_chromium(chromium, url, port, pin, settle_s)
                        reqs = rec.snapshot()
                        tls_errors = list(rec.tls_errors)
                    decoded, encodings, errors = [], [], []
                    for r in reqs:
                        p, enc, err = decode_payload(r["raw_query"])
                        decoded.append(p)
                        encodings.append(enc)
                        errors.append(err)
                    expected_q = predicted_btoa(refine_version, sc.project_id)
                    entry = {
                        "refine_version": refine_version,
                        "scenario": sc.name,
                        "page_url": url,
                        "count": len(reqs),
                        "requests": reqs,
                        "decoded": decoded,
                        "decoded_text_encoding": encodings,
                        "expected_count": sc.expect_count,
                        "predicted_raw_query": None if expected_q is None else f"payload={expected_q}",
                        "matches_prediction": all(r["raw_query"] == f"payload={expected_q}" for r in reqs),
                        "project_id": sc.project_id,
                        "react_build": "development" if sc.dev else "production",
                        "note": sc.note,
                        "page_title": page["page_title"],
                        "page_ready": page["page_ready"],
                        "chromium": chrome,
                        "captured_on": captured_on,
                    }
                    if any(errors):
                        entry["decode_errors"] = errors
                    if tls_errors:
                        entry["tls_errors"] = tls_errors
                    flag = "ok" if (len(reqs) == sc.expect_count and page["page_ready"]) else "UNEXPECTED"
                    print(f"[{flag}] refine {refine_version} {sc.name}: {len(reqs)} request(s); "
                          f"title={page['page_title']!r}")
                    for r in reqs:
                        print(f"      {r['request_line']}")
                    results.append(entry)
    return results


def write_vectors(out: Path) -> None:
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("node not found on PATH")
    subprocess.run([node, str(E2E_DIR / "buffer_vectors.mjs"), str(out)], check=True, timeout=60)
    print(f"wrote {out}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--versions", type=int, nargs="+", default=sorted(fixture_apps.REFINE_VERSIONS))
    ap.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    ap.add_argument("--settle", type=float, default=3.0, help="seconds to wait after the page is ready")
    ap.add_argument("--out", type=Path, default=DATA_DIR / "real_beacons.json")
    ap.add_argument("--vectors-out", type=Path, default=DATA_DIR / "encoder_vectors.json")
    ap.add_argument("--vectors-only", action="store_true")
    args = ap.parse_args(argv)

    args.vectors_out.parent.mkdir(parents=True, exist_ok=True)
    write_vectors(args.vectors_out)
    if args.vectors_only:
        return 0
    results = capture(args.versions, args.chromium, args.settle)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    bad = [f"{r['refine_version']} {r['scenario']}" for r in results
           if r["count"] != r["expected_count"] or not r["page_ready"]]
    if bad:
        print("unexpected results: " + ", ".join(bad), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
