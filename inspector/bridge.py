"""StoreBridge: hands store events from server threads to the GUI thread.

The store calls its listeners on whichever thread wrote (a server thread, or
the GUI thread for "Clear"). The listener here only appends to a deque and,
at most once per batch, posts a queued call to the GUI thread
(``QMetaObject.invokeMethod``, a queued connection, never a signal from the
server thread); everything else happens on the GUI thread. A short
single-shot timer then drains the deque, so a burst of 1,000 requests/s
becomes ~20 model updates/s instead of 1,000 repaints.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable

from PySide6.QtCore import QObject, QTimer, Signal, Slot

from inspector.wake import GuiWake
from mockserver.storage.store import BeaconStore, StoreEvent

BATCH_INTERVAL_MS = 50


class StoreBridge(QObject):
    """Subscribes to a :class:`BeaconStore` and re-emits its events, batched, on the GUI thread.

    Signals (all emitted on the GUI thread):
    - ``appended(list)``: ids of records appended since the last batch, ascending;
    - ``removed(list)``: ids of records deleted since the last batch, ascending: drop those rows;
    - ``reset()``: the journal was cleared: reload from the store;
    - ``sessionStarted(int)``: a new session began.
    """

    appended = Signal(list)
    removed = Signal(list)
    reset = Signal()
    sessionStarted = Signal(int)

    def __init__(self, store: BeaconStore, parent: QObject | None = None,
                 interval_ms: int = BATCH_INTERVAL_MS) -> None:
        super().__init__(parent)
        self.store = store
        self._pending: deque[StoreEvent] = deque()
        self._lock = threading.Lock()
        self._wake = GuiWake(self, "_on_wake")  # stays set while the batch timer runs
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.drain)
        self._unsubscribe: Callable[[], None] | None = store.subscribe(self._listener)

    def _listener(self, event: StoreEvent) -> None:
        """Runs on the writer's thread: enqueue, and wake the GUI thread once per batch."""
        with self._lock:
            self._pending.append(event)
        # A queued call: Qt posts an event to the GUI thread's loop; nothing
        # here touches a widget or the model.
        self._wake()

    @Slot()
    def _on_wake(self) -> None:
        if not self._timer.isActive():
            self._timer.start()

    @Slot()
    def drain(self) -> None:
        """Take every pending event and emit one signal per kind of change."""
        self._wake.reset()
        with self._lock:
            events = list(self._pending)
            self._pending.clear()
        ids: list[int] = []
        gone: set[int] = set()
        must_reset = False
        sessions: list[int] = []
        for event in events:
            if event.type == "appended" and event.beacon is not None and event.beacon.id is not None:
                ids.append(event.beacon.id)
            elif event.type == "deleted":
                gone.update(event.ids)
            elif event.type == "cleared":
                must_reset = True
                ids.clear()  # a reload reads everything that is left, appended ones included
            elif event.type == "session" and event.session is not None:
                sessions.append(event.session)
        if must_reset:
            self.reset.emit()  # the reload sees every deletion too
        elif gone:
            self.removed.emit(sorted(gone))
        ids = [i for i in ids if i not in gone]  # appended, then deleted within this batch
        if ids:
            self.appended.emit(sorted(ids))
        for session in sessions:
            self.sessionStarted.emit(session)

    def pending(self) -> int:
        """How many events wait for the next batch (for tests and the status bar)."""
        with self._lock:
            return len(self._pending)

    def close(self) -> None:
        """Stop listening to the store (idempotent)."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self._timer.stop()
