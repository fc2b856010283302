"""HAR import: DevTools HAR files decoded exactly as if the requests had been received.

The HAR here is built the way Chrome's DevTools writes one (HTTP/2 pseudo
headers and lower-case names, ``queryString`` split from the raw query,
``_initiator``/``_resourceType`` extras) from the requests the real
@refinedev/core sent in ``tests/data/real_beacons.json``, mixed with the
page's other requests, which must be skipped.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import mockserver.cli.main as cli
from mockserver.core.capture import RawRequest, capture
from mockserver.core.clock import parse_utc
from mockserver.core.wire import MAX_HEADER_BYTES
from mockserver.formats import har
from mockserver.formats.har import HarError, HarFile, import_har
from mockserver.formats.progress import Cancelled
from mockserver.records.collected import raw_url
from mockserver.storage.store import BeaconStore

DATA = Path(__file__).parent / "data"
CAPTURES = json.loads((DATA / "real_beacons.json").read_text())
REAL = [(entry, request) for entry in CAPTURES for request in entry["requests"]]


def _timings() -> dict:
    return {"blocked": 0.4, "dns": -1, "ssl": -1, "connect": -1, "send": 0.1, "wait": 20.5, "receive": 0.2,
            "_blocked_queueing": 0.3}


def chrome_entry(url: str, headers: dict[str, str], started: str, *, method: str = "GET", status: int = 200,
                 mime: str = "image/gif", post: str | None = None, resource_type: str = "image") -> dict:
    """One entry as Chrome's DevTools exports it for an HTTP/2 request."""
    authority, _, rest = url.split("://", 1)[1].partition("/")
    path_query = "/" + rest
    query = path_query.partition("?")[2]
    request_headers = [{"name": ":authority", "value": authority}, {"name": ":method", "value": method},
                       {"name": ":path", "value": path_query}, {"name": ":scheme", "value": "https"}]
    request_headers += [{"name": k.lower(), "value": v} for k, v in headers.items() if k.lower() != "host"]
    entry: dict[str, Any] = {
        "_initiator": {"type": "script"}, "_priority": "Low", "_resourceType": resource_type, "cache": {},
        "connection": "443", "pageref": "page_1",
        "request": {
            "method": method, "url": url, "httpVersion": "h2", "headers": request_headers,
            "queryString": [{"name": p.partition("=")[0], "value": p.partition("=")[2]}
                            for p in query.split("&") if p],
            "cookies": [], "headersSize": -1, "bodySize": len(post.encode()) if post else 0,
        },
        "response": {"status": status, "statusText": "", "httpVersion": "h2", "headers": [], "cookies": [],
                     "content": {"size": 43, "mimeType": mime}, "redirectURL": "", "headersSize": -1,
                     "bodySize": 43, "_transferSize": 120, "_error": None},
        "serverIPAddress": "104.21.0.1", "startedDateTime": started, "time": 21.2, "timings": _timings(),
    }
    if post is not None:
        entry["request"]["postData"] = {"mimeType": "application/json", "text": post}
    return entry


def realistic_har() -> tuple[dict, list[tuple[dict, dict]]]:
    """A page load per captured beacon, with the page's own requests around each."""
    entries = []
    for n, (entry, request) in enumerate(REAL):
        page = entry["page_url"].split("?")[0].rstrip("/")
        started = f"2026-11-26T06:{n:02d}:12.{n:03d}Z"
        entries.append(chrome_entry(entry["page_url"], {"accept": "text/html"}, f"2026-11-26T06:{n:02d}:11.000Z",
                                    mime="text/html", resource_type="document"))
        entries.append(chrome_entry(f"{page}/app.js", {"referer": entry["page_url"]},
                                    f"2026-11-26T06:{n:02d}:11.500Z", mime="text/javascript",
                                    resource_type="script"))
        entries.append(chrome_entry(f"https://telemetry.refine.dev{request['path']}?{request['raw_query']}",
                                    request["headers"], started))
    # Neighbours that must not be taken for telemetry
    entries.append(chrome_entry("https://refine.dev/telemetry?payload=eyJ9", {}, "2026-11-26T07:00:00.000Z"))
    entries.append(chrome_entry("https://fonts.googleapis.com/css2?family=Inter", {}, "2026-11-26T07:00:01.000Z",
                                mime="text/css", resource_type="stylesheet"))
    entries.append(chrome_entry("https://telemetry.refine.dev.evil.example/telemetry?payload=x", {},
                                "2026-11-26T07:00:02.000Z"))
    har = {"log": {"version": "1.2", "creator": {"name": "WebInspector", "version": "537.36"},
                   "pages": [{"startedDateTime": "2026-11-26T06:00:11.000Z", "id": "page_1", "title": "fixture",
                              "pageTimings": {"onContentLoad": 120, "onLoad": 200}}],
                   "entries": entries}}
    return har, REAL


