"""BeaconTableModel at 100,000 rows: loading, filtering, sorting and live inserts stay fast."""

from __future__ import annotations

import time

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHeaderView

from inspector.models import BeaconTableModel, Column
from mockserver.beacon import Summary

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
        if since is None:
            return list(self.rows)
        return [s for s in self.rows[since - 1 if since > 0 else 0:] if s.id > since]


def timed(action) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def test_100k_rows_load_filter_sort_and_insert_quickly(qtbot):
    store = FakeStore(ROWS)
    model = BeaconTableModel(store)  # type: ignore[arg-type]
    assert timed(model.reload) < 2.0
    assert model.rowCount() == ROWS

    assert timed(lambda: model.set_filter("5.0.12 project")) < 1.0
    expected = sum(1 for s in store.rows if s.version == "5.0.12" and s.project_id)
    assert model.rowCount() == expected
    model.set_filter("")
    model.set_filter(status="invalid")
    assert model.rowCount() == sum(1 for s in store.rows if s.status == "invalid")
    model.set_filter(status=None)

    assert timed(lambda: model.sort(Column.VERSION, Qt.SortOrder.DescendingOrder)) < 3.0
    store.rows += [summary(n) for n in range(ROWS + 1, ROWS + 51)]
    inserted: list[int] = []
    model.rowsInserted.connect(lambda _p, first, last: inserted.append(last - first + 1))
    assert timed(model.fetch_new) < 0.5  # one live batch, placed by binary insertion
    assert inserted == [50]  # one beginInsertRows for the batch
    versions = [model.summary(r).version for r in range(model.rowCount())]
    order = {v: i for i, v in enumerate(["5.0.12", "4.58.0", "4.27.0", "4.9.1"])}
    assert [order[v] for v in versions] == sorted(order[v] for v in versions)


def test_100k_rows_redaction_is_lazy_and_timeline_is_cheap(qtbot):
    from mockserver.diff import timeline_buckets
    from mockserver.redact import Redactor

    store = FakeStore(ROWS)
    model = BeaconTableModel(store)  # type: ignore[arg-type]
    model.reload()
    assert timed(lambda: model.set_redactor(Redactor())) < 0.5  # rows are redacted when shown, not all at once
    assert model.index(2, Column.PROJECT_ID).data() == "project-1"
    assert model.index(2, Column.IP).data() == "ip-1"
    assert timed(lambda: model.set_filter("127.0.0.1")) < 5.0  # the first redacted search builds its text once
    assert model.rowCount() == 0  # the real address is not what is shown
    assert timed(lambda: model.set_filter("ip-1")) < 1.0
    assert model.rowCount() == ROWS
    assert timed(lambda: timeline_buckets(model.shown_summaries(), 200)) < 1.0


def test_the_table_uses_fixed_row_heights(window):
    header = window.table.verticalHeader()
    assert header.sectionResizeMode(0) == QHeaderView.ResizeMode.Fixed
    assert window.table.indexWidget(window.model.index(0, 0)) is None
