"""Export: JSON/NDJSON (the one record form), CSV, HAR 1.2 (checked against the HAR schema), filters,
redaction, atomic writes, stdout, progress and clear errors."""

from __future__ import annotations

import csv
import io
import json
import os
import stat
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from jsonschema import Draft6Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT6

import mockserver.cli.main as cli
from mockserver.core.beacon import Summary
from mockserver.core.capture import RawRequest, capture
from mockserver.core.payloads import btoa_json
from mockserver.formats.export import CSV_COLUMNS, export_records, export_store, write_records
from mockserver.formats.har import import_har
from mockserver.formats.progress import Cancelled
from mockserver.records.redact import Redactor
from mockserver.records.view import RecordFilter
from mockserver.storage import files
from mockserver.storage.recorder import Recorder
from mockserver.storage.store import BeaconStore
from tests.support.helpers import CHROME_UA, REFINE_4_PAYLOAD

DATA = Path(__file__).parent / "data"
CAPTURES = json.loads((DATA / "real_beacons.json").read_text())
START = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)


def har_validator() -> Draft6Validator:
    """The HAR 1.2 JSON schema (npm har-schema 2.0.0, ISC, vendored in tests/data/har-schema)."""
    schemas = [json.loads(p.read_text()) for p in (DATA / "har-schema").glob("*.json")]
    registry = Registry().with_resources(
        (s["$id"].rstrip("#"), Resource.from_contents(s, default_specification=DRAFT6)) for s in schemas)
    return Draft6Validator(next(s for s in schemas if s["$id"] == "har.json#"), registry=registry)


def fill(store: BeaconStore) -> list[int | None]:
    """Real beacons plus one of every other kind, a minute apart; returns the ids."""
    recorder = Recorder(store)
    raws = [RawRequest(r["method"], r["path"], r["raw_query"], r["headers"], scheme="https", peer="192.0.2.10")
            for e in CAPTURES for r in e["requests"]]
    raws += [
        RawRequest("POST", "/projects", "", {"Host": "telemetry.refine.dev", "Content-Type": "application/json"},
                   b'{"email":"jane@corp.example","answers":{"a":"=cmd|x"},"source":"CREATE_REFINE_APP"}',
                   peer="192.0.2.11"),
        RawRequest("POST", "/cli", "", {"Host": "telemetry.refine.dev", "Content-Type": "application/json"},
                   b'{"nodeEnv":"development","command":"dev","projectId":"line1\\nline2"}', peer="192.0.2.12"),
        RawRequest("GET", "/telemetry", "payload=bad base64", {"Host": "telemetry.refine.dev"}, peer="192.0.2.13"),
        RawRequest("OPTIONS", "/telemetry", "", {"Host": "telemetry.refine.dev"}),
        RawRequest("GET", "/location", "", {"Host": "telemetry.refine.dev"}),
        RawRequest("POST", "/send", "", {"Host": "telemetry.refine.dev", "Content-Type": "application/text"},
                   b"eyJhbGciOiJSU0EtT0FFUC0yNTYiLCJlbmMiOiJBMjU2R0NNIn0.a.b.c.d"),
    ]
    return [recorder.record(raw, received_at=START + timedelta(minutes=i)).id for i, raw in enumerate(raws)]


def test_json_and_ndjson_are_the_one_record_form(store, tmp_path):
    fill(store)
    records = store.query()
    assert export_store(store, "json", tmp_path / "all.json") == len(records)
    assert json.loads((tmp_path / "all.json").read_text()) == [r.to_dict() for r in records]
    export_store(store, "ndjson", tmp_path / "all.ndjson")
    lines = (tmp_path / "all.ndjson").read_text().splitlines()
    assert [json.loads(line) for line in lines] == [r.to_dict() for r in records]


