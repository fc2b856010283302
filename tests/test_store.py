"""The SQLite journal: durability, sessions, summaries, bad database files."""

from __future__ import annotations

import sqlite3

import pytest

from mockserver.core.capture import RawRequest, capture
from mockserver.core.payloads import btoa_json
from mockserver.storage.store import BeaconStore, StoreError
from tests.support.helpers import REFINE_4_PAYLOAD


def _beacon(project_id: str | None = None):
    payload = dict(REFINE_4_PAYLOAD, **({"projectId": project_id} if project_id else {}))
    return capture(RawRequest("GET", "/telemetry", f"payload={btoa_json(payload)}",
                              {"Referer": "http://localhost:5173/"}, peer="127.0.0.1"))


def test_file_database_is_wal_and_survives_reopen(tmp_path):
    path = tmp_path / "journal.sqlite3"
    store = BeaconStore(path)
    first_session = store.session
    stored = store.append(_beacon("café"))
    store.close()
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"

    reopened = BeaconStore(path)
    assert reopened.session == first_session + 1
    again = reopened.get(stored.id)
    assert again.to_dict() == stored.to_dict()
    assert again.payload["projectId"] == "café"
    assert [(s.id, s.count) for s in reopened.sessions()] == [(first_session, 1), (first_session + 1, 0)]
    reopened.close()


def test_summaries_match_the_records(store):
    store.append(_beacon("<b>x</b>"))
    [summary] = store.summaries()
    assert summary == _beacon("<b>x</b>").summary()._replace(
        id=1, session=store.session, received_at=summary.received_at)
    assert (summary.version, summary.resource_count, summary.providers, summary.project_id) == (
        "4.58.0", "2", "router data", "<b>x</b>")


def test_summaries_put_every_column_in_its_place_and_share_repeated_values(store):
    from mockserver.core.beacon import Beacon, RequestInfo

    def record(n: int) -> Beacon:
        return Beacon(kind="beacon", status="invalid", received_at=f"2026-11-26T08:00:0{n}.000000Z",
                      request=RequestInfo("GET", "https", "/telemetry", "payload=x", {}, None, 0),
                      problems=["payload is not valid base64"],
                      payload={"version": "4.58.0", "resourceCount": 7, "providers": {"data": True, "i18n": True},
                               "projectId": "proj-1"},
                      client={"hostname": "app.example", "browser": {"family": "Chrome", "version": "156"},
                              "os": {"family": "Linux"}, "ip": "10.0.0.9"})

    first, second = store.append(record(1)), store.append(record(2))
    rows = store.summaries()
    assert rows == [first.summary(), second.summary()]
    assert rows[0]._asdict() == {
        "id": 1, "session": store.session, "received_at": "2026-11-26T08:00:01.000000Z", "kind": "beacon",
        "status": "invalid", "method": "GET", "path": "/telemetry", "hostname": "app.example", "version": "4.58.0",
        "resource_count": "7", "providers": "data i18n", "browser": "Chrome 156", "os": "Linux", "ip": "10.0.0.9",
        "project_id": "proj-1", "problem": "payload is not valid base64"}
    # one string per distinct value: 100,000 rows stay small (README, Benchmarks)
    assert all(a is b for a, b in zip(rows[0][3:], rows[1][3:], strict=True))
    assert store.summaries(since=1) == [second.summary()] and store.summaries(limit=1) == [first.summary()]


def test_listeners_hear_appends_after_commit_and_failures_do_not_break_capture(store):
    heard = []

    def broken(event):
        raise RuntimeError("front end bug")

    store.subscribe(broken)
    unsubscribe = store.subscribe(lambda e: heard.append((e.type, e.beacon.id if e.beacon else None,
                                                          store.count())))
    store.append(_beacon())
    store.clear()
    unsubscribe()
    store.append(_beacon())
    assert heard == [("appended", 1, 1), ("cleared", None, 0)]


def test_corrupt_database_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "corrupt.sqlite3"
    garbage = b"this is not sqlite" * 100
    path.write_bytes(garbage)
    with pytest.raises(StoreError, match="is not a usable inspector database"):
        BeaconStore(path)
    assert path.read_bytes() == garbage


def test_foreign_sqlite_database_is_refused(tmp_path):
    path = tmp_path / "other.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE customers (id INTEGER)")
    with pytest.raises(StoreError, match="has tables but none of the inspector's"):
        BeaconStore(path)


def test_unwritable_folder_is_a_one_line_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError) as info:
        BeaconStore(blocker / "sub" / "db.sqlite3")
    assert "\n" not in str(info.value)
    assert str(info.value).startswith("cannot create the database folder")


def test_wait_for_count(store):
    assert store.wait_for_count(1, 0.05) == (False, 0)
    store.append(_beacon())
    assert store.wait_for_count(1, 5) == (True, 1)


