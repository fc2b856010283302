"""The inspector window, instrumented: run by ``bench/gui.py`` as its own process.

``python3 -m bench.gui_probe WORKDIR`` builds the real window (``inspector.app.build_window``)
with its embedded mock on a free port, shows it, and prints:

* ``SHOWN <unix time>``: after ``show()``, once the event loop has run (first paint done);
* ``PORT <http port>``;

then, until a line ``STOP`` arrives on stdin, it records

* for every row the table receives: the time it was painted (first paint of the
  table's viewport after the model appended it) minus the time the load
  generator sent it (the beacon's ``projectId`` carries the send time);
* the gaps between ticks of a 5 ms timer: how long the GUI event loop was blocked.

On ``STOP`` it prints ``RESULT <json>`` and exits. Qt runs offscreen.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path


def main() -> int:
    work = Path(sys.argv[1])
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ["TELEMETRY_INSPECTOR_HOME"] = str(work / "gui-home")

    from PySide6.QtCore import QEvent, QObject, QSettings, QTimer

    from inspector.app import build_window, create_application
    from mockserver.serving.server import InspectorServer
    from mockserver.storage.store import BeaconStore

    store = BeaconStore(work / f"gui-{os.getpid()}.sqlite3")
    server = InspectorServer(store, port=0, https_port=None)
    app = create_application()
    settings = QSettings(str(work / f"gui-{os.getpid()}.ini"), QSettings.Format.IniFormat)
    window = build_window(store, server, settings=settings, theme="light")
    window.show()

    samples: list[tuple[float, float]] = []  # (painted at, latency s)
    gaps: list[tuple[float, float]] = []  # (at, gap s) for gaps over 20 ms
    pending: list[tuple[float, float]] = []  # (appended at, sent at) waiting for a paint
    seen = 0

    def on_rows(_count: int) -> None:
        nonlocal seen
        model = window.model
        total = model.rowCount()
        rows = range(0, total - seen) if model.newest_on_top else range(seen, total)
        now = time.time()
        for row in rows:
            marker = model.summary(row).project_id
            try:
                pending.append((now, float(marker)))
            except (TypeError, ValueError):
                pass
        seen = total

    class PaintWatch(QObject):
        def eventFilter(self, obj, event):  # noqa: N802 - Qt override
            if event.type() == QEvent.Type.Paint and pending:
                now = time.time()
                samples.extend((now, now - sent) for _, sent in pending)
                pending.clear()
            return False

    watch = PaintWatch()
    window.table.viewport().installEventFilter(watch)
    window.model.rowsAppended.connect(on_rows)

    last_tick = [time.monotonic()]

    def tick() -> None:
        now = time.monotonic()
        gap = now - last_tick[0]
        if gap > 0.02:
            gaps.append((time.time(), gap))
        last_tick[0] = now

    ticker = QTimer()
    ticker.setInterval(5)
    ticker.timeout.connect(tick)
    ticker.start()

    def flush_unpainted() -> None:  # offscreen may skip a paint: count the row when it was appended
        cutoff = time.time() - 1.0
        stale = [p for p in pending if p[0] < cutoff]
        if stale:
            samples.extend((appended, appended - sent) for appended, sent in stale)
            pending[:] = [p for p in pending if p[0] >= cutoff]

    flusher = QTimer()
    flusher.setInterval(500)
    flusher.timeout.connect(flush_unpainted)
    flusher.start()

    def shown() -> None:
        print(f"SHOWN {time.time():.6f}", flush=True)
        listening = server.listening
        assert listening is not None  # started before the window shows
        print(f"PORT {listening.port}", flush=True)

    QTimer.singleShot(0, shown)
    stop = threading.Event()

    def read_stdin() -> None:
        for line in sys.stdin:
            if line.strip() == "STOP":
                break
        stop.set()

    threading.Thread(target=read_stdin, daemon=True).start()
    poll = QTimer()
    poll.setInterval(100)
    poll.timeout.connect(lambda: stop.is_set() and app.quit())
    poll.start()
    app.exec()
    flush_unpainted()
    samples.extend((a, a - s) for a, s in pending)
    print("RESULT " + json.dumps({"samples": samples, "gaps": gaps, "rows": window.model.rowCount()}), flush=True)
    window.close()
    server.stop()
    store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
