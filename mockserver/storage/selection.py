"""Reading commands' inputs: record ids, a time to start from, and a database that must exist.

The filters themselves are :class:`mockserver.records.view.RecordFilter`
(shared by ``export``, ``diff`` and the window); this module reads what a user
types for them.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

from mockserver.core.clock import parse_iso
from mockserver.records.view import SelectionError
from mockserver.storage.store import BeaconStore

__all__ = ["SelectionError", "open_existing_store", "parse_ids", "parse_since"]


def parse_ids(text: str) -> tuple[int, ...]:
    """``"1,2,5-7"`` -> (1, 2, 5, 6, 7): ascending, without repeats."""
    ids: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        low, dash, high = part.partition("-")
        try:
            first = int(low)
            last = int(high) if dash else first
        except ValueError:
            raise SelectionError(f"record ids are whole numbers or ranges like 3-7, got {part!r}") from None
        if first < 1 or last < first:
            raise SelectionError(f"not a usable record id or range: {part!r}")
        if last - first > 1_000_000:
            raise SelectionError(f"range {part!r} is too large")
        ids.update(range(first, last + 1))
    if not ids:
        raise SelectionError("no record ids given")
    return tuple(sorted(ids))


def parse_since(text: str) -> datetime:
    """An ISO 8601 date or date-time; without a zone it is local time. Returns UTC."""
    try:
        moment = parse_iso(text)
    except ValueError:
        raise SelectionError(f"--since wants an ISO 8601 date or time such as 2026-11-26 or "
                             f"2026-11-26T06:00:00Z, got {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.astimezone()  # local, as a user types it
    return moment.astimezone(UTC)


def open_existing_store(path: str) -> BeaconStore:
    """Open a database that must already exist (reading commands never create one by a typo).

    Raises :class:`SelectionError` for a missing file; ``StoreError`` for an unusable one.
    """
    if path != ":memory:" and not os.path.exists(os.path.expanduser(path)):
        raise SelectionError(f"no database at {path} (see --db)")
    return BeaconStore(os.path.expanduser(path) if path != ":memory:" else path, start_session=False)
