"""Reading the journal in steps: the first step paints at once, the rest follow between events.

A large journal would otherwise freeze the window until every row is in. Once it is read, the
rows are frozen out of the cyclic collector's sight and the filter's search text is made ahead,
a step at a time, so that the first filter need not.
"""

from __future__ import annotations

import gc
from collections.abc import Callable

from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QStatusBar

from inspector.widgets.models import BeaconTableModel
from mockserver.storage.store import BeaconStore, StoreError

# Below this many rows a filter applies on every keystroke; from it on, after a short pause, and the
# filter's search text is made ahead, in steps, once the journal is read.
_INSTANT_FILTER_ROWS = 20_000
# Rows read per step when a journal opens (~50 ms each): the window shows the
# first step at once and reads on between events instead of freezing until every row is in.
LOAD_STEP = 10_000


def filters_instantly(total: int) -> bool:
    """True when a journal of ``total`` rows is filtered on every keystroke (its search text made by
    the first filter); False when the filter waits for a pause and the search text is made ahead."""
    return total < _INSTANT_FILTER_ROWS


def _freeze_rows() -> None:
    """The journal's rows are in: out of the cyclic collector's sight from now on.

    Rows are tuples of strings that no cycle can hold, freed as ever when dropped;
    but every full collection scanned them all, with the GIL held (100,000 rows:
    ~20 ms each time, the window frozen meanwhile). See ``create_application``.
    """
    gc.freeze()


class JournalLoader(QObject):
    """Reads ``store`` into ``model`` in steps of :data:`LOAD_STEP` rows, on the GUI thread.

    ``loading`` is True while steps remain. ``sessions_changed`` is called when the sessions may
    have changed (after the first step and after the last), ``report_error(title, message)`` when
    the store cannot be read.
    """

    def __init__(self, store: BeaconStore, model: BeaconTableModel, status_bar: QStatusBar, *,
                 sessions_changed: Callable[[], None], report_error: Callable[[str, str], None],
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.store = store
        self.model = model
        self.status_bar = status_bar
        self._sessions_changed = sessions_changed
        self._report_error = report_error
        self.loading = False  # True while a large journal is still being read in steps
        self._generation = 0
        self._total = 0  # records in the journal when a read in steps began (for its progress)

    def load(self) -> None:
        """Read the journal: the first LOAD_STEP rows now (the window paints with them), the rest
        a step per turn of the event loop, so a large journal never freezes the window."""
        self._generation += 1  # a read still in steps stops here
        try:
            more = self.model.reload(limit=LOAD_STEP)
            self._sessions_changed()
        except StoreError as exc:
            more = False
            self._report_error("Cannot read the database", str(exc))
        self.loading = more
        generation = self._generation
        if more:
            try:
                self._total = self.store.count()
            except StoreError:  # only the progress message needs it
                self._total = 0
            QTimer.singleShot(0, self, lambda: self._load_more(generation))
        else:
            self._loaded(generation)

    def _loaded(self, generation: int) -> None:
        """Every row is in: freeze them (see _freeze_rows), then make the filter's search text
        a step at a time, so that the first filter need not."""
        _freeze_rows()
        if not filters_instantly(self.model.total):  # small journals: the first filter makes it at once
            QTimer.singleShot(0, self, lambda: self._prepare_search(generation))

    def _prepare_search(self, generation: int) -> None:
        if generation == self._generation and not self.model.prepare_search_text(LOAD_STEP):
            QTimer.singleShot(0, self, lambda: self._prepare_search(generation))

    def _load_more(self, generation: int) -> None:
        if generation != self._generation:  # the journal was read again meanwhile (cleared)
            return
        try:
            more = self.model.fetch_new(limit=LOAD_STEP) == LOAD_STEP
        except StoreError as exc:
            more = False
            self._report_error("Cannot read the database", str(exc))
        if more:
            of = f" of {self._total:,}" if self._total > self.model.total else ""
            self.status_bar.showMessage(f"Reading the journal: {self.model.total:,}{of} records…")
            QTimer.singleShot(0, self, lambda: self._load_more(generation))
        else:
            self.loading = False
            self.status_bar.clearMessage()
            self._sessions_changed()
            self._loaded(generation)
