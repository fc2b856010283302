"""Which records a command works on: filters, ids, and opening a database that must exist.

Shared by ``export`` and ``diff`` (and the GUI's export of a filtered or
selected view). Records are read through :meth:`BeaconStore.query` in pages,
so an export of a large journal never holds it all in memory.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from mockserver.core.beacon import KINDS, STATUSES, Beacon
from mockserver.core.clock import parse_iso, parse_utc
from mockserver.storage.store import BeaconStore

PAGE = 500


class SelectionError(ValueError):
    """A filter or id list that cannot be used; the message is one line."""


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


def received_at(beacon: Beacon) -> datetime:
    """The record's receive time as an aware UTC datetime."""
    return parse_utc(beacon.received_at)


@dataclass(frozen=True)
class RecordFilter:
    """Records to work on: all filters must hold (``ids`` narrows further when given)."""

    kind: str | None = None
    status: str | None = None
    session: int | None = None
    since: datetime | None = None  # received at or after
    ids: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if self.kind is not None and self.kind not in KINDS:
            raise SelectionError(f"kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if self.status is not None and self.status not in STATUSES:
            raise SelectionError(f"status must be one of {', '.join(STATUSES)}, got {self.status!r}")

    def matches(self, beacon: Beacon) -> bool:
        """Whether one record passes every filter."""
        return ((self.kind is None or beacon.kind == self.kind)
                and (self.status is None or beacon.status == self.status)
                and (self.session is None or beacon.session == self.session)
                and (self.since is None or received_at(beacon) >= self.since))

    def estimate(self, store: BeaconStore) -> int:
        """How many records will come (exact unless ``since`` is set, then an upper bound)."""
        if self.ids is not None:
            return len(self.ids)
        return store.count(kind=self.kind, status=self.status, session=self.session)

    def missing_ids(self, store: BeaconStore) -> list[int]:
        """Ids asked for that the database does not hold."""
        if self.ids is None:
            return []
        return [i for i in self.ids if store.get(i) is None]

    def records(self, store: BeaconStore) -> Iterator[Beacon]:
        """Matching records, oldest first, read a page at a time."""
        if self.ids is not None:
            for record_id in self.ids:
                beacon = store.get(record_id)
                if beacon is not None and self.matches(beacon):
                    yield beacon
            return
        after = 0
        while True:
            page = store.query(kind=self.kind, status=self.status, session=self.session, since=after, limit=PAGE)
            for beacon in page:
                if self.since is None or received_at(beacon) >= self.since:
                    yield beacon
            if len(page) < PAGE:
                return
            after = page[-1].id or after


def open_existing_store(path: str) -> BeaconStore:
    """Open a database that must already exist (reading commands never create one by a typo).

    Raises :class:`SelectionError` for a missing file; ``StoreError`` for an unusable one.
    """
    if path != ":memory:" and not os.path.exists(os.path.expanduser(path)):
        raise SelectionError(f"no database at {path} (see --db)")
    return BeaconStore(os.path.expanduser(path) if path != ":memory:" else path, start_session=False)
