"""Duplicate and preflight checks that see every worker's records (``serve --workers``).

A :class:`~mockserver.storage.recorder.Recorder` compares a record with earlier ones in
memory: its :class:`~mockserver.core.checks.DuplicateDetector` and
:class:`~mockserver.core.checks.PreflightLinker`. With several processes appending to one
journal, the earlier record may have been taken by another worker (two requests of a
StrictMode double mount on two connections). :class:`SharedChecks` gives the recorder
checks that first *catch up*: they read the records committed since their last look, in id
order, and learn those another worker stored.

The checks run in the store's ``annotate``, and a ``shared`` store runs every commit as a
write transaction: between the catch-up and the insert no other process can commit, so a
check sees every earlier record, whichever worker stored it, just as one process would.
The worker's journal watcher also catches up whenever the journal changes, so the read under
the write lock is only of the last few milliseconds' records.

Record times read back from the journal have millisecond precision (the records' ISO form).
"""

from __future__ import annotations

import sqlite3
import threading
import time

from mockserver.core.beacon import Beacon
from mockserver.core.checks import DuplicateDetector, PreflightLinker
from mockserver.core.clock import parse_utc
from mockserver.records.view import IdIn
from mockserver.storage.recorder import Recorder
from mockserver.storage.store import BeaconStore

READ_STEP = 500  # records loaded at a time
MAX_MINE = 10_000  # this process's records not yet seen stored (only failed inserts stay: bounded)


class SharedChecks:
    """A worker's duplicate detector and preflight linker, up to date with every worker's records."""

    def __init__(self, store: BeaconStore, since: int, *, duplicate_window: float = 5.0,
                 preflight_window: float = 10.0) -> None:
        """``since``: the last record id before the workers started (earlier records are not compared)."""
        self.store = store
        self.last_id = since
        self.duplicates = _SharedDuplicates(self, duplicate_window)
        self.preflights = _SharedPreflights(self, preflight_window)
        self._window = max(duplicate_window, preflight_window)
        self._mine: list[Beacon] = []  # this process's records being checked, their ids not known yet
        self._own: set[int] = set()  # this process's records beyond last_id: never learned
        self._lock = threading.Lock()
        # PRAGMA data_version on a connection of its own changes with every commit by any other connection:
        # unchanged, there is nothing to read (a record's second check, an idle journal).
        self._version_conn = sqlite3.connect(store.path, check_same_thread=False, isolation_level=None)
        self._version: int | None = None

    def install(self, recorder: Recorder) -> Recorder:
        """Give ``recorder`` these checks (its windows kept); returns it."""
        self.duplicates.window = recorder.duplicates.window
        self.preflights.window = recorder.preflights.window
        self._window = max(self.duplicates.window, self.preflights.window)
        recorder.duplicates, recorder.preflights = self.duplicates, self.preflights
        return recorder

    def catch_up(self) -> int:
        """Learn the records other processes committed since the last call; returns how many were read."""
        with self._lock:
            self._own.update(b.id for b in self._mine if b.id is not None)
            self._mine = [b for b in self._mine if b.id is None][-MAX_MINE:]
            version = int(self._version_conn.execute("PRAGMA data_version").fetchone()[0])
            if version == self._version:
                return 0
            self._version = version
            summaries = self.store.summaries(since=self.last_id)
            if not summaries:
                return 0
            own, self.last_id = self._own, summaries[-1].id or self.last_id
            self._own = {i for i in own if i > self.last_id}
            cutoff = time.time() - self._window
            any_preflight = self.preflights.waiting or any(s.kind == "preflight" for s in summaries)
            wanted = [s.id for s in summaries if s.id is not None and s.id not in own
                      and (s.kind == "preflight" or any_preflight or (s.kind, s.status) == ("beacon", "ok"))
                      and _timestamp(s.received_at) >= cutoff]
            for start in range(0, len(wanted), READ_STEP):
                for beacon in self.store.query(where=[IdIn(tuple(wanted[start:start + READ_STEP]))]):
                    self._learn(beacon)
            return len(summaries)

    def close(self) -> None:
        """Close the connection it watches the journal with."""
        with self._lock:
            self._version_conn.close()

    def _learn(self, beacon: Beacon) -> None:
        at = _timestamp(beacon.received_at)
        if beacon.kind == "preflight":
            PreflightLinker.remember(self.preflights, beacon, at)
            return
        if beacon.preflight is not None:
            self.preflights.forget(beacon.preflight)
        if (beacon.kind, beacon.status) == ("beacon", "ok"):
            self.duplicates.learn(beacon, at)

    def _checking(self, beacon: Beacon) -> None:
        """Before a check of this process's ``beacon``: catch up, and note it as this process's."""
        self.catch_up()
        with self._lock:
            self._mine.append(beacon)

    def _own_preflight(self, preflight: Beacon) -> bool:
        """Whether this process's stored ``preflight`` is still to be remembered (not learned already)."""
        with self._lock:
            if preflight.id is None or preflight.id <= self.last_id:
                return False
            self._own.add(preflight.id)
            return True


def _timestamp(iso: str) -> float:
    try:
        return parse_utc(iso).timestamp()
    except ValueError:
        return 0.0


class _SharedDuplicates(DuplicateDetector):
    def __init__(self, checks: SharedChecks, window: float) -> None:
        super().__init__(window)
        self._checks = checks

    def check_and_remember(self, beacon: Beacon, at: float) -> str | None:
        self._checks._checking(beacon)
        return super().check_and_remember(beacon, at)


class _SharedPreflights(PreflightLinker):
    def __init__(self, checks: SharedChecks, window: float) -> None:
        super().__init__(window)
        self._checks = checks

    def link(self, beacon: Beacon, at: float) -> None:
        self._checks._checking(beacon)
        super().link(beacon, at)

    def remember(self, preflight: Beacon, at: float) -> None:
        # Called once the preflight is stored: a catch-up since may have learned it already (and a
        # request may have been linked to it), which must not be undone.
        if self._checks._own_preflight(preflight):
            super().remember(preflight, at)
