"""The journal's tables, and a record as the row that stores it (its summary columns and its JSON)."""

from __future__ import annotations

import re
from typing import Any

from mockserver.core.beacon import Beacon, Summary

SCHEMA_VERSION = 1
SUMMARY_COLUMNS = Summary._fields[1:]  # everything but id, which is the row id

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS sessions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at TEXT NOT NULL,
    label TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS beacons (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    {", ".join(f"{c} {'INTEGER' if c == 'session' else 'TEXT'}" for c in SUMMARY_COLUMNS)},
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS beacons_kind ON beacons(kind);
CREATE INDEX IF NOT EXISTS beacons_status ON beacons(status);
CREATE INDEX IF NOT EXISTS beacons_session ON beacons(session);
CREATE INDEX IF NOT EXISTS beacons_summary ON beacons(id, {", ".join(SUMMARY_COLUMNS)});
"""
# beacons_summary covers summaries(): listing 100,000 rows reads ~25 MB of index
# instead of every ~3.5 KB row page (~350 MB; 1.1 s with a cold page cache,
# 0.4 s with the index: see the README's Benchmarks).
SUMMARY_SOURCE = "beacons INDEXED BY beacons_summary"


INSERT = (
    f"INSERT INTO beacons ({', '.join(SUMMARY_COLUMNS)}, record) "
    f"VALUES ({', '.join('?' * (len(SUMMARY_COLUMNS) + 1))})"
)


_SURROGATE = re.compile("[\ud800-\udfff]")


def record_row(beacon: Beacon) -> tuple[Any, ...]:
    """The INSERT parameters for ``beacon``: its summary columns and its JSON."""
    summary = beacon.summary()
    values = [v if v is None or c == "session" else str(v) for c, v in zip(SUMMARY_COLUMNS, summary[1:], strict=True)]
    # The row id is the record id; the stored JSON leaves it null and
    # readers fill it in, so one INSERT is all a record takes.
    return (*values, beacon.to_json())


def utf8_row(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """``row`` made storable when it holds a lone surrogate (JSON may carry ``"\\ud800"``).

    SQLite text is UTF-8, which cannot hold one. The record's JSON already has
    the ``\\udXXX`` escape (``Beacon.to_json``), so it reads back exactly; the
    at-a-glance columns show U+FFFD instead.
    """
    return tuple(_SURROGATE.sub("\ufffd", v) if isinstance(v, str) else v for v in row)
