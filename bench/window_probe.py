"""The window over a large journal: open, scroll, filter and sort, as a person would.

``python3 -m bench.window_probe DB WORKDIR STARTED`` (run by ``bench/scale.py``; ``STARTED`` is the
parent's ``time.time()`` just before it started this process) opens the real window
(``inspector.app.build_window``, Qt offscreen, no server: only the journal) on ``DB`` and
prints ``RESULT <json>`` with, in seconds unless named otherwise:

* ``shown_s``: process start → the window painted (with ``first_rows``: a large journal is
  read in steps, between events); ``loaded_s``: → every record in the table;
  ``search_ready_s``: → the filter's search text made too (also in steps, after the rows; a journal
  small enough to be filtered on every keystroke has it made by the first filter instead, and
  ``search_ready_s`` is ``loaded_s``);
  ``load_step_max_s``: the longest step (the event loop waits for it);
* ``rss_mb``: peak resident memory of the process;
* ``scroll_s``: each of 40 jumps of the scroll bar to a random place, repainted;
* ``filter_s``: typing a filter (applied, repainted), by filter text; ``clear_s``;
* ``sort_s``: clicking a column header (sorted, repainted), by column;
* ``redact_s``: turning redaction on (every row shown through pseudonyms);
  ``redacted_filter_s`` / ``redacted_sort_s``: filtering and sorting with it on.

Every step runs on the GUI thread, so each time is also how long the window
could not answer: the number to keep small.
"""

from __future__ import annotations

import functools
import json
import os
import random
import resource
import sys
import time
from pathlib import Path

FILTERS = ("firefox", "4.58 chrome", "invalid", "café")
SORTS = ("BROWSER", "IP", "VERSION", "PROJECT_ID")
REDACTED_SORTS = ("IP", "HOSTNAME")


def probe(db: Path, work: Path, started: float) -> dict:
    """Open the window on ``db`` and measure it (see the module's docstring); the results by name.

    Runs in this process: it reuses a running QApplication (the tests') or makes one.
    """
    from PySide6.QtCore import QSettings, Qt

    from inspector import loading
    from inspector.app import build_window, create_application
    from inspector.widgets.models import Column
    from mockserver.storage.store import BeaconStore

    app = create_application()
    store = BeaconStore(db, start_session=False)
    settings = QSettings(str(work / f"window-{os.getpid()}.ini"), QSettings.Format.IniFormat)
    window = build_window(store, None, settings=settings, start_server=False, theme="light")
    window.resize(1400, 900)
    window.show()
    table = window.table
    table.viewport().repaint()
    shown = time.time() - started
    first_rows = window.model.rowCount()
    steps = []  # a large journal is read a step per turn of the event loop: each step blocks it
    while window.loading:
        begin = time.perf_counter()
        app.processEvents()
        steps.append(time.perf_counter() - begin)
    table.viewport().repaint()
    loaded = time.time() - started
    rows = window.model.rowCount()
    if not loading.filters_instantly(rows):
        # Made ahead of the first filter, a step per turn; a window that never starts must not spin forever.
        turns = 4 * (rows // loading.LOAD_STEP + 1) + 100
        while not window.model.prepare_search_text(0):
            if not turns:
                raise RuntimeError(f"the window did not make the search text of {rows:,} rows ahead")
            turns -= 1
            begin = time.perf_counter()
            app.processEvents()
            steps.append(time.perf_counter() - begin)
    search_ready = time.time() - started

    def timed(action) -> float:
        begin = time.perf_counter()
        action()
        app.processEvents()
        table.viewport().repaint()
        return time.perf_counter() - begin

    bar = table.verticalScrollBar()
    rng = random.Random(6)
    scroll = [timed(functools.partial(bar.setValue, rng.randrange(bar.maximum() + 1))) for _ in range(40)]

    def filtered(text: str) -> float:
        window.filter_edit.setText(text)
        return timed(window.apply_text_filter)

    filters = {text: filtered(text) for text in FILTERS}
    shown_rows = {}
    for text in FILTERS:
        filtered(text)
        shown_rows[text] = window.model.rowCount()
    clear = filtered("")

    def sort(name: str) -> float:
        return timed(lambda: table.sortByColumn(getattr(Column, name), Qt.SortOrder.AscendingOrder))

    def header(name: str) -> str:
        return window.model.headerData(getattr(Column, name), Qt.Orientation.Horizontal)

    sorts = {header(name): sort(name) for name in SORTS}
    sort("ID")
    redact = timed(lambda: window.set_redaction(True))
    redacted_filter = filtered("chrome")
    filtered("")
    redacted_sorts = {header(name): sort(name) for name in REDACTED_SORTS}
    window.set_redaction(False)

    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = {
        "rows": rows, "shown_s": shown, "first_rows": first_rows, "loaded_s": loaded, "search_ready_s": search_ready,
        "load_step_max_s": max(steps, default=0.0), "rss_mb": peak_kb / 1024, "scroll_s": scroll, "filter_s": filters,
        "filter_rows": shown_rows, "clear_s": clear, "sort_s": sorts, "redact_s": redact,
        "redacted_filter_s": redacted_filter, "redacted_sort_s": redacted_sorts,
    }
    settings.clear()
    window.close()
    store.close()
    return result


def main() -> int:
    """``python3 -m bench.window_probe DB WORKDIR STARTED``: prints ``RESULT <json>``."""
    db, work, started = Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3])
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ["TELEMETRY_INSPECTOR_HOME"] = str(work / "window-home")
    print("RESULT " + json.dumps(probe(db, work, started)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
