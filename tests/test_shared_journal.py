"""One journal file, several writers (``serve --workers``): the watcher and the checks that see every writer.

Each "worker" here is a BeaconStore of its own on the same file, as each worker process has
(real SQLite, real files); the processes themselves are in tests/test_serve_workers.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mockserver.core.capture import RawRequest
from mockserver.core.payloads import btoa_json
from mockserver.storage.recorder import Recorder
from mockserver.storage.shared import SharedChecks
from mockserver.storage.store import BeaconStore, StoreEvent
from mockserver.storage.watch import JournalWatcher
from tests.support.helpers import CHROME_UA, REFINE_4_PAYLOAD
from tests.test_preflight import JWE, PREFLIGHT, SEND


@pytest.fixture
def journal(tmp_path: Path):
    """The parent's store (file, schema, session) and a factory of workers' stores on the same file."""
    parent = BeaconStore(tmp_path / "journal.sqlite3")
    opened = [parent]

    def worker() -> BeaconStore:
        store = BeaconStore(parent.path, start_session=False, shared=True)
        store.session = parent.session
        opened.append(store)
        return store

    yield parent, worker
    for store in opened:
        store.close()


def beacon(marker: str) -> RawRequest:
    query = "payload=" + btoa_json({**REFINE_4_PAYLOAD, "projectId": marker})
    return RawRequest("GET", "/telemetry", query=query, headers={"User-Agent": CHROME_UA}, peer="127.0.0.1")


def shared_recorder(store: BeaconStore) -> Recorder:
    return SharedChecks(store, store.last_id()).install(Recorder(store))


def test_the_watcher_announces_each_record_another_store_commits_once_in_order(journal):
    parent, worker = journal
    heard: list[StoreEvent] = []
    parent.subscribe(heard.append)
    watcher = JournalWatcher(parent, records=True)
    writer = Recorder(worker())
    assert watcher.poll() == 0
    for marker in ("a", "b", "c"):
        writer.record(beacon(marker))
    assert watcher.poll() == 3
    assert watcher.poll() == 0  # nothing new: nothing read, nothing told
    writer.record(beacon("d"))
    writer.record(beacon("e"))
    assert watcher.stop() == 2  # the last look, after the polling thread ended
    assert [(e.type, e.beacon.id, e.beacon.payload["projectId"], e.beacon.session) for e in heard] == [
        ("appended", 1, "a", 1), ("appended", 2, "b", 1), ("appended", 3, "c", 1), ("appended", 4, "d", 1),
        ("appended", 5, "e", 1)]


def test_the_watcher_starts_after_the_records_already_there(journal):
    parent, worker = journal
    writer = Recorder(worker())
    writer.record(beacon("old"))
    heard: list[StoreEvent] = []
    parent.subscribe(heard.append)
    watcher = JournalWatcher(parent, records=True)
    writer.record(beacon("new"))
    assert watcher.stop() == 1
    assert [e.beacon.payload["projectId"] for e in heard if e.beacon] == ["new"]


def test_a_workers_watcher_tells_of_a_change_without_reading_records(journal):
    parent, worker = journal
    mine, other = worker(), Recorder(worker())
    heard: list[StoreEvent] = []
    mine.subscribe(heard.append)
    changes: list[str] = []
    watcher = JournalWatcher(mine, records=False, on_change=(lambda: changes.append("caught up"),))
    other.record(beacon("a"))
    other.record(beacon("b"))
    assert watcher.poll() == 1
    assert watcher.poll() == 0
    assert watcher.stop() == 0
    assert heard == [StoreEvent("changed")]
    assert changes == ["caught up"]


def test_the_watcher_in_its_own_thread_hears_another_writer(journal):
    parent, worker = journal
    appended = []
    parent.subscribe(lambda event: appended.append(event.beacon.id) if event.type == "appended" else None)
    watcher = JournalWatcher(parent, records=True).start()
    Recorder(worker()).record(beacon("a"))
    waited = parent.wait_for_count(1, 30)  # the count is there at once; the event may come a poll later
    watcher.stop()
    assert waited == (True, 1)
    assert appended == [1]


def test_a_duplicate_is_noted_whichever_worker_took_the_first(journal):
    parent, worker = journal
    first, second = shared_recorder(worker()), shared_recorder(worker())
    one = first.record(beacon("same"))
    two = second.record(beacon("same"))
    three = first.record(beacon("same"))
    other = second.record(beacon("other"))
    assert (one.id, two.id, three.id, other.id) == (1, 2, 3, 4)
    assert [n for n in one.notes if n.startswith("duplicate")] == []
    assert [n.split(",")[0] for n in two.notes if n.startswith("duplicate")] == [
        "duplicate: the same payload from the same client as #1"]
    assert [n.split(",")[0] for n in three.notes if n.startswith("duplicate")] == [
        "duplicate: the same payload from the same client as #2"]  # the latest, stored by the other worker
    assert [n for n in other.notes if n.startswith("duplicate")] == []
    assert parent.get(2).notes == two.notes  # as stored


def test_without_the_shared_checks_a_duplicate_on_another_worker_goes_unnoticed(journal):
    """What the shared checks are for: each worker's own detector sees only its own records."""
    parent, worker = journal
    first, second = Recorder(worker()), Recorder(worker())
    first.record(beacon("same"))
    assert [n for n in second.record(beacon("same")).notes if n.startswith("duplicate")] == []


def test_a_preflight_is_linked_across_workers_and_announces_one_request(journal):
    parent, worker = journal
    first, second = shared_recorder(worker()), shared_recorder(worker())
    preflight = first.record(RawRequest("OPTIONS", "/send", headers=PREFLIGHT, peer="127.0.0.1"))
    sent = second.record(RawRequest("POST", "/send", headers=SEND, body=JWE.encode(), peer="127.0.0.1"))
    again = first.record(RawRequest("POST", "/send", headers=SEND, body=JWE.encode(), peer="127.0.0.1"))
    assert (preflight.id, preflight.kind, sent.id, sent.kind) == (1, "preflight", 2, "encrypted")
    assert (sent.preflight, again.preflight) == (1, None)  # the first worker learned that #1 announced #2
    assert sent.notes[-1].startswith("announced by the CORS preflight #1, ")


def test_a_preflight_is_linked_to_a_request_on_its_own_worker(journal):
    parent, worker = journal
    first, second = shared_recorder(worker()), shared_recorder(worker())
    preflight = first.record(RawRequest("OPTIONS", "/send", headers=PREFLIGHT, peer="127.0.0.1"))
    sent = first.record(RawRequest("POST", "/send", headers=SEND, body=JWE.encode(), peer="127.0.0.1"))
    elsewhere = second.record(RawRequest("POST", "/send", headers=SEND, body=JWE.encode(), peer="127.0.0.1"))
    later = first.record(RawRequest("POST", "/send", headers=SEND, body=JWE.encode(), peer="127.0.0.1"))
    assert (preflight.id, sent.preflight, elsewhere.preflight, later.preflight) == (1, 1, None, None)


def test_an_in_memory_journal_cannot_be_watched():
    store = BeaconStore(":memory:")
    with pytest.raises(ValueError, match="in-memory"):
        JournalWatcher(store, records=True)
    store.close()