def test_empty_exports_are_still_valid(store, tmp_path):
    for fmt in ("json", "ndjson", "csv", "har"):
        assert export_store(store, fmt, tmp_path / f"empty.{fmt}") == 0
    assert json.loads((tmp_path / "empty.json").read_text()) == []
    assert (tmp_path / "empty.ndjson").read_text() == ""
    assert (tmp_path / "empty.csv").read_text().strip() == ",".join(CSV_COLUMNS)
    har = json.loads((tmp_path / "empty.har").read_text())
    assert har["log"]["entries"] == [] and not list(har_validator().iter_errors(har))


def test_csv_has_summary_columns_email_problems_notes_and_defuses_formulas(store, tmp_path):
    fill(store)
    export_store(store, "csv", tmp_path / "all.csv")
    with open(tmp_path / "all.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == [*Summary._fields, "email", "problems", "notes"]
    records = store.query()
    assert len(rows) == len(records)
    first = rows[0]
    assert first["version"] == "4.58.0" and first["providers"] == "router data" and first["ip"] == "192.0.2.10"
    assert first["hostname"] == "127.0.0.1" and first["resource_count"] == "2"
    project = next(r for r in rows if r["kind"] == "project")
    assert project["email"] == "jane@corp.example"
    cli_row = next(r for r in rows if r["kind"] == "cli")
    assert cli_row["project_id"] == "line1\nline2"  # quoted by the CSV writer, not split into two rows
    bad = next(r for r in rows if r["status"] == "invalid" and r["kind"] == "beacon")
    assert bad["problems"].startswith("base64: illegal character ' '")
    assert any("providers: sent as an object" in r["notes"] for r in rows)


def test_csv_cells_that_would_run_as_formulas_get_a_quote(store, tmp_path):
    body = json.dumps({"nodeEnv": "development", "command": "dev", "projectId": "=HYPERLINK(\"http://x\")"})
    Recorder(store).record(RawRequest("POST", "/cli", "", {}, body.encode()))
    export_store(store, "csv", tmp_path / "f.csv")
    with open(tmp_path / "f.csv", newline="", encoding="utf-8") as handle:
        row = next(csv.DictReader(handle))
    assert row["project_id"] == "'=HYPERLINK(\"http://x\")"


def test_har_is_valid_har_1_2_with_raw_urls_and_mock_answers(store, tmp_path):
    fill(store)
    export_store(store, "har", tmp_path / "all.har")
    har = json.loads((tmp_path / "all.har").read_text())
    errors = [e.message for e in har_validator().iter_errors(har)]
    assert errors == []
    log = har["log"]
    assert log["version"] == "1.2" and log["creator"]["name"] == "refine Telemetry Inspector"
    entries = log["entries"]
    assert len(entries) == store.count()
    plus = next(e for e in entries if "p+/=" in json.dumps(e["_inspector"]) or "+" in e["request"]["url"])
    first = entries[0]
    raw = CAPTURES[0]["requests"][0]["raw_query"]
    assert first["request"]["url"] == f"https://telemetry.refine.dev/telemetry?{raw}"
    assert first["request"]["queryString"] == [{"name": "payload", "value": raw.removeprefix("payload=")}]
    assert "%" not in plus["request"]["url"]
    assert first["startedDateTime"] == "2026-11-26T06:00:00.000Z"
    assert first["response"]["status"] == 200 and first["response"]["content"]["mimeType"] == "image/gif"
    assert first["response"]["content"]["encoding"] == "base64"
    by_kind = {e["_inspector"]["kind"] + ":" + e["_inspector"]["status"]: e for e in entries}
    assert by_kind["project:ok"]["request"]["postData"]["mimeType"] == "application/json"
    assert "jane@corp.example" in by_kind["project:ok"]["request"]["postData"]["text"]
    assert by_kind["beacon:invalid"]["response"]["status"] == 400
    assert by_kind["unknown:invalid"]["response"]["status"] == 204  # the CORS preflight
    assert by_kind["location:ok"]["response"]["content"]["text"] == '{"country": "XX"}'
    assert by_kind["cli:ok"]["response"]["content"]["text"] == '{"ok": true}'


def test_har_export_imports_back_to_the_same_records(store, tmp_path):
    fill(store)
    export_store(store, "har", tmp_path / "all.har")
    other = BeaconStore(":memory:")
    try:
        result = import_har(other, tmp_path / "all.har")
        assert result.imported == store.count() and result.skipped == 0
        for a, b in zip(store.query(), other.query(session=result.session), strict=True):
            assert (b.kind, b.status, b.payload, b.request.query, b.request.body, b.received_at, b.client) == \
                   (a.kind, a.status, a.payload, a.request.query, a.request.body, a.received_at, a.client)
    finally:
        other.close()


def test_filters_and_ids(store, tmp_path):
    ids = fill(store)
    first_session = store.session
    store.new_session("second")
    Recorder(store).record(RawRequest("GET", "/telemetry", f"payload={btoa_json(REFINE_4_PAYLOAD)}", {}))

    def exported(**filters) -> list[int]:
        export_store(store, "ndjson", tmp_path / "f.ndjson", selection=RecordFilter(**filters))
        return [json.loads(line)["id"] for line in (tmp_path / "f.ndjson").read_text().splitlines()]

    assert exported(kind="project") == [r.id for r in store.query(kind="project")]
    assert exported(status="invalid") == [r.id for r in store.query(status="invalid")]
    assert exported(session=first_session) == ids
    assert exported(since=START + timedelta(minutes=18)) == ids[18:] + [store.last_id()]
    assert exported(ids=(1, 3, 5)) == [1, 3, 5]
    assert exported(ids=(1, 2, 3), kind="cli") == []


def test_redacted_export_leaks_nothing(store, tmp_path):
    fill(store)
    for fmt in ("json", "ndjson", "csv", "har"):
        export_store(store, fmt, tmp_path / f"r.{fmt}", redact=True)
        text = (tmp_path / f"r.{fmt}").read_text()
        for secret in ("192.0.2.1", "127.0.0.1", "jane@corp.example", "p+/=?&", "café", "<b>x</b>", "line1"):
            assert secret not in text, (fmt, secret)
        assert "ip-1" in text
        if fmt != "har":  # in HAR the projectId is only inside the (re-encoded) base64
            assert "project-1" in text
    assert "192.0.2.10" in json.dumps([r.to_dict() for r in store.query()])  # the store is untouched


def test_a_failed_or_cancelled_export_leaves_the_old_file_and_no_temp(store, tmp_path):
    fill(store)
    target = tmp_path / "keep.json"
    target.write_text("previous export")
    with pytest.raises(Cancelled):
        export_store(store, "json", target, progress=lambda done, total: done < 1)
    assert target.read_text() == "previous export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.json"]


