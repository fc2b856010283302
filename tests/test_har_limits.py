"""HAR import keeps exactly what the live server records, and skips what it refuses before the app runs.

The server's HTTP layer (granian: hyper) answers more than 100 header lines 431 and a request target
over 65,534 bytes 414, and records nothing (``tests/reliability/test_framing.py``). Each entry here is
also sent, as a browser sends it over HTTP/1.1, to a live inspector: the import must keep the same
entries, with the same status, and count the others by reason in its summary line.
"""

from __future__ import annotations

import socket
from urllib.parse import quote

import pytest

from mockserver.core.capture import capture
from mockserver.formats.har import REFUSED_WARNINGS, entry_request, import_har
from mockserver.storage.store import BeaconStore
from tests.test_har_import import BEACON_URL, _write, chrome_entry, run_import

HOST = "telemetry.refine.dev"
PREFIX = "/telemetry?payload="


def _headers(lines: int) -> dict[str, str]:
    """Headers that make ``lines`` header lines with the Host line the URL gives."""
    return {f"x-h{n:03d}": "1" for n in range(lines - 1)}


def _long_target(size: int, tail: str = "") -> str:
    """A beacon URL whose request target is ``size`` bytes as sent (``tail`` percent-encoded)."""
    sent = len(quote(tail, safe=""))
    return f"https://{HOST}{PREFIX}{'A' * (size - len(PREFIX) - sent)}{tail}"


# name -> (the entry's URL, its extra headers, the reason the import refuses it: None = imported)
CASES = {
    "100 header lines": (BEACON_URL, _headers(100), None),
    "101 header lines": (BEACON_URL, _headers(101), "headers"),
    "cookie crumbs are one line": (BEACON_URL, {**_headers(99), "cookie": "a=1"}, None),
    "a target of 65,534 bytes": (_long_target(65_534), {}, None),
    "a target of 65,535 bytes": (_long_target(65_535), {}, "target"),
    "é counts as the 6 bytes sent": (_long_target(65_534, "é"), {}, None),
    "é over the limit": (_long_target(65_535, "é"), {}, "target"),
}


def _entry(name: str) -> dict:
    url, headers, _ = CASES[name]
    entry = chrome_entry(url, {}, "2026-11-26T06:00:00Z")
    entry["request"]["headers"] += [{"name": k, "value": v} for k, v in headers.items()]
    if name == "cookie crumbs are one line":  # HTTP/2 splits Cookie; HTTP/1.1 sends it as one line
        entry["request"]["headers"].append({"name": "cookie", "value": "b=2"})
    return entry


def _as_a_browser_sends_it(entry: dict) -> bytes:
    """The entry's request over HTTP/1.1: Host first, Cookie crumbs joined, the target percent-encoded."""
    url = entry["request"]["url"]
    target = quote(url.removeprefix(f"https://{HOST}"), safe="/?=&%+")
    pairs = [(h["name"], h["value"]) for h in entry["request"]["headers"] if not h["name"].startswith(":")]
    cookies = "; ".join(v for n, v in pairs if n == "cookie")
    lines = [f"Host: {HOST}"] + [f"{n}: {v}" for n, v in pairs if n != "cookie"] + \
            ([f"Cookie: {cookies}"] if cookies else [])
    return f"GET {target} HTTP/1.1\r\n{''.join(line + chr(13) + chr(10) for line in lines)}\r\n".encode("ascii")


def _status_line(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(request)
        answer = b""
        while b"\r\n" not in answer and (chunk := sock.recv(65536)):
            answer += chunk
    return answer.split(b"\r\n")[0]


# what the live server answers a request it refuses, by the import's reason
REFUSED_ANSWERS = {"headers": b"HTTP/1.1 431 Request Header Fields Too Large", "target": b"HTTP/1.1 414 URI Too Long"}


@pytest.mark.parametrize("name", list(CASES))
def test_the_import_refuses_an_entry_exactly_when_the_live_server_does(live_server, name):
    entry = _entry(name)
    refused = CASES[name][2]
    before = live_server.store.count()
    answer = _status_line(live_server.listening.port, _as_a_browser_sends_it(entry))
    recorded = live_server.store.count() - before

    imported = entry_request(entry)
    if refused:
        assert (recorded, answer) == (0, REFUSED_ANSWERS[refused])
        assert imported == REFUSED_WARNINGS[refused]
        return
    assert recorded == 1 and answer in (b"HTTP/1.1 200 OK", b"HTTP/1.1 400 Bad Request")
    assert not isinstance(imported, str)
    live = live_server.store.query()[-1]
    assert capture(imported).status == live.status == ("ok" if answer.endswith(b"OK") else "invalid")
    if "é" not in name:  # the live server got é percent-encoded; the file has it as it was written
        assert (imported.path, imported.query) == (live.request.path, live.request.query)


def test_the_summary_counts_each_reason(tmp_path):
    entries = [_entry(name) for name in CASES] + [_entry("101 header lines")]
    path = _write(tmp_path, {"log": {"entries": entries}}, "limits.har")
    store = BeaconStore(tmp_path / "j.sqlite3", start_session=False)
    try:
        result = import_har(store, path)
    finally:
        store.close()
    assert (result.imported, result.invalid, result.refused) == (4, 2, 4)
    assert result.refused_by == {"headers": 2, "target": 2, "head": 0}
    assert result.summary() == (
        f"imported 4 (2 invalid) into session {result.session}, skipped 0 (not telemetry.refine.dev), refused 4 "
        f"as the live server would (2 with more than 100 headers, 2 with a request target over 65,534 bytes) "
        f"of 8 entries in {path}")
    assert result.warnings == [
        "entry 1: refused: more than 100 headers (the live server answers 431 and records nothing)",
        "entry 4: refused: a request target over 65,534 bytes (the live server answers 414 and records nothing)",
        "entry 6: refused: a request target over 65,534 bytes (the live server answers 414 and records nothing)",
        "entry 7: refused: more than 100 headers (the live server answers 431 and records nothing)"]


def test_the_import_command_prints_the_same_counts(tmp_path):
    entries = [_entry("100 header lines"), _entry("101 header lines"), _entry("a target of 65,535 bytes")]
    path = _write(tmp_path, {"log": {"entries": entries}}, "limits.har")
    done = run_import(tmp_path / "j.sqlite3", path)
    assert (done.returncode, done.stdout) == (0, (
        "imported 1 into session 1, skipped 0 (not telemetry.refine.dev), refused 2 as the live server would "
        f"(1 with more than 100 headers, 1 with a request target over 65,534 bytes) of 3 entries in {path}\n"))
    assert done.stderr.splitlines() == [
        f"telemetry-inspector import: warning: entry {n}: {REFUSED_WARNINGS[key]}" for n, key in ((1, "headers"),
                                                                                                  (2, "target"))]
