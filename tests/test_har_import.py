"""HAR import: DevTools HAR files decoded exactly as if the requests had been received.

The HAR here is built the way Chrome's DevTools writes one (HTTP/2 pseudo
headers and lower-case names, ``queryString`` split from the raw query,
``_initiator``/``_resourceType`` extras) from the requests the real
@refinedev/core sent in ``tests/data/real_beacons.json``, mixed with the
page's other requests, which must be skipped.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mockserver import cli
from mockserver.capture import RawRequest, capture
from mockserver.har import HarError, HarFile, import_har
from mockserver.progress import Cancelled
from mockserver.store import BeaconStore

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
    entry = {
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
    for n, (record, (entry, request)) in enumerate(zip(records, real)):
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