def _write(tmp_path: Path, har: object, name: str = "session.har") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(har), encoding="utf-8")
    return path


def test_every_refine_request_is_decoded_exactly_and_the_rest_skipped(tmp_path, store):
    har, real = realistic_har()
    path = _write(tmp_path, har)
    live_session = store.session
    seen = []
    result = import_har(store, path, progress=lambda done, total: seen.append((done, total)))
    assert result.imported == len(real) == 18
    assert result.skipped == len(har["log"]["entries"]) - len(real)
    assert result.invalid == 0 and result.malformed == 0
    # First the check (entries read, no total yet), then the import with its total
    entries = result.entries
    assert seen == [(n, 0) for n in range(1, entries + 1)] + [(n, entries) for n in range(entries + 1)]
    assert f"imported 18 into session {result.session}, skipped {result.skipped}" in result.summary()

    records = store.query(session=result.session)
    assert [r.id for r in records] == result.ids
    sessions = {s.id: s for s in store.sessions()}
    assert sessions[result.session].label == "import: session.har"
    assert store.session == live_session  # a running server keeps recording into its own session
    for n, (record, (entry, request)) in enumerate(zip(records, real, strict=True)):
        # Exactly what the live mock records for the same request (headers as its WSGI layer names them)
        direct = capture(RawRequest("GET", request["path"], request["raw_query"],
                                    {k.title(): v for k, v in request["headers"].items()}, scheme="https"))
        assert record.request.query == request["raw_query"]
        assert record.payload == entry["decoded"][0] and list(record.payload) == list(entry["decoded"][0])
        assert record.encoding == entry["decoded_text_encoding"][0]
        assert record.raw_payload == direct.raw_payload
        assert record.client == direct.client
        assert record.notes == direct.notes
        assert record.received_at == f"2026-11-26T06:{n:02d}:12.{n:03d}Z"
        assert record.request.headers["Host"] == "telemetry.refine.dev"
        assert not any(k.startswith(":") for k in record.request.headers)


def test_url_wins_over_a_form_decoded_query_string(tmp_path, store):
    """Firefox writes queryString values form-decoded ('+' as a space); the URL keeps the truth."""
    entry, request = next((e, r) for e, r in REAL if e["scenario"] == "projectid-plus-slash")
    har_entry = chrome_entry(f"https://telemetry.refine.dev/telemetry?{request['raw_query']}", request["headers"],
                             "2026-11-26T06:00:00+01:00")
    har_entry["request"]["queryString"] = [{"name": "payload",
                                            "value": request["raw_query"].removeprefix("payload=").replace("+", " ")}]
    result = import_har(store, _write(tmp_path, {"log": {"entries": [har_entry]}}))
    record = store.get(result.ids[0])
    assert record.status == "ok" and record.payload["projectId"] == entry["project_id"]
    assert record.received_at == "2026-11-26T05:00:00.000Z"


