"""Compare two records (``diff_records``, ``telemetry-inspector diff``) and the timeline buckets."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import mockserver.cli.main as cli
from mockserver.core.capture import RawRequest, capture
from mockserver.core.clock import iso_utc
from mockserver.reach.compose import compose_beacon
from mockserver.records.diff import Change, diff_records, diff_values, timeline_buckets
from mockserver.storage.recorder import Recorder
from mockserver.storage.store import BeaconStore
from tests.support.helpers import CHROME_UA

DATA = Path(__file__).parent / "data"
CAPTURES = json.loads((DATA / "real_beacons.json").read_text())
FIREFOX_UA = "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0"


def _record(ua: str = CHROME_UA, **inputs):
    request = compose_beacon(**inputs)
    return capture(RawRequest("GET", "/telemetry", request.query,
                              {"Host": "telemetry.refine.dev", "User-Agent": ua, "Referer": "http://localhost:5173/"},
                              peer="127.0.0.1"))


def test_adding_an_i18n_provider_and_upgrading_refine():
    before = _record(version="4.57.0", providers=["data", "router"], resources=2)
    after = _record(version="4.58.0", providers=["data", "router", "i18n"], resources=2, project_id="abc")
    changes = diff_records(before, after)
    assert [c.describe() for c in changes] == [
        "providers.i18n: false → true",
        'version: "4.57.0" → "4.58.0"',
        'projectId: added "abc"',
    ]
    assert changes[0] == Change("providers.i18n", "changed", False, True, "payload")
    assert changes[2].to_dict() == {"path": "projectId", "change": "added", "section": "payload", "after": "abc"}
    assert diff_records(after, before)[2].describe() == 'projectId: removed (was "abc")'


def test_header_facts_are_compared_under_client():
    changes = diff_records(_record(), _record(ua=FIREFOX_UA))
    paths = [c.path for c in changes]
    assert "client.browser.family" in paths and "client.browser.version" in paths and "client.user_agent" in paths
    assert all(c.section == "client" for c in changes)
    assert diff_records(_record(), _record()) == []


def test_real_4_vs_5_beacons():
    def real(version: str):
        entry = next(e for e in CAPTURES if e["refine_version"] == version and e["scenario"] == "default")
        r = entry["requests"][0]
        return capture(RawRequest(r["method"], r["path"], r["raw_query"], r["headers"], scheme="https"))

    changes = diff_records(real("4.58.0"), real("5.0.12"))
    assert [c.describe() for c in changes] == ["providers.router: true → false", 'version: "4.58.0" → "5.0.12"']


def test_undecodable_payload_contact_lists_odd_keys_and_types():
    bad = capture(RawRequest("GET", "/telemetry", "payload=%%%", {}))
    good = _record()
    assert [c.path for c in diff_records(bad, good) if c.section == "payload"] == ["payload"]
    assert diff_values({"a.b": [1, 2]}, {"a.b": [1, 3, 4]}) == [
        Change('["a.b"][1]', "changed", 2, 3), Change('["a.b"][2]', "added", None, 4)]
    assert diff_values({"n": 1}, {"n": 1.0}) == []
    assert diff_values({"n": 1}, {"n": True}) == [Change("n", "changed", 1, True)]
    assert diff_values({"x": None}, {}) == [Change("x", "removed", None, None)]
    project_a = capture(RawRequest("POST", "/projects", "", {},
                                   b'{"email":"a@x.io","answers":{},"source":"REFINE_NEW"}'))
    project_b = capture(RawRequest("POST", "/projects", "", {}, b'{"answers":{},"source":"REFINE_NEW"}'))
    described = [c.describe() for c in diff_records(project_a, project_b)]
    assert 'email: removed (was "a@x.io")' in described
    assert 'contact: removed (was {"email": "a@x.io"})' in described


# -- the command -----------------------------------------------------------------

@pytest.fixture
def db(tmp_path) -> str:
    path = tmp_path / "j.sqlite3"
    store = BeaconStore(path)
    try:
        recorder = Recorder(store)
        for inputs in ({"version": "4.57.0"}, {"version": "4.58.0", "providers": ["data", "router", "i18n"]},
                       {"version": "4.57.0"}):
            request = compose_beacon(**inputs)
            recorder.record(RawRequest("GET", "/telemetry", request.query, {"User-Agent": CHROME_UA}, peer="10.0.0.1"))
    finally:
        store.close()
    return str(path)


def test_diff_command_exit_status_like_diff(db, capsys):
    assert cli.main(["diff", "1", "2", "--db", db]) == 1
    out = capsys.readouterr().out
    assert "#1 (beacon" in out and "2 differences" in out
    assert "changed  providers.i18n  false → true" in out
    assert 'changed  version         "4.57.0" → "4.58.0"' in out
    assert cli.main(["diff", "1", "#3", "--db", db]) == 0
    assert "no differences" in capsys.readouterr().out


def test_diff_command_json(db, capsys):
    assert cli.main(["diff", "1", "2", "--db", db, "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["a"] == 1 and data["b"] == 2
    assert data["changes"][0] == {"path": "providers.i18n", "change": "changed", "section": "payload",
                                  "before": False, "after": True}


@pytest.mark.parametrize(("argv", "message"), [
    (["1", "9"], "no record #9"),
    (["x", "2"], "a record id is a whole number"),
    (["0", "2"], "a record id is a whole number"),
])
def test_diff_command_errors(db, capsys, argv, message):
    assert cli.main(["diff", *argv, "--db", db]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_diff_and_screenshot_read_record_ids_alike(db, capsys):
    """One record-id type for both commands: ``#12`` as the table shows it, the same error otherwise."""
    assert cli.main(["diff", "#1", "#2", "--db", db]) in (0, 1)  # read as 1 and 2: compared
    capsys.readouterr()
    for argv in (["diff", "#x", "2", "--db", db], ["screenshot", "--out", "x.png", "--select", "#x"]):
        assert cli.main(argv) == 2
        assert "a record id is a whole number such as 12, got '#x'" in capsys.readouterr().err


