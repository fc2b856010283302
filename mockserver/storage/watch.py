"""JournalWatcher: what other processes commit to a journal, told to this process's store listeners.

With ``serve --workers N`` several processes append to one SQLite file, and a store's
listeners hear only the appends made through that store. The watcher polls
``PRAGMA data_version`` on a connection of its own (a read of a counter in shared
memory, no page read: cheap every few milliseconds), which changes whenever another
connection committed; only then does it read the journal.

* ``records=True`` (``serve``'s parent, which appends nothing itself): every new row,
  in id order, becomes an ``appended`` event for the listeners (the line printer).
  Writers commit one at a time and a row's id is taken inside its commit, so ids
  appear in order: reading ``id > last seen`` misses none and repeats none.
* ``records=False`` (a worker): one ``changed`` event per change, which wakes the
  journal's long polls and event streams (they read the journal themselves); no
  record is parsed for them. ``on_change`` callbacks run on each change too.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable

from mockserver.storage.store import BeaconStore, StoreEvent

log = logging.getLogger(__name__)

POLL_INTERVAL = 0.015  # seconds between two looks at data_version
READ_STEP = 500  # records read at a time


class JournalWatcher:
    """Polls a journal file for commits made elsewhere and announces them on ``store``."""

    def __init__(self, store: BeaconStore, *, records: bool, since: int | None = None,
                 interval: float = POLL_INTERVAL, on_change: tuple[Callable[[], object], ...] = ()) -> None:
        """``since``: the last record id already known (default: the journal's last id now);
        ``on_change``: also called (on the watcher's thread) after each change is announced."""
        if store.memory:
            raise ValueError("an in-memory journal has no other writers to watch")
        self.store = store
        self.records = records
        self.interval = interval
        self.on_change = on_change
        self.last_id = store.last_id() if since is None else since
        # Only ever reads (a read-only connection would fail where the -shm file may not be written).
        self._conn = sqlite3.connect(store.path, check_same_thread=False, isolation_level=None)
        self._version = self._data_version()
        self._lock = threading.Lock()  # one poll at a time: the thread's or a caller's
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def _data_version(self) -> int:
        return int(self._conn.execute("PRAGMA data_version").fetchone()[0])

    def start(self) -> JournalWatcher:
        """Poll on a background thread until :meth:`stop`."""
        self._thread = threading.Thread(target=self._run, name="journal-watcher", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stopping.wait(self.interval):
            try:
                self.poll()
            except Exception:  # a failing read (disk, a closed store) must not end the watching
                log.exception("reading the journal for other processes' records failed")

    def poll(self) -> int:
        """Announce what was committed since the last poll; returns how many records were announced
        (``records=True``) or 1 for a change (``records=False``), 0 when nothing changed."""
        with self._lock:
            version = self._data_version()
            if version == self._version:
                return 0
            self._version = version
            announced = self._announce_records() if self.records else 1
            if not self.records:
                self.store.announce(StoreEvent("changed"))
            for callback in self.on_change:
                callback()
            return announced

    def _announce_records(self) -> int:
        count = 0
        while True:
            beacons = self.store.query(since=self.last_id, limit=READ_STEP)
            for beacon in beacons:
                self.last_id = beacon.id or self.last_id
                self.store.announce(StoreEvent("appended", beacon=beacon))
            count += len(beacons)
            if len(beacons) < READ_STEP:
                return count

    def stop(self) -> int:
        """Stop polling, then read once more (what was committed up to now is announced); returns what
        that last poll announced."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        try:
            return self.poll()
        finally:
            self._conn.close()
