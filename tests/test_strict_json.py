"""Strict JSON out, always: hostile payloads sent to a real server read back through every way out.

A lone surrogate (``"\\ud800"``), a number out of range (``1e400``, a 5000-digit
integer) and the non-JSON literals NaN/Infinity are sent as ``<img>`` beacons
over real sockets; the journal API, the event stream, ``serve --json``, every
export format and RemoteInspector must then give text that encodes as UTF-8
and that a strict parser (and Node's ``JSON.parse``) reads.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from mockserver.core.jsontext import dumps_strict, loads_strict
from mockserver.reach.remote import RemoteError, RemoteInspector
from mockserver.serving.server import InspectorServer
from mockserver.storage.store import BeaconStore
from tests.support.helpers import http

ROOT = Path(__file__).resolve().parents[1]
DIGITS = "9" * 5000

# JSON text as a hostile page would base64 it (JSON.stringify never writes these).
HOSTILE = {
    "surrogate": '{"projectId":"\\ud800","version":"4.58.0","resourceCount":2}',
    "overflow": '{"version":"4.58.0","resourceCount":1e400}',
    "nan": '{"resourceCount":NaN}',
    "infinity": '{"resourceCount":-Infinity}',
    "digits": '{"resourceCount":' + DIGITS + "}",
}
# name -> (status, payload, problems) every way out must show
EXPECTED: dict[str, tuple[str, Any, list[str]]] = {
    "surrogate": ("ok", {"projectId": "\ud800", "version": "4.58.0", "resourceCount": 2}, []),
    "overflow": ("invalid", {"version": "4.58.0", "resourceCount": "1e400"},
                 ["json: number out of range at resourceCount: 1e400, kept as text"]),
    "nan": ("invalid", None, ["json: NaN is not JSON"]),
    "infinity": ("invalid", None, ["json: -Infinity is not JSON"]),
    "digits": ("invalid", {"resourceCount": DIGITS},
               ["json: number out of range at resourceCount: 99999999999999999999… (5000 characters), kept as text"]),
}


def _no_constant(name: str) -> Any:
    raise AssertionError(f"{name} in the output: not JSON")


def strict(text: str) -> Any:
    """Parse like a strict RFC 8259 reader: valid UTF-8, no NaN/Infinity literals."""
    text.encode("utf-8")  # raises on a lone surrogate
    return json.loads(text, parse_constant=_no_constant)


def node_parse(text: str) -> Any:
    """What Node's JSON.parse reads from ``text`` (re-serialised by Node, then read here)."""
    node = shutil.which("node")
    if node is None:  # pragma: no cover - node is part of the test setup (scripts/install-test-deps)
        pytest.skip("node is not installed")
    result = subprocess.run([node, "-e", 'process.stdout.write(JSON.stringify(JSON.parse(require("fs")'
                                         '.readFileSync(0, "utf8"))))'],
                            input=text.encode("utf-8"), capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr.decode()
    return strict(result.stdout.decode("utf-8"))


def send_hostile(http_url: str) -> dict[str, int]:
    """Send every HOSTILE payload as a GET beacon; returns name -> HTTP status."""
    statuses = {}
    for name, text in HOSTILE.items():
        payload = base64.b64encode(text.encode("ascii")).decode("ascii")
        statuses[name], _, _ = http("GET", f"{http_url}/telemetry?payload={payload}")
    return statuses


def check_records(records: list[dict[str, Any]]) -> None:
    """``records`` are the HOSTILE beacons, in order, with the exact expected values."""
    assert len(records) == len(EXPECTED)
    for record, (name, (status, payload, problems)) in zip(records, EXPECTED.items(), strict=True):
        assert (name, record["status"], record["payload"], record["problems"]) == (name, status, payload, problems)
        # The raw query is kept exactly as it arrived.
        assert base64.b64decode(record["request"]["query"].removeprefix("payload=")).decode() == HOSTILE[name]


@pytest.fixture
def hostile(tmp_path, certificate_dir):
    """A real server on a file journal that has received every HOSTILE beacon."""
    store = BeaconStore(tmp_path / "journal.sqlite3")
    server = InspectorServer(store, port=0, https_port=0, certificate_dir=certificate_dir)
    server.start()
    try:
        statuses = send_hostile(server.listening.http_url)
        assert statuses == {"surrogate": 200, "overflow": 400, "nan": 400, "infinity": 400, "digits": 400}
        yield server
    finally:
        server.stop()
        store.close()


def test_the_journal_api_answers_strict_json(hostile):
    base = hostile.listening.http_url + "/__inspector"
    status, headers, body = http("GET", f"{base}/beacons")
    assert (status, headers["Content-Type"]) == (200, "application/json")
    text = body.decode("utf-8")
    assert '"projectId": "\\ud800"' in text and '"resourceCount": "1e400"' in text
    check_records(strict(text)["beacons"])
    check_records(node_parse(text)["beacons"])  # the parser the issue names
    for record_id, (_status_word, payload, problems) in enumerate(EXPECTED.values(), 1):
        status, _, body = http("GET", f"{base}/beacons/{record_id}")
        record = strict(body.decode("utf-8"))
        assert (status, record["id"], record["payload"], record["problems"]) == (200, record_id, payload, problems)


def test_the_event_stream_sends_strict_json(hostile):
    port = hostile.listening.port
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(b"GET /__inspector/events?since=0 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        stream = sock.makefile("rb")
        records = []
        while len(records) < len(EXPECTED):
            line = stream.readline()
            assert line, "the stream ended early"
            if line.startswith(b"data: "):
                records.append(strict(line[len(b"data: "):].decode("utf-8")))
    check_records(records)


def test_remote_inspector_reads_them(hostile):
    remote = RemoteInspector.connect(hostile.listening.https_url)
    beacons = remote.beacons(since=0)
    assert [b.payload for b in beacons] == [payload for _, payload, _ in EXPECTED.values()]
    seen: list[int] = []
    stop = threading.Event()

    def collect(beacon: Any) -> None:
        seen.append(beacon.id)
        if len(seen) == len(EXPECTED):
            stop.set()

    follower = threading.Thread(target=remote.follow, args=(collect, stop, 0))
    follower.start()
    follower.join(timeout=30)
    stop.set()
    assert seen == [1, 2, 3, 4, 5]


def test_follow_and_beacons_raise_on_an_error_answer(live_server):
    listening = live_server.listening
    # Not the journal: the catch-all records the request and answers 404.
    remote = RemoteInspector(base_url=f"{listening.http_url}/elsewhere", host="127.0.0.1",
                             https_port=listening.https_port, spki_pin=listening.spki_pin)
    stop = threading.Event()
    give_up = threading.Timer(30, stop.set)  # code that swallows the error returns instead of hanging
    give_up.start()
    try:
        with pytest.raises(RemoteError, match=r"/elsewhere/__inspector/beacons\?limit=1000&since=0 answered HTTP 404$"):
            remote.follow(lambda beacon: None, stop, since=0)
    finally:
        give_up.cancel()
    bad_limit = RemoteInspector.connect(listening.http_url)
    with pytest.raises(RemoteError, match=r"answered HTTP 400: limit must be between 1 and 10000$"):
        bad_limit.beacons(limit=0)


@pytest.mark.parametrize("fmt", ["json", "ndjson", "csv", "har"])
def test_every_export_format_is_strict(hostile, tmp_path, fmt):
    db = hostile.store.path
    result = subprocess.run([sys.executable, "-m", "mockserver", "export", "--format", fmt, "--out", "-", "--db", db],
                            cwd=ROOT, capture_output=True, timeout=120,
                            env={**os.environ, "TELEMETRY_INSPECTOR_HOME": str(tmp_path / "home")})
    assert result.returncode == 0, result.stderr.decode()
    text = result.stdout.decode("utf-8")  # raises on anything that is not UTF-8
    if fmt == "json":
        check_records(strict(text))
        check_records(node_parse(text))
    elif fmt == "ndjson":
        check_records([strict(line) for line in text.splitlines()])
    elif fmt == "har":
        entries = strict(text)["log"]["entries"]
        assert [entry["response"]["status"] for entry in entries] == [200, 400, 400, 400, 400]
        assert entries[1]["response"]["content"]["text"] == (
            "json: number out of range at resourceCount: 1e400, kept as text\n")
    else:
        rows = list(csv.DictReader(io.StringIO(text, newline="")))
        assert [(r["project_id"], r["resource_count"][:8]) for r in rows] == [
            ("\\ud800", "2"), ("", "1e400"), ("", ""), ("", ""), ("", "99999999")]
        assert rows[1]["problems"] == "json: number out of range at resourceCount: 1e400, kept as text"


def test_serve_json_prints_strict_ndjson(serve_process):
    serve = serve_process(https=True)
    send_hostile(serve.http_url)
    for _ in EXPECTED:
        serve.wait_for()
    lines = serve.texts()
    assert serve.stop() == 0
    check_records([strict(line) for line in lines])
    assert node_parse(lines[0])["payload"]["projectId"] == "\ud800"


# -- the helper itself --------------------------------------------------------------

def test_dumps_strict_never_writes_what_a_strict_reader_refuses():
    value = {"s": "a\ud800b", "k\udfff": [float("inf"), float("-inf"), float("nan"), 1.5]}
    assert dumps_strict(value) == '{"s": "a\\ud800b", "k\\udfff": ["Infinity", "-Infinity", "NaN", 1.5]}'
    assert dumps_strict({"big": 10**5000}).startswith('{"big": "0x')
    assert dumps_strict(["é", "\ud800"], ensure_ascii=True) == '["\\u00e9", "\\ud800"]'


def test_loads_strict_keeps_out_of_range_numbers_as_text_in_document_order():
    value, kept = loads_strict('{"a":[1,-1e999,{"b.c":1' + "0" * 400 + '}],"d":1e-400,"e":"\\ud800"}')
    assert value == {"a": [1, "-1e999", {"b.c": "1" + "0" * 400}], "d": 0.0, "e": "\ud800"}
    assert [(k.path, k.text[:6]) for k in kept] == [("a[1]", "-1e999"), ('a[2]["b.c"]', "100000")]
    for literal in ("NaN", "Infinity", "-Infinity"):
        with pytest.raises(ValueError, match=f"^{literal} is not JSON$"):
            loads_strict(f"[{literal}]")
