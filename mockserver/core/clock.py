"""Time in one place: the clock records are stamped with, and the ISO form they carry.

Records write their times as ISO 8601 in UTC with milliseconds and a ``Z``
(``2026-11-26T06:00:00.123Z``); :func:`iso_utc` writes that form and
:func:`parse_iso` / :func:`parse_utc` read it back. :func:`pinned` holds the
clock still (demo pictures, tests) for everything that asks :func:`utc_now`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime


def _real_now() -> datetime:
    return datetime.now(UTC)


_now: Callable[[], datetime] = _real_now


def utc_now() -> datetime:
    """The current time in UTC (or the pinned one, see :func:`pinned`)."""
    return _now()


@contextmanager
def pinned(moment: datetime) -> Iterator[None]:
    """Within the block, :func:`utc_now` returns ``moment``."""
    global _now
    old = _now
    _now = lambda: moment  # noqa: E731 - the clock is a callable by design
    try:
        yield
    finally:
        _now = old


def iso_utc(moment: datetime) -> str:
    """ISO 8601 in UTC with millisecond precision and a ``Z``."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso(text: str) -> datetime:
    """An ISO 8601 date or time such as a record's ``2026-11-26T06:00:00.123Z``.

    Aware when the text carries a zone (``Z`` or an offset), naive otherwise.
    Raises ``ValueError`` when the text is not ISO 8601.
    """
    return datetime.fromisoformat(text.strip().replace("Z", "+00:00"))


def parse_utc(text: str) -> datetime:
    """A record's ISO time as an aware UTC datetime (a time without a zone is read as UTC).

    Raises ``ValueError`` when the text is not ISO 8601.
    """
    moment = parse_iso(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
