"""The one clock and the one reader of the records' ISO times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from mockserver.core import clock
from mockserver.core.capture import RawRequest, capture
from mockserver.storage.store import BeaconStore


def test_iso_utc_writes_milliseconds_and_z() -> None:
    moment = datetime(2026, 11, 26, 7, 0, 0, 123_456, tzinfo=timezone(timedelta(hours=1)))
    assert clock.iso_utc(moment) == "2026-11-26T06:00:00.123Z"


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-11-26T06:00:00.123Z", datetime(2026, 11, 26, 6, 0, 0, 123_000, tzinfo=UTC)),
    (" 2026-11-26T07:30:00+01:30 ", datetime(2026, 11, 26, 6, 0, tzinfo=UTC)),
    ("2026-11-26T06:00:00", datetime(2026, 11, 26, 6, 0, tzinfo=UTC)),  # no zone: UTC
    ("2026-11-26", datetime(2026, 11, 26, tzinfo=UTC)),
])
def test_parse_utc(text: str, expected: datetime) -> None:
    moment = clock.parse_utc(text)
    assert moment == expected and moment.tzinfo is UTC


def test_parse_iso_keeps_a_missing_zone_missing() -> None:
    assert clock.parse_iso("2026-11-26T06:00:00").tzinfo is None
    assert clock.parse_iso("2026-11-26T06:00:00Z").utcoffset() == timedelta(0)


@pytest.mark.parametrize("text", ["", "yesterday", "2026-13-01", "26/11/2026"])
def test_parse_rejects_what_is_not_iso(text: str) -> None:
    with pytest.raises(ValueError):
        clock.parse_utc(text)


def test_round_trip_of_a_record_time() -> None:
    text = clock.iso_utc(clock.utc_now())
    assert clock.iso_utc(clock.parse_utc(text)) == text


def test_pinned_clock_stamps_records_and_sessions() -> None:
    fixed = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)
    store = BeaconStore(":memory:", start_session=False)
    try:
        with clock.pinned(fixed):
            beacon = capture(RawRequest("GET", "/telemetry", "", {}))
            store.new_session("pinned")
            assert clock.utc_now() == fixed
        assert beacon.received_at == "2026-11-26T06:00:00.000Z"
        assert [s.started_at for s in store.sessions()] == ["2026-11-26T06:00:00.000Z"]
        assert clock.utc_now() != fixed  # put back
    finally:
        store.close()