def test_reading_opens_leave_no_empty_sessions(tmp_path):
    path = tmp_path / "j.sqlite3"
    BeaconStore(path).close()
    reader = BeaconStore(path, start_session=False)
    assert reader.session is None
    assert [s.id for s in reader.sessions()] == [1]
    reader.append(_beacon())  # a first append still gets a session of its own
    assert reader.session == 2
    assert reader.get(1).session == 2
    reader.close()


def test_a_session_that_is_not_made_current(store):
    heard = []
    store.subscribe(lambda e: heard.append(e.type))
    live = store.session
    imported = store.new_session("import: x.har", make_current=False)
    assert store.session == live and imported == live + 1
    assert heard == []
    assert [(s.id, s.label) for s in store.sessions()] == [(live, ""), (imported, "import: x.har")]


class _Calls:
    """What submit()'s callbacks were given, and on which thread, in order."""

    def __init__(self) -> None:
        import threading

        self.calls: list[tuple[int | None, str | None, str]] = []
        self.all_in = threading.Event()
        self.expected = 0

    def then(self, beacon, error) -> None:
        import threading

        self.calls.append((beacon.id, None if error is None else str(error), threading.current_thread().name))
        if len(self.calls) >= self.expected:
            self.all_in.set()


def test_submit_commits_before_it_calls_back_and_listeners_hear_it_first(tmp_path):
    store = BeaconStore(tmp_path / "j.sqlite3")
    calls = _Calls()
    calls.expected = 3
    heard = []
    committed_when_heard = []
    store.subscribe(lambda e: (heard.append(e.beacon.id),
                               committed_when_heard.append(BeaconStore(store.path, start_session=False).count())))
    for project in ("a", "b", "c"):
        store.submit(_beacon(project), calls.then)
    assert calls.all_in.wait(10)
    assert [(i, e, t) for i, e, t in calls.calls] == [(1, None, "store-committer"), (2, None, "store-committer"),
                                                      (3, None, "store-committer")]
    assert heard == [1, 2, 3]
    # another connection already sees each record when its listener hears of it: committed first
    assert all(seen >= record for record, seen in zip(heard, committed_when_heard, strict=True))
    assert [b.payload["projectId"] for b in store.query()] == ["a", "b", "c"]
    store.close()


def test_an_append_commits_submitted_records_with_its_own_and_calls_them_back(store):
    import threading

    calls = _Calls()
    calls.expected = 2
    # No committer thread for this store: the submitted records wait in the queue until an append takes them.
    store._committer = threading.current_thread()
    try:
        store.submit(_beacon("x"), calls.then)
        store.submit(_beacon("y"), calls.then)
        assert calls.calls == [] and len(store._queue) == 2
        stored = store.append(_beacon("z"))
    finally:
        store._committer = None
    here = threading.current_thread().name
    assert calls.calls == [(1, None, here), (2, None, here)] and stored.id == 3  # called back by the append
    assert [b.payload["projectId"] for b in store.query()] == ["x", "y", "z"]


def test_a_failed_annotate_is_that_records_error_only(store):
    calls = _Calls()
    calls.expected = 2

    def broken(beacon):
        raise ValueError("check failed")

    with store._write_lock:  # one group
        store.submit(_beacon("bad"), calls.then, annotate=broken)
        store.submit(_beacon("good"), calls.then)
    assert calls.all_in.wait(10)
    assert sorted(calls.calls, key=lambda c: c[1] or "") == [(1, None, "store-committer"),
                                                             (None, "check failed", "store-committer")]
    assert [b.payload["projectId"] for b in store.query()] == ["good"]


def test_submit_after_close_calls_back_with_an_error_and_close_commits_the_queue(tmp_path):
    store = BeaconStore(tmp_path / "j.sqlite3")
    calls = _Calls()
    calls.expected = 1
    with store._write_lock:  # still queued when close() begins
        store.submit(_beacon("queued"), calls.then)
    store.close()
    assert calls.calls == [(1, None, "store-committer")]
    late = _Calls()
    late.expected = 1
    store.submit(_beacon("late"), late.then)
    assert late.calls[0][0] is None and "closed" in late.calls[0][1]
    assert BeaconStore(tmp_path / "j.sqlite3", start_session=False).count() == 1


def test_a_committer_that_cannot_start_is_the_callers_error_and_nothing_waits_for_it(store, monkeypatch):
    import threading

    real_start = threading.Thread.start

    def no_threads_left(thread):
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(threading.Thread, "start", no_threads_left)
    calls = _Calls()
    with pytest.raises(RuntimeError, match="can't start new thread"):
        store.submit(_beacon("lost"), calls.then)
    assert store._queue == [] and store._committer is None and calls.calls == []
    monkeypatch.setattr(threading.Thread, "start", real_start)
    calls.expected = 1
    store.submit(_beacon("kept"), calls.then)  # a committer starts now
    assert calls.all_in.wait(10)
    assert calls.calls == [(1, None, "store-committer")]
    assert [b.payload["projectId"] for b in store.query()] == ["kept"]
