"""BeaconTableModel at 100,000 rows: loading (in steps), filtering, sorting and live inserts stay exact.

How fast they are is measured by the benchmarks (``python3 -m bench --only scale`` opens the real
window on 100,000 records), not asserted here: the machines are shared and noisy.
"""

from __future__ import annotations

import gc

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHeaderView

from inspector.widgets.models import BeaconTableModel, Column
from mockserver.core.beacon import Summary

ROWS = 100_000
VERSIONS = ("4.58.0", "5.0.12", "4.9.1", "4.27.0")


def summary(n: int) -> Summary:
    return Summary(n, 1 + n // 50_000, f"2026-11-26T05:{(n // 60) % 60:02d}:{n % 60:02d}.000Z",
                   "cli" if n % 7 == 0 else "beacon", "invalid" if n % 11 == 0 else "ok", "GET", "/telemetry",
                   "localhost", VERSIONS[n % 4], str(n % 30), "router data", "Chrome 131.0.0", "Linux",
                   "127.0.0.1", None if n % 3 else f"project-{n}", None)


class FakeStore:
    """Just enough of BeaconStore for the model: summaries since an id."""

    def __init__(self, count: int) -> None:
        self.rows = [summary(n) for n in range(1, count + 1)]

    def summaries(self, *, since=None, session=None, limit=None):
        rows = self.rows if since is None else [s for s in self.rows[max(since - 1, 0):] if s.id > since]
        return list(rows[:limit] if limit is not None else rows)


def test_100k_rows_load_filter_sort_and_insert_quickly(qtbot):
    store = FakeStore(ROWS)
    model = BeaconTableModel(store)
    assert model.reload() is False  # everything read: nothing more to fetch
    assert model.rowCount() == ROWS

    model.set_filter("5.0.12 project")
    expected = sum(1 for s in store.rows if s.version == "5.0.12" and s.project_id)
    assert model.rowCount() == expected
    model.set_filter("")
    model.set_filter(status="invalid")
    assert model.rowCount() == sum(1 for s in store.rows if s.status == "invalid")
    model.set_filter(status=None)

    model.sort(Column.VERSION, Qt.SortOrder.DescendingOrder)
    store.rows += [summary(n) for n in range(ROWS + 1, ROWS + 51)]
    inserted: list[int] = []
    model.rowsInserted.connect(lambda _p, first, last: inserted.append(last - first + 1))
    assert model.fetch_new() == 50  # one live batch, placed by binary insertion
    assert inserted == [50]  # one beginInsertRows for the batch
    versions = [model.summary(r).version for r in range(model.rowCount())]
    order = {v: i for i, v in enumerate(["5.0.12", "4.58.0", "4.27.0", "4.9.1"])}
    assert [order[v] for v in versions] == sorted(order[v] for v in versions)


def test_100k_rows_redaction_is_lazy_and_timeline_is_cheap(qtbot):
    from mockserver.records.diff import timeline_buckets
    from mockserver.records.redact import Redactor

    store = FakeStore(ROWS)
    model = BeaconTableModel(store)
    model.reload()
    model.set_redactor(Redactor())
    assert model._masked == {}  # rows are redacted when shown, not all at once
    assert model.index(2, Column.PROJECT_ID).data() == "project-1"
    assert model.index(2, Column.IP).data() == "ip-1"
    model.set_filter("127.0.0.1")  # the first redacted search builds its text once
    assert model.rowCount() == 0  # the real address is not what is shown
    model.set_filter("ip-1")
    assert model.rowCount() == ROWS
    buckets = timeline_buckets(model.shown_summaries(), 200)
    assert sum(b.total for b in buckets) == ROWS


def test_the_table_uses_fixed_row_heights(window):
    header = window.table.verticalHeader()
    assert header.sectionResizeMode(0) == QHeaderView.ResizeMode.Fixed
    assert window.table.indexWidget(window.model.index(0, 0)) is None


def test_a_journal_read_in_steps_ends_exactly_as_one_read_all_at_once(qtbot):
    """Sorted by a value and filtered while the steps arrive: the same rows, in the same order."""
    store = FakeStore(5_000)
    whole = BeaconTableModel(store)
    whole.reload()
    stepped = BeaconTableModel(store)
    assert stepped.reload(limit=700) is True and stepped.total == 700
    for model in (whole, stepped):
        model.sort(Column.PROJECT_ID, Qt.SortOrder.DescendingOrder)
        model.set_filter(status="ok")
    steps = []
    while (got := stepped.fetch_new(limit=700)) == 700:
        steps.append(got)
    assert steps == [700] * 6 and got == 100 and stepped.fetch_new(limit=700) == 0
    assert stepped.counts() == whole.counts() == (sum(s.status == "ok" for s in store.rows), 5_000,
                                                  sum(s.status == "ok" for s in store.rows),
                                                  sum(s.status == "invalid" for s in store.rows))
    order = [stepped.record_id(r) for r in range(stepped.rowCount())]
    assert order == [whole.record_id(r) for r in range(whole.rowCount())]
    def key(i: int) -> tuple[int, str]:
        project = store.rows[i - 1].project_id
        return (1, "") if project is None else (0, project.casefold())

    ok = [s.id for s in store.rows if s.status == "ok"]
    assert order == sorted(ok, key=key, reverse=True)  # stable: ties keep arrival order


