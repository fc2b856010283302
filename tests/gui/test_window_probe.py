"""The bench's window probe (``bench/window_probe.py``) finishes at, below and above the stepped-reading
threshold, with every row read: `python3 -m bench --quick` once spun on exactly 20,000 records.

The threshold and the step are made small here so that the real window reads a few dozen rows.
"""

from __future__ import annotations

import time

import pytest

from bench import scale, window_probe
from inspector import loading

THRESHOLD = 30
STEP = 7


@pytest.mark.parametrize("records", [THRESHOLD - 1, THRESHOLD, THRESHOLD + 1])
def test_window_probe_finishes_with_every_row(qapp, tmp_path, monkeypatch, records):
    monkeypatch.setattr(loading, "_INSTANT_FILTER_ROWS", THRESHOLD)
    monkeypatch.setattr(loading, "LOAD_STEP", STEP)
    db = scale.build(tmp_path / "probe.sqlite3", records, progress=None)

    result = window_probe.probe(db, tmp_path, time.time())

    assert (result["rows"], result["first_rows"]) == (records, STEP)
    # From the threshold on, the search text was made ahead (in steps); below it, by the first filter.
    assert loading.filters_instantly(records) is (records < THRESHOLD)
    # The bench's fixed mix (seed 60): the 31st request matches none of the filters.
    assert result["filter_rows"] == {"firefox": 6, "4.58 chrome": 0, "invalid": 3, "café": 1}
