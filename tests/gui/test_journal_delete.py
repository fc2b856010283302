"""A deletion through the journal API drops exactly the deleted rows from the window (no re-read)."""

from __future__ import annotations

import json
import urllib.request

from inspector.widgets.models import BeaconTableModel
from tests.gui.conftest import REFINE4, beacon_url, send


def _delete(window, query: str) -> dict:
    request = urllib.request.Request(f"{window.server.listening.http_url}/__inspector/beacons?{query}",
                                     method="DELETE")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def _shown_ids(window) -> list[int]:
    return [window.model.record_id(row) for row in range(window.model.rowCount())]


def test_a_journal_delete_drops_exactly_its_rows(window, send_and_wait, qtbot, monkeypatch):
    for _ in range(4):
        send_and_wait(window, beacon_url(window, REFINE4))
    assert send(f"{window.server.listening.http_url}/not-refine") == 404
    qtbot.waitUntil(lambda: window.model.total == 5, timeout=5000)
    window.select_record(3)
    reloads = []
    monkeypatch.setattr(BeaconTableModel, "reload", lambda self, limit=None: reloads.append(limit))
    removed_rows = []
    window.model.rowsRemoved.connect(lambda parent, first, last: removed_rows.append((first, last)))

    with qtbot.waitSignal(window.bridge.removed, timeout=5000) as heard:
        assert _delete(window, "ids=2,3,9") == {"deleted": 2}
    assert heard.args == [[2, 3]]
    assert _shown_ids(window) == [1, 4, 5]
    assert removed_rows == [(1, 2)]
    assert window.model.counts() == (3, 3, 2, 1)
    # the record shown was deleted: Qt makes the row before the removed ones current, and it is shown
    assert (window._current_id, window.detail.beacon.id) == (1, 1)

    with qtbot.waitSignal(window.bridge.removed, timeout=5000) as heard:
        assert _delete(window, "kind=unknown") == {"deleted": 1}
    assert heard.args == [[5]] and _shown_ids(window) == [1, 4]
    assert reloads == []  # dropped in place, never read again

    send_and_wait(window, beacon_url(window, REFINE4))
    assert _shown_ids(window) == [1, 4, 6]


def test_rows_hidden_by_a_filter_are_dropped_too(window, send_and_wait, qtbot):
    for _ in range(3):
        send_and_wait(window, beacon_url(window, REFINE4))
    window.model.set_filter(kind="cli")
    assert window.model.rowCount() == 0
    with qtbot.waitSignal(window.bridge.removed, timeout=5000):
        assert _delete(window, "ids=1,3") == {"deleted": 2}
    window.model.set_filter(kind=None)
    assert _shown_ids(window) == [2] and window.model.total == 1
