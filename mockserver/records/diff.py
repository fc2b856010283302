"""Compare two records field by field, and bucket records over time.

:func:`diff_records` answers "what changed between these two requests?"
(before/after adding an i18n provider, upgrading refine, another browser):
payload fields by their dotted path (``providers.i18n``, ``version``),
header-derived facts under ``client.`` (``client.browser.version``) and
the contact under ``contact.``. The GUI's compare view shows the list;
``telemetry-inspector diff ID1 ID2`` prints it.

:func:`timeline_buckets` counts records per time slice and status for the
window's small timeline.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from mockserver.core.beacon import STATUSES, Beacon
from mockserver.core.clock import parse_utc
from mockserver.core.jsontext import dumps_strict, key_path

ADDED, REMOVED, CHANGED = "added", "removed", "changed"
_MISSING: Any = object()  # "no such field", distinct from JSON null


@dataclass(frozen=True)
class Change:
    """One difference: at ``path``, ``before`` (in the first record) became ``after`` (in the second).

    ``before`` is absent (``None`` and ``change == "added"``) for added
    fields, ``after`` likewise for removed ones.
    """

    path: str
    change: str  # "added" | "removed" | "changed"
    before: Any = None
    after: Any = None
    section: str = "payload"  # "payload" | "client" | "contact"

    def describe(self) -> str:
        """``providers.i18n: false → true``; values as JSON."""
        if self.change == ADDED:
            return f"{self.path}: added {_show(self.after)}"
        if self.change == REMOVED:
            return f"{self.path}: removed (was {_show(self.before)})"
        return f"{self.path}: {_show(self.before)} → {_show(self.after)}"

    def to_dict(self) -> dict[str, Any]:
        """JSON form: ``before``/``after`` only where they exist."""
        data: dict[str, Any] = {"path": self.path, "change": self.change, "section": self.section}
        if self.change != ADDED:
            data["before"] = self.before
        if self.change != REMOVED:
            data["after"] = self.after
        return data


def _show(value: Any) -> str:
    return dumps_strict(value)


def diff_values(before: Any, after: Any, path: str = "", section: str = "payload") -> list[Change]:
    """Differences between two JSON values; objects by key (first one's key order, then new keys),
    arrays by index. Values of different types are one ``changed``."""
    if before is _MISSING and after is _MISSING:
        return []
    if before is _MISSING:
        return [Change(path, ADDED, None, after, section)]
    if after is _MISSING:
        return [Change(path, REMOVED, before, None, section)]
    if isinstance(before, dict) and isinstance(after, dict):
        changes: list[Change] = []
        for key in [*before, *(k for k in after if k not in before)]:
            changes += diff_values(before.get(key, _MISSING), after.get(key, _MISSING),
                                   key_path(path, str(key)), section)
        return changes
    if isinstance(before, list) and isinstance(after, list):
        changes = []
        for index in range(max(len(before), len(after))):
            changes += diff_values(before[index] if index < len(before) else _MISSING,
                                   after[index] if index < len(after) else _MISSING, f"{path}[{index}]", section)
        return changes
    # JSON equality: true is not 1, 1 is 1.0
    if type(before) is type(after) and before == after:
        return []
    if isinstance(before, (int, float)) and isinstance(after, (int, float)) \
            and not isinstance(before, bool) and not isinstance(after, bool) and before == after:
        return []
    return [Change(path, CHANGED, before, after, section)]


def diff_records(a: Beacon, b: Beacon) -> list[Change]:
    """Field-level differences from record ``a`` to record ``b``.

    Payload paths are bare (``version``, ``providers.i18n``); header-derived
    facts start with ``client.``, the contact with ``contact.``. A payload
    that did not decode is compared as a whole (``payload``).
    """
    changes: list[Change] = []
    payload_a = a.payload if a.payload is not None else _MISSING
    payload_b = b.payload if b.payload is not None else _MISSING
    if isinstance(a.payload, dict) and isinstance(b.payload, dict):
        changes += diff_values(a.payload, b.payload, "", "payload")
    else:
        changes += diff_values(payload_a, payload_b, "payload", "payload")
    changes += diff_values(a.client or {}, b.client or {}, "client", "client")
    changes += diff_values(a.contact if a.contact is not None else _MISSING,
                           b.contact if b.contact is not None else _MISSING, "contact", "contact")
    return changes


# -- the timeline ----------------------------------------------------------------

class _Timed(Protocol):
    received_at: str
    status: str


@dataclass(frozen=True)
class TimeBucket:
    """Records received in [start, end), counted by status."""

    start: datetime
    end: datetime
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        """All records in the bucket."""
        return sum(self.counts.values())


def _moment(text: str) -> datetime:
    return parse_utc(text)


def timeline_buckets(summaries: Iterable[_Timed], width: int, *, start: datetime | None = None,
                     end: datetime | None = None) -> list[TimeBucket]:
    """``width`` equal time buckets from ``start`` to ``end`` (default: first to last record),
    each counting its records by status (``ok``, ``invalid``, always present).

    Takes :class:`~mockserver.core.beacon.Summary` rows (or records): anything
    with ``received_at`` and ``status``. Records outside the range are not
    counted. No records and no range: an empty list.
    """
    if width < 1:
        raise ValueError(f"width must be at least 1 bucket, got {width}")
    timed = [(_moment(s.received_at), s.status) for s in summaries]
    if not timed and (start is None or end is None):
        return []
    first = start or min(t for t, _ in timed)
    last = end or max(t for t, _ in timed)
    span = last - first
    if span <= timedelta(0):
        span = timedelta(seconds=1)  # one moment: a one-second window, so the record is inside
    size = span / width
    edges = [first + span * i / width for i in range(width)] + [first + span]  # the last edge is exact
    buckets = [TimeBucket(edges[i], edges[i + 1], dict.fromkeys(STATUSES, 0)) for i in range(width)]
    for moment, status in timed:
        if moment < first or moment > first + span:
            continue
        index = min(width - 1, int((moment - first) / size))
        counts = buckets[index].counts
        counts[status] = counts.get(status, 0) + 1
    return buckets


def format_changes(changes: Sequence[Change]) -> list[str]:
    """Aligned human lines: ``changed  providers.i18n  false → true``."""
    if not changes:
        return []
    width = max(len(c.path) for c in changes)
    lines = []
    for c in changes:
        if c.change == ADDED:
            value = _show(c.after)
        elif c.change == REMOVED:
            value = f"(was {_show(c.before)})"
        else:
            value = f"{_show(c.before)} → {_show(c.after)}"
        lines.append(f"  {c.change:<8} {c.path:<{width}}  {value}")
    return lines