def test_post_bodies_and_invalid_requests_are_recorded_like_live_ones(tmp_path, store):
    cli_body = json.dumps({"nodeEnv": "development", "command": "dev", "projectId": "abc"})
    entries = [
        chrome_entry("https://telemetry.refine.dev/cli", {"content-type": "application/json"},
                     "2026-11-26T06:00:00Z", method="POST", post=cli_body, resource_type="fetch"),
        chrome_entry("https://telemetry.refine.dev/telemetry?payload=not base64!", {}, "2026-11-26T06:00:01Z"),
        chrome_entry("https://telemetry.refine.dev:99999/telemetry", {}, "2026-11-26T06:00:02Z"),
        chrome_entry("https://telemetry.refine.dev/cli", {}, "2026-11-26T06:00:03Z", method="POST", post="x"),
    ]
    entries[-1]["request"]["postData"]["encoding"] = "base64"
    result = import_har(store, _write(tmp_path, {"log": {"version": "1.2", "entries": entries}}))
    assert (result.imported, result.invalid, result.skipped, result.malformed) == (2, 1, 0, 2)
    cli_record, bad = (store.get(i) for i in result.ids)
    assert cli_record.kind == "cli" and cli_record.payload["projectId"] == "abc"
    assert cli_record.request.body == cli_body
    assert bad.status == "invalid" and bad.problems[0].startswith("base64: illegal character ' '")
    assert result.warnings == ["entry 2: malformed: unreadable url", "entry 3: malformed: postData.text is not base64"]


@pytest.mark.parametrize(("content", "message"), [
    (b"<html>not json</html>", "not a HAR file: not JSON"),
    (b'{"entries": []}', "not a HAR file: JSON without log.entries"),
    (b'{"log": {"entries": {}}}', "log.entries is not a list"),
    (b"[1, 2]", "JSON without log.entries"),
    (b"\xff\xfe\x00b", "not UTF-8 text"),
    (b"", "not JSON"),
])
def test_files_that_are_not_har_are_refused_clearly(tmp_path, store, content, message):
    path = tmp_path / "bad.har"
    path.write_bytes(content)
    with pytest.raises(HarError, match=message):
        import_har(store, path)
    assert store.count() == 0
    assert [s.label for s in store.sessions()] == [""]  # no import session was made


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(HarError, match="no such file"):
        HarFile(tmp_path / "nope.har")
    with pytest.raises(HarError, match="is a folder"):
        HarFile(tmp_path)


def test_cancel_keeps_what_was_imported(tmp_path, store):
    har, _ = realistic_har()
    path = _write(tmp_path, har)
    with pytest.raises(Cancelled):
        import_har(store, path, progress=lambda done, total: not total or done < 10)
    assert 0 < store.count() <= 4


