"""The window's table shows exactly the records the records view and the store pick (the cases of
tests/test_view.py), sorted by the view's keys, and "export shown" writes those records."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt

from inspector.widgets.models import BeaconTableModel, Column
from mockserver.records.redact import Redactor
from mockserver.storage.store import BeaconStore
from tests.gui.test_export_import import wait_job
from tests.test_view import CASES, IDS, fill_two_sessions

# the table filters by kind, status, session and free text (ids and since are the CLI's)
TABLE_CASES = [(f, r, e) for f, r, e in CASES if not {"ids", "since"} & f.keys()]
TABLE_IDS = [i for i, (f, _, _) in zip(IDS, CASES, strict=True) if not {"ids", "since"} & f.keys()]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Any:
    store = BeaconStore(str(tmp_path_factory.mktemp("table") / "table.sqlite3"))
    fill_two_sessions(store)
    yield store
    store.close()


@pytest.mark.parametrize(("filters", "redacted", "expected"), TABLE_CASES, ids=TABLE_IDS)
def test_the_table_shows_what_the_view_and_the_store_pick(qtbot, store: BeaconStore, filters: dict[str, Any],
                                                          redacted: bool, expected: list[int]) -> None:
    model = BeaconTableModel(store)
    model.reload()
    if redacted:
        model.set_redactor(Redactor())
    model.set_filter(filters.get("text", ""), kind=filters.get("kind"), status=filters.get("status"),
                     session=filters.get("session"))
    assert [model.record_id(r) for r in range(model.rowCount())] == expected
    assert [b.id for b in model.record_filter.records(store)] == expected  # what "export shown" reads
    assert model.filtered is bool(model.record_filter.rules())


def test_the_table_sorts_by_the_views_keys(qtbot, store: BeaconStore) -> None:
    model = BeaconTableModel(store)
    model.reload()
    model.sort(Column.VERSION, Qt.SortOrder.AscendingOrder)
    assert [model.record_id(r) for r in range(model.rowCount())] == [4, 5, 3, 8, 9, 10, 13, 6, 1, 2, 7, 11, 12]
    model.set_redactor(Redactor())
    model.sort(Column.ID)  # ties keep the order shown before: arrival order here
    model.sort(Column.HOSTNAME, Qt.SortOrder.DescendingOrder)  # by pseudonym: missing, host-2, host-1
    assert [model.record_id(r) for r in range(model.rowCount())] == [1, 2, 11, 12, 8, 3, 4, 5, 6, 7, 9, 10, 13]


def test_export_shown_writes_the_rows_a_text_filter_shows(window, qtbot, tmp_path: Path) -> None:
    fill_two_sessions(window.store)
    window.model.fetch_new()
    window.model.set_filter("chrome", kind="beacon")
    shown = [window.model.record_id(r) for r in range(window.model.rowCount())]
    assert shown == [3, 7, 8, 9, 10, 13]
    out = tmp_path / "shown.ndjson"
    wait_job(qtbot, window.export_to(str(out), "ndjson", "shown"))
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == shown