def test_diff_command_missing_database(tmp_path, capsys):
    assert cli.main(["diff", "1", "2", "--db", str(tmp_path / "none.sqlite3")]) == 2
    assert "no database at" in capsys.readouterr().err


# -- timeline --------------------------------------------------------------------

class _Row:
    def __init__(self, at: datetime, status: str = "ok") -> None:
        self.received_at = iso_utc(at)
        self.status = status


T0 = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)


def test_timeline_counts_per_bucket_by_status():
    rows = [_Row(T0), _Row(T0 + timedelta(seconds=10), "invalid"), _Row(T0 + timedelta(seconds=59)),
            _Row(T0 + timedelta(seconds=60))]
    buckets = timeline_buckets(rows, 4)
    assert len(buckets) == 4
    assert [b.counts for b in buckets] == [{"ok": 1, "invalid": 1}, {"ok": 0, "invalid": 0},
                                           {"ok": 0, "invalid": 0}, {"ok": 2, "invalid": 0}]
    assert buckets[0].start == T0 and buckets[-1].end == T0 + timedelta(seconds=60)
    assert sum(b.total for b in buckets) == 4


def test_timeline_edges():
    assert timeline_buckets([], 10) == []
    one = timeline_buckets([_Row(T0)], 3)
    assert [b.total for b in one] == [1, 0, 0] and one[-1].end - one[0].start == timedelta(seconds=1)
    window = timeline_buckets([_Row(T0 - timedelta(hours=1)), _Row(T0 + timedelta(minutes=4))], 2,
                              start=T0, end=T0 + timedelta(minutes=10))
    assert [b.total for b in window] == [1, 0]
    assert [b.total for b in timeline_buckets([], 2, start=T0, end=T0 + timedelta(minutes=1))] == [0, 0]
    with pytest.raises(ValueError, match="width"):
        timeline_buckets([_Row(T0)], 0)


def test_timeline_takes_store_summaries(store):
    recorder = Recorder(store)
    for i in range(5):
        recorder.record(RawRequest("GET", "/nope", "", {}), received_at=T0 + timedelta(minutes=i))
    buckets = timeline_buckets(store.summaries(), 5)
    assert [b.counts["invalid"] for b in buckets] == [1, 1, 1, 1, 1]