def test_import_command_reports_counts(tmp_path, capsys):
    har, real = realistic_har()
    path = _write(tmp_path, har, "devtools.har")
    db = tmp_path / "journal.sqlite3"
    assert cli.main(["import", str(path), "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert f"imported {len(real)} into session" in out and f"skipped {len(har['log']['entries']) - len(real)}" in out
    assert cli.main(["import", str(path), "--db", str(db), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["imported"] == len(real) and len(report["ids"]) == len(real)
    store = BeaconStore(db)
    try:
        assert store.count() == 2 * len(real)
        assert [s.label for s in store.sessions() if s.label] == ["import: devtools.har"] * 2
    finally:
        store.close()


def test_import_command_on_a_non_har_file_exits_2_and_creates_nothing(tmp_path, capsys):
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    db = tmp_path / "journal.sqlite3"
    assert cli.main(["import", str(path), "--db", str(db)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is not a HAR file: not JSON" in err
    assert not db.exists()


def test_large_import_shows_progress_on_stderr(tmp_path, capsys):
    entry, request = REAL[0]
    entries = [chrome_entry(f"https://telemetry.refine.dev/telemetry?{request['raw_query']}", request["headers"],
                            f"2026-11-26T06:00:{i % 60:02d}.000Z") for i in range(600)]
    path = _write(tmp_path, {"log": {"entries": entries}})
    assert cli.main(["import", str(path), "--db", str(tmp_path / "j.sqlite3")]) == 0
    err = capsys.readouterr().err
    assert "importing 600/600 entries (100%)" in err


# -- hardening: the CLI as a subprocess on real files and a real SQLite journal ----------------------------

ROOT = Path(__file__).resolve().parent.parent
BEACON_URL = f"https://telemetry.refine.dev{REAL[0][1]['path']}?{REAL[0][1]['raw_query']}"


def run_import(db: Path, path: Path, *extra: str) -> subprocess.CompletedProcess:
    """``python3 -m mockserver import FILE --db DB`` in a child process."""
    return subprocess.run([sys.executable, "-m", "mockserver", "import", str(path), "--db", str(db), *extra],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)


def journal(db: Path) -> tuple[list[tuple[int, str]], list[str]]:
    """(sessions as (id, label), every stored record row as one JSON text) read with sqlite3 itself."""
    with closing(sqlite3.connect(db)) as conn:
        sessions = [(r[0], r[1]) for r in conn.execute("SELECT id, label FROM sessions ORDER BY id")]
        rows = [json.dumps(list(r)) for r in conn.execute("SELECT * FROM beacons ORDER BY id")]
    return sessions, rows


def beacon_entry(started: str = "2026-11-26T06:00:00.000Z", **changes) -> dict:
    """A Chrome entry of a real refine beacon."""
    entry = chrome_entry(BEACON_URL, REAL[0][1]["headers"], started)
    entry.update(changes)
    return entry


def test_dates_out_of_range_or_unreadable_are_a_warning_and_the_import_time(tmp_path):
    dates = ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "yesterday", None,
             "2026-11-26T06:00:00+01:00"]
    entries = [beacon_entry(d) for d in dates]
    del entries[3]["startedDateTime"]
    db = tmp_path / "j.sqlite3"
    before = datetime.now(UTC)
    done = run_import(db, _write(tmp_path, {"log": {"entries": entries}}, "dates.har"), "--json")
    after = datetime.now(UTC)
    assert done.returncode == 0 and "Traceback" not in done.stderr
    report = json.loads(done.stdout)
    assert (report["imported"], report["skipped"], report["malformed"]) == (5, 0, 0)
    assert report["warnings"] == [
        "entry 0: startedDateTime '0001-01-01T00:00:00+14:00' is out of range (before 0001-01-01 or after "
        "9999-12-31 in UTC); recorded with the import time",
        "entry 1: startedDateTime '9999-12-31T23:59:59-14:00' is out of range (before 0001-01-01 or after "
        "9999-12-31 in UTC); recorded with the import time",
        "entry 2: startedDateTime 'yesterday' is not an ISO 8601 date; recorded with the import time",
        "entry 3: no startedDateTime; recorded with the import time",
    ]
    assert done.stderr.splitlines() == [f"telemetry-inspector import: warning: {w}" for w in report["warnings"]]
    store = BeaconStore(db, start_session=False)
    try:
        records = store.query()
        assert [s.label for s in store.sessions()] == ["import: dates.har"]
    finally:
        store.close()
    for record in records[:4]:
        moment = parse_utc(record.received_at)
        assert before - timedelta(seconds=1) <= moment <= after and record.status == "ok"
    assert records[4].received_at == "2026-11-26T05:00:00.000Z"


def test_no_field_bypasses_the_host_filter(tmp_path):
    """``_inspector`` (this app's own export field) once let any host in; the URL's host decides now."""
    evil = chrome_entry("https://evil.example/steal?payload=x", {}, "2026-11-26T06:00:01Z")
    evil["_inspector"] = {}
    lookalike = chrome_entry("https://telemetry.refine.dev.evil.example/telemetry", {}, "2026-11-26T06:00:02Z")
    lookalike["_inspector"] = {"client_ip": "192.0.2.1", "kind": "beacon"}
    ours = beacon_entry(_inspector={"client_ip": "not an ip"})
    ours["request"]["headers"].append({"name": "host", "value": "evil.example"})  # the URL decides here too
    db = tmp_path / "j.sqlite3"
    done = run_import(db, _write(tmp_path, {"log": {"entries": [evil, lookalike, ours]}}, "x.har"))
    assert done.returncode == 0, done.stderr
    sessions, rows = journal(db)
    assert done.stdout.splitlines() == [
        f"imported 1 into session {sessions[0][0]}, skipped 2 (not telemetry.refine.dev) of 3 entries in "
        f"{tmp_path / 'x.har'}"]
    assert len(rows) == 1 and "evil" not in rows[0]
    store = BeaconStore(db, start_session=False)
    try:
        [record] = store.query()
    finally:
        store.close()
    assert record.request.headers["Host"] == "telemetry.refine.dev" and record.client["ip"] is None


def test_credentials_in_urls_are_never_stored(tmp_path):
    entry = beacon_entry()
    entry["request"]["url"] = BEACON_URL.replace("https://", "https://alice:s3cret@", 1)
    headers = entry["request"]["headers"]
    headers[0]["value"] = "alice:s3cret@telemetry.refine.dev"  # :authority
    headers[:] = [h for h in headers if h["name"] not in ("referer", "origin")]
    headers.append({"name": "referer", "value": "https://bob:hunter2@app.example:8443/page?x=1"})
    headers.append({"name": "origin", "value": "https://bob:hunter2@app.example:8443"})
    db = tmp_path / "j.sqlite3"
    assert run_import(db, _write(tmp_path, {"log": {"entries": [entry]}})).returncode == 0
    _, [row] = journal(db)
    for secret in ("alice", "s3cret", "bob", "hunter2", "@"):
        assert secret not in row
    store = BeaconStore(db, start_session=False)
    try:
        [record] = store.query()
    finally:
        store.close()
    assert record.request.headers["Host"] == "telemetry.refine.dev"
    assert record.request.headers["Referer"] == "https://app.example:8443/page?x=1"
    assert record.request.headers["Origin"] == "https://app.example:8443"
    assert raw_url(record) == BEACON_URL
    assert record.status == "ok"


def _padded_entry(head_bytes: int) -> dict:
    """A beacon whose request line and headers are exactly ``head_bytes`` long, as the server counts them."""
    entry = chrome_entry(BEACON_URL, {}, "2026-11-26T06:00:00Z")
    target = BEACON_URL.removeprefix("https://telemetry.refine.dev")
    fixed = len(f"GET {target} HTTP/1.1\r\nHost: telemetry.refine.dev\r\nX-Pad: \r\n\r\n")
    entry["request"]["headers"].append({"name": "x-pad", "value": "p" * (head_bytes - fixed)})
    return entry


def test_headers_are_capped_as_on_the_live_server(tmp_path):
    many = chrome_entry(BEACON_URL, {}, "2026-11-26T06:00:00Z")
    count = MAX_HEADER_BYTES // len("X-H00000: 1\r\n") + 1  # over the cap by their number alone
    many["request"]["headers"] += [{"name": f"x-h{n:05d}", "value": "1"} for n in range(count)]
    entries = [_padded_entry(MAX_HEADER_BYTES), _padded_entry(MAX_HEADER_BYTES + 1), many]
    db = tmp_path / "j.sqlite3"
    done = run_import(db, _write(tmp_path, {"log": {"entries": entries}}, "big.har"), "--json")
    report = json.loads(done.stdout)
    assert (report["imported"], report["refused"], report["malformed"], report["skipped"]) == (1, 2, 0, 0)
    assert report["refused_by"] == {"headers": 1, "target": 0, "head": 1}
    assert report["warnings"] == [
        "entry 1: refused: request line and headers over 1024 KiB (the live server answers 431 and records nothing)",
        "entry 2: refused: more than 100 headers (the live server answers 431 and records nothing)"]
    store = BeaconStore(db, start_session=False)
    try:
        [record] = store.query()
    finally:
        store.close()
    assert record.request.headers == {"Host": "telemetry.refine.dev",
                                      "X-Pad": entries[0]["request"]["headers"][-1]["value"]}
    assert record.status == "ok"


def test_an_import_makes_one_session_and_none_when_it_imports_nothing(tmp_path):
    db = tmp_path / "j.sqlite3"
    others = {"log": {"entries": [chrome_entry("https://example.com/", {}, "2026-11-26T06:00:00Z")]}}
    done = run_import(db, _write(tmp_path, others, "others.har"))
    assert done.returncode == 0
    assert done.stdout.splitlines()[0] == (f"imported 0, skipped 1 (not telemetry.refine.dev) of 1 entries in "
                                           f"{tmp_path / 'others.har'}")
    assert journal(db) == ([], [])
    assert run_import(db, _write(tmp_path, {"log": {"entries": []}}, "empty.har")).returncode == 0
    assert journal(db) == ([], [])
    assert run_import(db, _write(tmp_path, {"log": {"entries": [beacon_entry()] * 3}}, "three.har")).returncode == 0
    sessions, rows = journal(db)
    assert sessions == [(1, "import: three.har")] and len(rows) == 3
    bad = {"log": {"entries": [beacon_entry(), {"request": {"url": 42, "method": "GET"}}]}}
    assert run_import(db, _write(tmp_path, bad, "bad.har")).returncode == 2
    assert journal(db) == (sessions, rows)


@pytest.mark.parametrize(("content", "message"), [
    (b"<html>", "not JSON (Expecting value at line 1 column 1)"),
    (b'{"log": {"entries": [{"request": {"url": "u", "method": "GET"}}',
     "not JSON (Expecting ',' delimiter at line 1 column 64)"),
    (b'{"log": {"entries": []}} x', "not JSON (Extra data at line 1 column 26)"),
    (b'{"log": {\n  "entries": [],\n  "pages": [1 2]}}', "not JSON (Expecting ',' delimiter at line 3 column 15)"),
    (b'{"log": []}', "JSON without log.entries (save it from DevTools' Network panel: Export HAR)"),
    (b'{"log": {"entries": {}}}', "log.entries is not a list"),
    (b'{"log": {"entries": [], "entries": []}}', "more than one log.entries"),
    (b'{"log": {"entries": ["x"]}}', "entry 0: is a string, not an object"),
    (b'{"log": {"entries": [{}]}}', "entry 0: request is missing, not an object"),
    (b'{"log": {"entries": [{"request": {"url": 42, "method": "GET"}}]}}',
     "entry 0: request.url is a number, not a string"),
    (b'{"log": {"entries": [{"request": {"url": "https://telemetry.refine.dev/", "method": ""}}]}}',
     "entry 0: request.method is empty"),
    (b'{"log": {"entries": [{"request": {"url": "u", "method": "GET", "headers": [{"name": "a", "value": 1}]}}]}}',
     "entry 0: request.headers[0].value is a number, not a string"),
    (b'{"log": {"entries": [{"request": {"url": "u", "method": "GET", "headers": {}}}]}}',
     "entry 0: request.headers is an object, not a list"),
    (b'{"log": {"entries": [{"request": {"url": "u", "method": "GET", "postData": {"text": []}}}]}}',
     "entry 0: request.postData.text is a list, not a string"),
    (b'{"log": {"entries": [{"startedDateTime": 5, "request": {"url": "u", "method": "GET"}}]}}',
     "entry 0: startedDateTime is a number, not a string"),
    (b'{"log": {"entries": []}}\xff', "not UTF-8 text (byte 24)"),
])
def test_every_bad_input_is_one_line_exit_2_and_nothing_stored(tmp_path, content, message):
    path = tmp_path / "bad.har"
    path.write_bytes(content)
    db = tmp_path / "j.sqlite3"
    done = run_import(db, path)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == f"telemetry-inspector import: {path} is not a HAR file: {message}\n"
    assert not db.exists()


def _big_har(path: Path, megabytes: int) -> int:
    """A DevTools-like HAR of ``megabytes`` MB: many small page requests, every 500th a refine beacon."""
    page = json.dumps(chrome_entry("https://app.example/static/chunk.js?v=1", {"accept": "*/*", "referer":
                                   "https://app.example/"}, "2026-11-26T06:00:00.000Z"))
    page = page.replace('"mimeType": "image/gif"}', '"mimeType": "text/javascript", "text": "' + "x" * 1500 + '"}')
    beacon = json.dumps(beacon_entry())
    count = megabytes * 1_000_000 // len(page)
    with open(path, "w", encoding="utf-8") as out:
        out.write('{"log": {"version": "1.2", "creator": {"name": "WebInspector", "version": "537.36"}, '
                  '"pages": [], "entries": [\n')
        out.write(",\n".join(beacon if n % 500 == 0 else page for n in range(count)))
        out.write("\n]}}\n")
    return count


def _peak_rss_kib(*args: str) -> int:
    """Peak RSS of ``python3 -m mockserver ARGS``, measured in a fresh parent so no other child counts."""
    probe = ("import resource, subprocess, sys; "
             "done = subprocess.run([sys.executable, '-m', 'mockserver', *sys.argv[1:]], capture_output=True); "
             "assert done.returncode == 0, done.stderr; "
             "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    done = subprocess.run([sys.executable, "-c", probe, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    return int(done.stdout)


def test_memory_stays_bounded_whatever_the_file_size(tmp_path):
    """A 40 MB HAR: whole-file json.load needs several times its size; the stream, a few MB."""
    small, big = tmp_path / "small.har", tmp_path / "big.har"
    _big_har(small, 1)
    count = _big_har(big, 40)
    size_kib = big.stat().st_size // 1024
    baseline = _peak_rss_kib("import", str(small), "--db", str(tmp_path / "a.sqlite3"))
    peak = _peak_rss_kib("import", str(big), "--db", str(tmp_path / "b.sqlite3"))
    assert peak - baseline < size_kib // 2, (baseline, peak, size_kib)  # json.load of the file: > 3x its size
    sessions, rows = journal(tmp_path / "b.sqlite3")
    assert len(sessions) == 1 and len(rows) == (count + 499) // 500


def test_an_entry_over_the_limit_refuses_the_file_in_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(har, "MAX_ENTRY_CHARS", 4096)
    path = _write(tmp_path, {"log": {"entries": [beacon_entry(), beacon_entry(comment="x" * 5000)]}}, "big.har")
    db = tmp_path / "j.sqlite3"
    assert cli.main(["import", str(path), "--db", str(db)]) == 2
    size = f"{path.stat().st_size / 1024:.1f}".removesuffix(".0")
    assert capsys.readouterr().err == (f"telemetry-inspector import: {path}: entry 1 is over 4 KiB of JSON, the most "
                                       "one entry may take "
                                       f"(the file is {size} KiB); nothing was imported\n")
    assert not db.exists()


@pytest.mark.parametrize("ascii_only", [True, False])
@pytest.mark.parametrize("chunk", [1, 7, 4096])
def test_the_stream_reads_the_same_whatever_the_chunk_size(tmp_path, monkeypatch, chunk, ascii_only):
    """Values, numbers, escapes and multi-byte characters cut at every place a read can cut them."""
    document, _ = realistic_har()
    document["log"]["entries"][0]["time"] = 12.5e-3
    document["log"]["entries"][0]["comment"] = "é中😀 \\u00e9 \" \\\\"
    document["log"]["pages"][0]["pageTimings"]["onLoad"] = -1.25e+2
    # Numbers and literals right in the document and in log, before the entries: read by the stream itself
    document = {"_size": 1234.5e-1, "log": {"_count": 123456, "_flag": True, **document["log"]}}
    path = tmp_path / "s.har"
    path.write_text(json.dumps(document, ensure_ascii=ascii_only, indent=1), encoding="utf-8-sig")
    monkeypatch.setattr(har, "_CHUNK", chunk)
    with HarFile(path) as checked:
        assert checked.count == len(document["log"]["entries"])
        assert [entry for _, entry in checked.entries()] == document["log"]["entries"]