def test_the_window_reads_a_large_journal_in_steps_and_a_live_beacon_lands_once(make_window, db_path, qtbot,
                                                                                 monkeypatch):
    from inspector import loading
    from mockserver.storage.store import BeaconStore
    from tests.gui.conftest import beacon_url, send
    from tests.support.helpers import REFINE_4_PAYLOAD

    seed = BeaconStore(db_path)
    for n in range(23):
        seed.append(_record(n))
    seed.close()
    monkeypatch.setattr(loading, "LOAD_STEP", 5)
    monkeypatch.setattr(loading, "_INSTANT_FILTER_ROWS", 10)  # "large": search text made ahead
    frozen = gc.get_freeze_count()
    window = make_window(db_path)
    assert window.loading and window.model.total == 5  # painted with the first step
    assert window.statusBar().full_message == ""  # the steps run from the event loop
    assert send(beacon_url(window, REFINE_4_PAYLOAD)) == 200  # arrives while the journal is being read
    qtbot.waitUntil(lambda: not window.loading and window.model.total == 24, timeout=10_000)
    ids = [window.model.record_id(r) for r in range(window.model.rowCount())]
    assert ids == list(range(1, 25))  # every record once, in order, the live one last
    assert window.counts_label.text() == "24 records  ·  24 ok  ·  0 invalid"
    assert gc.get_freeze_count() > frozen  # the loaded rows are out of the cyclic collector's sight
    qtbot.waitUntil(lambda: window.model.prepare_search_text(0), timeout=10_000)  # made ahead, in steps
    window.filter_edit.setText("localhost:5003")
    window.apply_text_filter()
    assert [window.model.record_id(r) for r in range(window.model.rowCount())] == []  # the host, not the port
    window.filter_edit.setText("#7 ok")
    window.apply_text_filter()
    assert [window.model.record_id(r) for r in range(window.model.rowCount())] == [7]


def test_reading_in_steps_says_how_far_it_is(make_window, db_path, qtbot, monkeypatch):
    from inspector import loading
    from mockserver.storage.store import BeaconStore

    seed = BeaconStore(db_path)
    for n in range(12):
        seed.append(_record(n))
    seed.close()
    monkeypatch.setattr(loading, "LOAD_STEP", 5)
    window = make_window(db_path, start=False)
    messages: list[str] = []
    window.statusBar().messageChanged.connect(lambda _: messages.append(window.statusBar().full_message))
    qtbot.waitUntil(lambda: not window.loading, timeout=10_000)
    assert messages == ["Reading the journal: 10 of 12 records…", ""]
    assert window.model.total == 12


def _record(n: int):
    from mockserver.core.capture import RawRequest, capture
    from mockserver.core.payloads import btoa_json
    from tests.support.helpers import REFINE_4_PAYLOAD

    return capture(RawRequest("GET", "/telemetry", f"payload={btoa_json(REFINE_4_PAYLOAD)}",
                              {"Referer": f"http://localhost:{5000 + n}/"}, peer="127.0.0.1"))


def test_redacted_rows_sort_by_the_pseudonym_shown_also_for_live_rows(qtbot):
    from mockserver.records.redact import Redactor

    store = FakeStore(0)
    ips = ("10.0.0.2", "10.0.0.1", "10.0.0.2", "10.0.0.3")
    store.rows = [summary(n)._replace(ip=ip) for n, ip in enumerate(ips, 1)]
    model = BeaconTableModel(store)
    model.reload()
    model.set_redactor(Redactor())
    model.sort(Column.IP)  # pseudonyms are numbered as first met: .2 -> ip-1, .1 -> ip-2, .3 -> ip-3
    assert [model.record_id(r) for r in range(4)] == [1, 3, 2, 4]  # by the real address: 2, 1, 3, 4
    assert [model.index(r, Column.IP).data() for r in range(4)] == ["ip-1", "ip-1", "ip-2", "ip-3"]
    store.rows.append(summary(5)._replace(ip="10.0.0.1"))
    assert model.fetch_new() == 1  # placed by binary insertion, by its pseudonym too
    assert [model.record_id(r) for r in range(5)] == [1, 3, 2, 5, 4]


def test_search_text_made_ahead_in_steps_filters_exactly_as_made_at_once(qtbot):
    store = FakeStore(1_000)
    ahead = BeaconTableModel(store)
    ahead.reload()
    assert ahead.prepare_search_text(300) is False and ahead.prepare_search_text(300) is False
    store.rows += [summary(n) for n in range(1_001, 1_101)]  # rows arrive between the steps
    assert ahead.fetch_new() == 100
    assert [ahead.prepare_search_text(300) for _ in range(3)] == [False, True, True]  # 1,100 rows: 4 steps
    at_once = BeaconTableModel(store)
    at_once.reload()
    for model in (ahead, at_once):
        model.set_filter("project-10 5.0.12")
    expected = [s.id for s in store.rows if s.version == "5.0.12" and "project-10" in (s.project_id or "")]
    assert len(expected) == 9  # 105, 1005, 1017, …: an oracle independent of the model
    assert [ahead.record_id(r) for r in range(ahead.rowCount())] == expected
    assert [at_once.record_id(r) for r in range(at_once.rowCount())] == expected
