"""What runs per live batch and per paint, and must stay equal to the plain computation.

* ``BeaconTableModel.multiData`` (one call per painted cell) answers exactly what
  ``data()`` answers role by role, and the table paints the same pixels with it;
* the timeline counts appended rows incrementally (:class:`TimelineCounts`): its
  buckets are exactly ``timeline_buckets`` over the shown rows, and a live batch
  never re-reads every row.
"""

from __future__ import annotations

import functools
import random
from datetime import UTC, datetime, timedelta

import pytest
from PySide6.QtCore import QAbstractTableModel, QModelIndex, QModelRoleData, QModelRoleDataSpan, Qt
from PySide6.QtGui import QIcon

from inspector.panes.timeline import TimelineCounts
from inspector.widgets.models import RECORD_ID_ROLE, SUMMARY_ROLE, BeaconTableModel, Column
from inspector.widgets.table import BeaconTable
from mockserver.core.beacon import Summary
from mockserver.records.diff import TimeBucket, timeline_buckets
from mockserver.records.redact import Redactor
from tests.gui.conftest import REFINE4, REFINE5, beacon_url, send
from tests.gui.test_model_scale import FakeStore, summary

ROLES = [*range(0, 14), RECORD_ID_ROLE, SUMMARY_ROLE, int(Qt.ItemDataRole.UserRole) + 40]


# -- the table: one call per cell ----------------------------------------------------------------

def _rows(count: int) -> list[Summary]:
    rows = [summary(n) for n in range(1, count + 1)]
    # some empty fields, an unknown status and an odd time, as an import can bring them
    rows[3] = rows[3]._replace(version=None, resource_count=None, hostname=None, session=None)
    rows[5] = rows[5]._replace(status="note", problem="a note")
    rows[6] = rows[6]._replace(received_at="not a time")
    return rows


def _comparable(value):
    return ("icon", value.cacheKey()) if isinstance(value, QIcon) else value


def _loaded(cls, count: int, redacted: bool):
    """A model of ``cls`` over ``count`` rows, shown through a redactor when ``redacted``."""
    store = FakeStore(0)
    store.rows = _rows(count)
    model = cls(store)
    model.reload()
    if redacted:
        model.set_redactor(Redactor())
    return model


@pytest.mark.parametrize("redacted", [False, True])
def test_multi_data_answers_what_data_answers_for_every_cell_and_role(qtbot, redacted):
    model = _loaded(BeaconTableModel, 40, redacted)
    checked = 0
    for row in range(model.rowCount()):
        for column in range(model.columnCount()):
            index = model.index(row, column)
            for role in ROLES:
                item = QModelRoleData(role)
                item.setData("left over from another cell")  # Qt reuses the span from cell to cell
                index.multiData(item)
                assert _comparable(item.data()) == _comparable(index.data(role)), (row, column, role)
                checked += 1
    assert checked == 40 * 13 * len(ROLES)
    for index in (QModelIndex(), model.createIndex(10_000, 0)):  # no cell, or a row that is gone: nothing
        item = QModelRoleData(int(Qt.ItemDataRole.DisplayRole))
        item.setData("stale")
        model.multiData(index, QModelRoleDataSpan(item))
        assert item.data() is None and index.data() is None


class PerRoleModel(BeaconTableModel):
    """The model as before: Qt's own multiData, which calls data() once per role."""

    multiData = QAbstractTableModel.multiData  # type: ignore[assignment]  # Qt's own, on purpose

    def __init__(self, store) -> None:
        super().__init__(store)
        self.data_calls = 0

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        self.data_calls += 1
        return super().data(index, role)


@pytest.mark.parametrize("redacted", [False, True])
def test_the_table_paints_the_same_pixels_with_one_call_per_cell(qtbot, redacted):
    images = []
    per_role = None
    for cls in (BeaconTableModel, PerRoleModel):
        model = _loaded(cls, 30, redacted)
        model.sort(Column.STATUS, Qt.SortOrder.DescendingOrder)  # ok and invalid rows side by side
        table = BeaconTable()
        qtbot.addWidget(table)
        table.setModel(model)
        table.apply_default_widths()
        table.resize(1500, 600)
        table.selectRow(2)
        images.append(table.grab().toImage())
        if cls is PerRoleModel:
            per_role = model
    assert per_role is not None and per_role.data_calls > 1000  # the comparison went through data()
    assert images[0] == images[1]


# -- the timeline: incremental counts -------------------------------------------------------------

BASE = datetime(2026, 11, 26, 5, 0, tzinfo=UTC)


def _timed(n: int, micros: int, status: str = "ok", *, ms: bool = True) -> Summary:
    moment = BASE + timedelta(microseconds=micros)
    text = moment.isoformat(timespec="milliseconds" if ms else "microseconds").replace("+00:00", "Z")
    return summary(n)._replace(received_at=text, status=status)