def test_new_files_get_the_usual_permissions(store, tmp_path):
    fill(store)
    export_store(store, "json", tmp_path / "perm.json")
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "perm.json").stat().st_mode & 0o777 == 0o666 & ~umask


def test_write_records_streams_to_any_text_stream(store):
    fill(store)
    out = io.StringIO()
    assert write_records(store.query(limit=2), "ndjson", out) == 2
    assert len(out.getvalue().splitlines()) == 2
    with pytest.raises(ValueError, match="format must be one of"):
        write_records([], "xml", out)


# -- the command -----------------------------------------------------------------

def _db(tmp_path: Path) -> str:
    path = tmp_path / "journal.sqlite3"
    store = BeaconStore(path)
    try:
        fill(store)
    finally:
        store.close()
    return str(path)


def test_export_command_formats_and_filters(tmp_path, capsys):
    db = _db(tmp_path)
    out = tmp_path / "beacons.har"
    assert cli.main(["export", "--out", str(out), "--db", db, "--kind", "beacon", "--status", "ok"]) == 0
    assert "exported 18 records as HAR to" in capsys.readouterr().err  # format from the file name
    assert not list(har_validator().iter_errors(json.loads(out.read_text())))
    assert cli.main(["export", "--format", "csv", "--out", "-", "--db", db, "--ids", "1,2", "--redact"]) == 0
    captured = capsys.readouterr()
    rows = list(csv.DictReader(io.StringIO(captured.out)))
    assert [r["id"] for r in rows] == ["1", "2"] and rows[0]["ip"] == "ip-1"
    assert "redacted" in captured.err


