"""Recorder: capture + duplicate check + durable append, for every front end.

The Flask app calls :meth:`Recorder.record` for each refine request; HAR
import calls it with requests read from a file. Either way the record is
committed before the call returns.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from mockserver.core.beacon import Beacon, RequestInfo
from mockserver.core.capture import MAX_BODY, MAX_QUERY, RawRequest, capture, classify
from mockserver.core.checks import DuplicateDetector, PreflightLinker
from mockserver.core.clock import iso_utc, utc_now
from mockserver.storage.store import BeaconStore, Committed

log = logging.getLogger(__name__)


def _undecodable(raw: RawRequest, moment: datetime, exc: Exception) -> Beacon:
    """A minimal record for a request the decoder choked on: kept, and says why."""
    return Beacon(
        kind=classify(raw.method, raw.path, raw.headers),
        status="invalid",
        received_at=iso_utc(moment),
        request=RequestInfo(method=raw.method, scheme=raw.scheme, path=raw.path, query=raw.query[:MAX_QUERY],
                            headers=dict(raw.headers), body=raw.body[:MAX_BODY].decode("latin-1") or None,
                            body_size=raw.body_size if raw.body_size is not None else len(raw.body)),
        problems=[f"inspector: could not decode this request ({type(exc).__name__}: {exc})"],
        client={"ip": raw.peer},
    )


class Recorder:
    """Turns raw requests into stored records."""

    def __init__(self, store: BeaconStore, *, trust_proxy: bool = False, duplicate_window: float = 5.0) -> None:
        self.store = store
        self.trust_proxy = trust_proxy
        self.duplicates = DuplicateDetector(duplicate_window)
        self.preflights = PreflightLinker()

    def record(self, raw: RawRequest, *, received_at: datetime | None = None,
               session: int | None = None) -> Beacon:
        """Decode, check and commit one request; returns the stored record."""
        beacon, annotate, at = self._prepare(raw, received_at, session)
        # Under the store's write lock: two beacons racing in from a
        # StrictMode double mount are still compared with each other, and a
        # preflight is stored (with its id) before the request it announced.
        stored = self.store.append(beacon, annotate=annotate)
        if stored.kind == "preflight":
            self.preflights.remember(stored, at)
        return stored

    def submit(self, raw: RawRequest, then: Committed) -> None:
        """What :meth:`record` does, without waiting: ``then(record, error)`` runs on the store's committer
        thread once the record is committed (``error`` None) or could not be (see ``BeaconStore.submit``)."""
        beacon, annotate, at = self._prepare(raw, None, None)

        def committed(stored: Beacon, error: BaseException | None) -> None:
            try:
                if error is None and stored.kind == "preflight":
                    self.preflights.remember(stored, at)
            finally:  # whatever happens here, the request is answered
                then(stored, error)

        self.store.submit(beacon, committed, annotate=annotate)

    def _prepare(self, raw: RawRequest, received_at: datetime | None,
                 session: int | None) -> tuple[Beacon, Callable[[Beacon], None], float]:
        """The record of ``raw`` (decoded, enriched, checked), the checks against earlier records that run
        just before its insert, and its arrival as a timestamp."""
        moment = received_at or raw.arrived_at or utc_now()
        try:
            beacon = capture(raw, received_at=moment, trust_proxy=self.trust_proxy)
        except Exception as exc:  # a decoder bug must not lose the request
            log.exception("capture failed")
            beacon = _undecodable(raw, moment, exc)
        beacon.session = session
        at = moment.timestamp()

        def annotate(b: Beacon) -> None:
            if b.kind == "preflight":
                return
            self.preflights.link(b, at)
            if b.kind == "beacon" and b.status == "ok":
                note = self.duplicates.check_and_remember(b, at)
                if note:
                    b.notes.append(note)

        return beacon, annotate, at