def test_timeline_counts_give_exact_buckets():
    rows = [_timed(1, 0), _timed(2, 2_500_000, "invalid"), _timed(3, 9_999_000), _timed(4, 10_000_000, "invalid"),
            _timed(5, 4_000_000)]  # the last one arrives out of time order
    counts = TimelineCounts(rows[:2])
    counts.add(rows[2:])
    buckets = counts.buckets(4)
    assert buckets == timeline_buckets(rows, 4)
    assert [b.start for b in buckets] == [BASE + timedelta(seconds=s) for s in (0, 2.5, 5, 7.5)]
    assert buckets[-1].end == BASE + timedelta(seconds=10)
    assert [b.counts for b in buckets] == [{"ok": 1, "invalid": 0}, {"ok": 1, "invalid": 1},
                                           {"ok": 0, "invalid": 0}, {"ok": 1, "invalid": 1}]
    assert TimelineCounts([_timed(1, 5)]).buckets(3) == timeline_buckets([_timed(1, 5)], 3)  # one moment
    assert TimelineCounts().buckets(10) == [] and counts.size == 5
    with pytest.raises(ValueError):
        counts.buckets(0)


def test_timeline_counts_equal_a_full_recount_whatever_the_batches():
    rng = random.Random(20261126)
    for _ in range(400):
        n = rng.choice([1, 2, 5, 60, 400])
        spread = rng.choice([0, 1_000, 1_000_000, 3_600_000_000, 10 ** 11])
        ms = rng.random() < 0.5
        rows = [_timed(i + 1, rng.randrange(spread + 1), rng.choice(["ok", "ok", "invalid", "note"]), ms=ms)
                for i in range(n)]
        if rng.random() < 0.6:
            rows.sort(key=lambda s: s.received_at)
        counts = TimelineCounts()
        done = 0
        while done < n:
            step = rng.choice([1, 3, 50, 100])
            counts.add(rows[done:done + step])
            done += step
        width = rng.choice([1, 2, 10, 97, 200])
        expected = _outcome(functools.partial(timeline_buckets, rows, width))
        assert _outcome(functools.partial(counts.buckets, width)) == expected
        assert counts.size == n


def _outcome(compute):
    try:
        return compute()
    except ZeroDivisionError:  # under half a microsecond a bucket: timeline_buckets fails too
        return "ZeroDivisionError"


def test_a_row_without_a_readable_time_is_not_charted():
    counts = TimelineCounts([_timed(1, 0), summary(2)._replace(received_at="garbage"), _timed(3, 1_000)])
    assert counts.size == 3
    assert sum(b.total for b in counts.buckets(5)) == 2


def _expected(window) -> list[TimeBucket]:
    rows = window.model.shown_summaries()
    return timeline_buckets(rows, window.timeline._bar_count()) if rows else []


def test_live_batches_update_the_timeline_without_recounting_every_row(window, qtbot):
    timeline = window.timeline
    sent = 0

    def burst(count: int, payload=REFINE4) -> None:
        nonlocal sent
        for _ in range(count):
            send(beacon_url(window, payload))
        sent += count
        qtbot.waitUntil(lambda: window.model.total == sent, timeout=10000)

    burst(3)
    timeline.recompute()
    assert timeline.buckets == _expected(window) and sum(b.total for b in timeline.buckets) == 3
    recounts = timeline.full_recounts

    for size in (1, 4, 2):  # live batches: counted as they come
        burst(size)
        burst(1, "eyJh%20bGc")  # an invalid beacon
        timeline.recompute()
        assert timeline.buckets == _expected(window)
    assert timeline.full_recounts == recounts
    assert sum(b.counts["invalid"] for b in timeline.buckets) == 3 and sum(b.total for b in timeline.buckets) == 13

    window.table.sortByColumn(Column.VERSION, Qt.SortOrder.DescendingOrder)  # a re-sort: same rows
    burst(2, REFINE5)
    timeline.recompute()
    assert timeline.buckets == _expected(window) and timeline.full_recounts == recounts

    window.filter_edit.setText("5.0.12")  # another set of rows: counted again, once
    timeline.recompute()
    assert timeline.full_recounts == recounts + 1
    assert timeline.buckets == _expected(window) and sum(b.total for b in timeline.buckets) == 2
    burst(1, REFINE5)
    burst(1)  # hidden by the filter: not charted
    timeline.recompute()
    assert timeline.buckets == _expected(window) and sum(b.total for b in timeline.buckets) == 3
    assert timeline.full_recounts == recounts + 1

    window.filter_edit.clear()
    timeline.recompute()
    assert timeline.buckets == _expected(window) and sum(b.total for b in timeline.buckets) == 17


def test_the_timeline_recounts_when_it_missed_rows(window, qtbot):
    for _ in range(2):
        send(beacon_url(window, REFINE4))
    qtbot.waitUntil(lambda: window.model.total == 2, timeout=5000)
    window.timeline.recompute()
    window.timeline.append(window.model.last_batch)  # counted twice: the totals disagree with the table
    window.timeline.recompute()
    assert window.timeline.buckets == _expected(window)