@pytest.mark.parametrize(("argv", "message"), [
    (["--ids", "1,999"], "no record #999"),
    (["--ids", "x"], "record ids are whole numbers"),
    (["--since", "yesterday"], "--since wants an ISO 8601"),
    (["--kind", "beacons"], "invalid choice"),
    (["--session", "0"], "session must be 1 or more, got 0"),
    (["--session", "one"], "session is a whole number, got 'one'"),
    (["--format", "xml"], "invalid choice"),
])
def test_export_command_bad_input_exits_2_and_writes_nothing(tmp_path, capsys, argv, message):
    db = _db(tmp_path)
    out = tmp_path / "out.json"
    assert cli.main(["export", "--out", str(out), "--db", db, *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert not out.exists()


def test_export_command_missing_database_or_folder(tmp_path, capsys):
    assert cli.main(["export", "--out", str(tmp_path / "o.json"), "--db", str(tmp_path / "typo.sqlite3")]) == 2
    assert "no database at" in capsys.readouterr().err
    assert not (tmp_path / "typo.sqlite3").exists()  # never created by a typo
    db = _db(tmp_path)
    assert cli.main(["export", "--out", str(tmp_path / "nope" / "o.json"), "--db", db]) == 2
    assert "no folder" in capsys.readouterr().err


def test_large_export_shows_progress(tmp_path, capsys):
    path = tmp_path / "big.sqlite3"
    store = BeaconStore(path)
    try:
        recorder = Recorder(store)
        query = f"payload={btoa_json(REFINE_4_PAYLOAD)}"
        for i in range(1200):
            peer = f"10.0.{i // 250}.{i % 250}"
            recorder.record(RawRequest("GET", "/telemetry", query, {"User-Agent": CHROME_UA}, peer=peer),
                            received_at=START + timedelta(seconds=i * 10))
    finally:
        store.close()
    assert cli.main(["export", "--out", str(tmp_path / "big.ndjson"), "--db", str(path)]) == 0
    err = capsys.readouterr().err
    assert "exporting 1200/1200 records (100%)" in err
    assert len((tmp_path / "big.ndjson").read_text().splitlines()) == 1200


def test_export_records_accepts_any_iterable(tmp_path, store):
    fill(store)
    assert export_records(iter(store.query(kind="cli")), "json", tmp_path / "cli.json") == 1


def test_a_lone_surrogate_in_a_payload_does_not_stop_an_export(tmp_path):
    # JSON.stringify writes a lone surrogate as "\ud800"; json.loads turns that back into one.
    body = b'{"nodeEnv":"development","command":"dev","projectId":"x\\ud800y"}'
    record = capture(RawRequest("POST", "/cli", "", {"Content-Type": "application/json"}, body))
    assert record.payload["projectId"] == "x\ud800y"
    for fmt in ("json", "ndjson", "csv", "har"):
        export_records([record], fmt, tmp_path / f"s.{fmt}")
    assert json.loads((tmp_path / "s.json").read_text())[0]["payload"]["projectId"] == "x\ud800y"
    assert json.loads((tmp_path / "s.har").read_text())["log"]["entries"][0]["request"]["postData"]["text"] == \
        body.decode()
    export_records([record], "json", tmp_path / "r.json", redactor=Redactor())
    assert "ud800" not in (tmp_path / "r.json").read_text()


@pytest.mark.parametrize(("method", "target", "body"), [
    ("GET", f"/telemetry?payload={btoa_json(REFINE_4_PAYLOAD)}", None),
    ("GET", "/telemetry?payload=not base64", None),
    ("GET", "/telemetry?payload=" + "A" * (70 * 1024), None),
    ("POST", "/cli", b'{"command":"dev"}'),
    ("POST", "/cli", b"{not json"),
    ("POST", "/superplate", b'{"event":"generate"}'),
    ("GET", "/location", None),
    ("GET", "/favicon.ico", None),
    ("OPTIONS", "/telemetry", None),
])
def test_har_response_is_what_the_mock_answered(client, store, method, target, body):
    """mock_response() rebuilds the answer from the record: it must agree with the app's."""
    from mockserver.formats.har_export import mock_response

    answer = client.open(target, method=method, data=body)
    record = store.query()[-1]
    rebuilt = mock_response(record)
    assert rebuilt.status == answer.status_code
    assert rebuilt.mime_type == (answer.mimetype or "")
    assert rebuilt.body == answer.get_data()
    for name, value in rebuilt.headers:
        assert answer.headers.get(name) == value, name


# -- interrupted exports leave nothing behind ----------------------------------

def _parts(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".part"))


@pytest.mark.parametrize("failure", [RuntimeError("disk gone"), KeyboardInterrupt()], ids=["error", "ctrl-c"])
def test_a_failing_writer_leaves_no_part_file(store, tmp_path, failure):
    fill(store)

    def records():
        yield store.get(1)
        raise failure

    with pytest.raises(type(failure)):
        export_records(records(), "json", tmp_path / "out.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


_SLOW_EXPORT = """
import sys, time
from mockserver.formats.export import atomic_text_file
with atomic_text_file(sys.argv[1]) as out:
    out.write("[" + "1," * 100000)
    out.flush()
    print("writing", flush=True)
    time.sleep(600)
"""


def _start_slow_export(target: Path) -> subprocess.Popen:
    child = subprocess.Popen([sys.executable, "-c", _SLOW_EXPORT, str(target)], cwd=Path(__file__).parent.parent,
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdout.readline() == "writing\n"
    return child


def test_a_killed_exports_part_file_is_swept_by_the_next_export_of_that_target(store, tmp_path):
    fill(store)
    killed = _start_slow_export(tmp_path / "keep.json")
    other = _start_slow_export(tmp_path / "other.json")  # a live export to another target
    try:
        killed.kill()  # SIGKILL: no clean-up runs
        killed.wait()
        left = _parts(tmp_path)
        assert [name.split(".")[1:4] for name in left] == [["keep", "json", str(killed.pid)],
                                                           ["other", "json", str(other.pid)]]
        assert all(stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600 for name in left)  # it holds the data
        assert (tmp_path / left[0]).stat().st_size > 100000

        export_store(store, "json", tmp_path / "keep.json")
        assert _parts(tmp_path) == [left[1]]  # the live one's is not touched
        assert len(json.loads((tmp_path / "keep.json").read_text())) == len(store.summaries())
    finally:
        other.kill()
        other.wait()
        killed.stdout.close()
        other.stdout.close()


def test_a_part_file_nobody_wrote_for_an_hour_is_swept_even_if_its_pid_is_alive(tmp_path):
    target = tmp_path / "t.csv"
    live = os.getppid()  # alive, and not this process
    stale, fresh = tmp_path / f".t.csv.{live}.0123abcd.part", tmp_path / f".t.csv.{live}.4567ef01.part"
    unrelated = tmp_path / f".t.csv.bak.{live}.0123abcd.part"  # another target's name
    for path in (stale, fresh, unrelated):
        path.write_text("x")
    long_ago = time.time() - files.STALE_AFTER - 5
    os.utime(stale, (long_ago, long_ago))
    os.utime(unrelated, (long_ago - 5, long_ago - 5))
    assert files.sweep_parts(target) == [stale]
    assert _parts(tmp_path) == sorted([fresh.name, unrelated.name])


def test_the_folder_is_synced_after_the_rename(store, tmp_path, monkeypatch):
    fill(store)
    synced: list[tuple[bool, int]] = []
    real_fsync = os.fsync

    def recording_fsync(fd):
        info = os.fstat(fd)
        synced.append((stat.S_ISDIR(info.st_mode), info.st_ino))
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    export_store(store, "csv", tmp_path / "out.csv")
    assert synced[-1] == (True, tmp_path.stat().st_ino)  # the folder, last: after the rename
    assert synced[0] == (False, (tmp_path / "out.csv").stat().st_ino)  # the data first
