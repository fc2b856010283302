"""The records view: one set of filter rules (kind, status, session, ids, since, free text) that the
store, the view and the window's table (tests/gui/test_records_view.py) apply alike, and
``export --search`` end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import mockserver.cli.main as cli
from mockserver.core.beacon import Summary
from mockserver.formats.export import export_store
from mockserver.records.demo import fill_demo
from mockserver.records.redact import Redactor
from mockserver.records.view import (
    AfterId,
    Equals,
    IdIn,
    ReceivedSince,
    RecordFilter,
    SelectionError,
    Text,
    sort_keys,
    where_sql,
)
from mockserver.storage.store import BeaconStore

FIRST = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)  # session 1: the ten demo records, #1-#10
SECOND = datetime(2026, 11, 26, 6, 10, tzinfo=UTC)  # session 2: the first three again, #11-#13
ALL = list(range(1, 14))


def fill_two_sessions(store: BeaconStore) -> None:
    """The demo journal (see mockserver/records/demo.py) in session 1, and its first three requests in session 2."""
    fill_demo(store, FIRST)
    store.new_session("second")
    fill_demo(store, SECOND, part=slice(0, 3))


# (filters, redacted, the record ids picked). Session 1: #1 project, #2 cli (projectId 3f9c2a7e…),
# #3 Chrome 4.58.0, #4 and #5 Firefox 4.28.1, #6 Edge 5.0.12 (the same projectId), #7 invalid
# (base64), #8 admin.example.test projectId "café", #9 projectId "<b>x</b>", #10 Chrome 4.58.0;
# all from 127.0.0.1, hosts localhost but #8. Session 2: #11 project, #12 cli, #13 Chrome 4.58.0.
CASES: list[tuple[dict[str, Any], bool, list[int]]] = [
    ({}, False, ALL),
    ({"text": "chrome"}, False, [3, 7, 8, 9, 10, 13]),  # Edge's UA says Chrome; its browser column does not
    ({"text": "CAFÉ"}, False, [8]),  # case-folded, accents kept
    ({"text": "4.28.1   firefox"}, False, [4, 5]),  # every word, anywhere in the row
    ({"text": "firefox 5.0.12"}, False, []),
    ({"text": "#1"}, False, [1, 10, 11, 12, 13]),  # the id is text: #1 is in #10-#13
    ({"text": "invalid base64"}, False, [7]),  # status and problem
    ({"text": "<b>"}, False, [9]),
    ({"text": "get /telemetry"}, False, [3, 4, 5, 6, 7, 8, 9, 10, 13]),  # method and path
    ({"text": "2026-11-26t06:0"}, False, [11, 12, 13]),  # the ISO time (06:04:50 to 06:05:19)
    ({"kind": "beacon", "text": "linux"}, False, [7, 8]),  # #2 and #12 (cli) run on Linux too
    ({"kind": "cli"}, False, [2, 12]),
    ({"status": "invalid"}, False, [7]),
    ({"session": 2, "text": "4.58.0"}, False, [13]),
    ({"ids": (2, 3, 8, 13), "text": "linux"}, False, [2, 8]),
    ({"since": datetime(2026, 11, 26, 5, 58, tzinfo=UTC), "text": "chrome"}, False, [8, 9, 10, 13]),
    ({"text": "localhost"}, True, []),  # redacted: the real host is not what is shown
    ({"text": "127.0.0.1"}, True, []),
    ({"text": "HOST-2"}, True, [8]),
    ({"text": "project-1"}, True, [2, 6, 12]),
    ({"text": "project-1 cli"}, True, [2, 12]),
    ({"text": "project-1"}, False, []),  # not redacted: no pseudonyms
]
IDS = [f"{'redacted ' if redacted else ''}{filters}" for filters, redacted, _ in CASES]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Any:
    store = BeaconStore(str(tmp_path_factory.mktemp("view") / "view.sqlite3"))
    fill_two_sessions(store)
    yield store
    store.close()


@pytest.mark.parametrize(("filters", "redacted", "expected"), CASES, ids=IDS)
def test_the_store_and_the_view_pick_the_same_records(store: BeaconStore, filters: dict[str, Any],
                                                      redacted: bool, expected: list[int]) -> None:
    selection = RecordFilter(**filters, redactor=Redactor() if redacted else None)
    assert [b.id for b in selection.records(store)] == expected  # SQL where it can, then the rest
    rows = store.summaries()
    assert [rows[i].id for i in selection.keep(rows, range(len(rows)))] == expected  # the rows in memory
    assert [s.id for s in rows if selection.matches(s)] == expected  # one row at a time
    assert selection.estimate(store) >= len(expected)


def test_the_sql_the_rules_make() -> None:
    rules = [Equals("kind", "beacon"), Equals("session", 2), AfterId(7), IdIn((3, 9)),
             ReceivedSince(FIRST), Text(("x",))]
    assert where_sql(rules) == (" WHERE kind = ? AND session = ? AND id > ? AND id IN (?,?)",
                                ["beacon", 2, 7, 3, 9])
    assert where_sql([Text(("x",))]) == ("", [])
    with pytest.raises(ValueError, match="not a column to filter on: 'record; DROP'"):
        Equals("record; DROP", "x")


def test_a_filter_with_a_bad_kind_or_status_is_a_one_line_error() -> None:
    with pytest.raises(SelectionError, match="^kind must be one of beacon, cli, .*got 'beacons'$"):
        RecordFilter(kind="beacons")
    with pytest.raises(SelectionError, match="^status must be one of ok, invalid, got 'bad'$"):
        RecordFilter(status="bad")


def test_whitespace_alone_is_no_text_filter(store: BeaconStore) -> None:
    assert RecordFilter(text=" \t ").filtered is False
    assert [b.id for b in RecordFilter(text=" \t ").records(store)] == ALL


def test_a_row_whose_time_cannot_be_read_is_not_since_anything() -> None:
    row = Summary(1, 1, "yesterday", "beacon", "ok", "GET", "/telemetry", *([None] * 9))
    assert ReceivedSince(FIRST).accepts(row) is False


def test_sort_keys_order_versions_by_number_and_put_missing_last(store: BeaconStore) -> None:
    rows = store.summaries()
    keys = sort_keys(rows, range(len(rows)), "version")
    by_version = [rows[i].id for i in sorted(range(len(rows)), key=keys.__getitem__)]
    assert by_version == [4, 5, 3, 8, 9, 10, 13, 6, 1, 2, 7, 11, 12]  # 4.28.1 < 4.58.0 < 5.0.12 < none
    down = sort_keys(rows, range(len(rows)), "version", descending=True)
    by_version_down = [rows[i].id for i in sorted(range(len(rows)), key=down.__getitem__)]
    assert by_version_down == [1, 2, 7, 11, 12, 6, 3, 8, 9, 10, 13, 4, 5]  # ties keep arrival order
    redactor = Redactor()
    hosts = sort_keys(rows, range(len(rows)), "hostname", redactor=redactor)
    assert sorted(set(hosts)) == [(0, "host-1"), (0, "host-2"), (1, "")]  # pseudonyms, as shown


def test_export_store_search(store: BeaconStore, tmp_path: Path) -> None:
    out = tmp_path / "firefox.ndjson"
    assert export_store(store, "ndjson", out, search="firefox 4.28.1") == 2
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == [4, 5]
    assert export_store(store, "ndjson", out, selection=RecordFilter(text="chrome"), search="linux") == 2
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == [7, 8]
    assert export_store(store, "ndjson", out, search="host-2", redact=True) == 1
    assert [json.loads(line)["client"]["hostname"] for line in out.read_text().splitlines()] == ["host-2"]


def test_export_search_on_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "journal.sqlite3")
    journal = BeaconStore(db)
    fill_two_sessions(journal)
    journal.close()
    out = tmp_path / "café.json"
    assert cli.main(["export", "--out", str(out), "--db", db, "--search", "Café", "--kind", "beacon"]) == 0
    assert [r["id"] for r in json.loads(out.read_text())] == [8]
    assert "exported 1 record as JSON" in capsys.readouterr().err
    assert cli.main(["export", "--out", str(out), "--db", db, "--search", "project-1", "--redact"]) == 0
    assert [(r["id"], r["payload"]["projectId"]) for r in json.loads(out.read_text())] == [
        (2, "project-1"), (6, "project-1"), (12, "project-1")]
    assert cli.main(["export", "--out", str(out), "--db", db, "--search", "no-such-thing"]) == 0
    assert json.loads(out.read_text()) == []
    # the real command, as a user runs it: CSV to stdout
    done = subprocess.run([sys.executable, "-m", "mockserver", "export", "--db", db, "--format", "csv",
                           "--out", "-", "--search", "firefox", "--ids", "1-4"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line.split(",")[0] for line in lines] == ["id", "4"]
    assert done.stderr.strip().endswith("exported 1 record as CSV to stdout")
