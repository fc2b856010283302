"""Render the real main window to a PNG (``telemetry-inspector screenshot``).

The window is the one users see, over demo traffic (``demo=True``) or a copy
of a database, rendered offscreen: no window appears, no server listens and
the database given is never changed (it is copied with SQLite's backup API
first). The status bar shows the default ports and a fixed pin, as a freshly
started inspector would.

With ``demo=True`` everything that could differ between runs is pinned: the
data, the clock (2026-11-26 09:41:02 UTC), the time zone (UTC), the opt-out
check's stopwatch, and the pseudonyms' order, so the PNG is byte-identical
run to run on one machine (fonts differ between machines).

The ``telemetry-inspector screenshot`` command calls :func:`render` through the
GUI hook (``mockserver.cli.gui``) with plain values; this module knows nothing
of the command line.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from mockserver.core import clock

FIXED_NOW = datetime(2026, 11, 26, 9, 41, 2, 417_000, tzinfo=UTC)
FIXED_PIN = "68BsJgvCEQxDIns9kNNHYReU4gLU/1mm7h0Bd5eXlLA="  # a pin as the serve banner shows one
THEMES = ("light", "dark")
VIEWS = ("details", "opt-out", "compare")  # the lower panes a picture can show (the command offers the same)
MIN_SIZE = (640, 400)
MAX_SIZE = (7680, 4320)
DEMO_SELECT = 6  # refine 5.0.12 with a projectId and two notes: the richest card
DEMO_COMPARE = (3, 6)  # 4.58.0 in Chrome → 5.0.12 in Edge with more providers and a projectId
DEMO_BEFORE_CHECK = 8  # demo requests recorded before the opt-out check starts; the rest "arrive" during it
DEMO_CHECK_SECONDS = 14.0


class ScreenshotError(Exception):
    """The picture cannot be made as asked; the message is one line."""


def parse_size(text: str) -> tuple[int, int]:
    """``1280x800`` → (1280, 800); :class:`ScreenshotError` for anything else."""
    parts = text.lower().replace("×", "x").split("x")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise ScreenshotError(f"--size wants WIDTHxHEIGHT such as 1280x800, got {text!r}")
    width, height = (int(p) for p in parts)
    if not (MIN_SIZE[0] <= width <= MAX_SIZE[0] and MIN_SIZE[1] <= height <= MAX_SIZE[1]):
        raise ScreenshotError(f"--size {width}x{height} is outside {MIN_SIZE[0]}x{MIN_SIZE[1]} to "
                              f"{MAX_SIZE[0]}x{MAX_SIZE[1]}")
    return width, height


class PictureServer:
    """Stands in for :class:`~mockserver.serving.server.InspectorServer` in pictures: shows the default
    ports and a fixed pin, listens on nothing."""

    def __init__(self) -> None:
        from mockserver.core.config import DEFAULT_HOST, DEFAULT_HTTPS_PORT, DEFAULT_PORT
        from mockserver.serving.server import Listening

        self.port, self.https_port = DEFAULT_PORT, DEFAULT_HTTPS_PORT
        self.listening = Listening(DEFAULT_HOST, DEFAULT_PORT, DEFAULT_HTTPS_PORT, FIXED_PIN)
        self.certificate = None

    def start(self) -> Any:
        return self.listening

    def stop(self) -> None:
        return None


class _Stopwatch:
    """A monotonic clock that only moves when told to (the opt-out check's elapsed time)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class _DemoDate(date):
    """``date`` whose today() is FIXED_NOW's: the table's model reads "today" when it is made, and the
    window sizes the Time column from it (time-only cells today, dated ones otherwise)."""

    @classmethod
    def today(cls) -> _DemoDate:
        return cls(FIXED_NOW.year, FIXED_NOW.month, FIXED_NOW.day)


@contextmanager
def _pinned_time(demo: bool) -> Iterator[None]:
    """For demo pictures: the time zone is UTC, mockserver's clock reads FIXED_NOW and the table's
    "today" is FIXED_NOW's day, from before the window is built (nothing depends on the real date)."""
    if not demo:
        yield
        return
    from inspector.widgets import models
    from inspector.widgets.models import _local_time

    old_tz = os.environ.get("TZ")
    old_date = models.date
    os.environ["TZ"] = "UTC"
    time.tzset()
    models.date = _DemoDate  # type: ignore[misc]  # the table's "today", pinned for the picture
    _local_time.cache_clear()
    try:
        with clock.pinned(FIXED_NOW):
            yield
    finally:
        models.date = old_date  # type: ignore[misc]  # put back
        if old_tz is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = old_tz
        time.tzset()
        _local_time.cache_clear()


def _copy_database(source: str, target: Path) -> None:
    """Copy the SQLite database at ``source`` (even while an inspector writes to it) to ``target``."""
    if source == ":memory:":
        raise ScreenshotError("--db :memory: holds nothing to show; use --demo or a database file")
    path = Path(source).expanduser()
    if not path.is_file():
        raise ScreenshotError(f"no database at {source} (see --db)")
    # A database in use has its -wal file: read it with the WAL. Otherwise read it as immutable, so
    # SQLite does not leave -wal/-shm files beside the user's database.
    in_use = path.with_name(path.name + "-wal").exists()
    query = "mode=ro" if in_use else "mode=ro&immutable=1"
    try:
        src = sqlite3.connect(f"{path.resolve().as_uri()}?{query}", uri=True)
        try:
            dst = sqlite3.connect(str(target))
            try:
                src.backup(dst)
            finally:
                dst.close()
        finally:
            src.close()
    except sqlite3.Error as exc:
        raise ScreenshotError(f"cannot read {source} as an inspector database: {exc}") from None


def _ensure_platform() -> None:
    """Render offscreen unless the caller chose a Qt platform (no window appears, no display needed)."""
    if not os.environ.get("QT_QPA_PLATFORM"):
        os.environ["QT_QPA_PLATFORM"] = "offscreen"


def _settle(app: Any, window: Any) -> None:
    """Let queued work run (store notifications, layouts, deferred font updates) without waiting on wall time."""
    for _ in range(3):
        app.processEvents()
        window.bridge.drain()
        app.processEvents()
    window.timeline.recompute()
    app.processEvents()


def render(out: str | Path, *, size: tuple[int, int] = (1280, 800), demo: bool = True, db: str | None = None,
           select: int | None = None, theme: str = "light", redact: bool = False, view: str = "details",
           compare: tuple[int, int] | None = None, presentation: bool = False, tab: int = 0) -> Path:
    """Save a PNG of the main window; returns its path. Raises :class:`ScreenshotError` (one line).

    ``view`` is the lower pane; ``compare``: the two records the compare view shows (default: the demo's
    pair, else the newest two).
    """
    if theme not in THEMES:
        raise ScreenshotError(f"--theme must be light or dark, got {theme!r}")
    if view not in VIEWS:
        raise ScreenshotError(f"--view must be one of {', '.join(VIEWS)}, got {view!r}")
    target = Path(out).expanduser()
    if target.is_dir():
        raise ScreenshotError(f"{target} is a folder: give a file name such as {target / 'inspector.png'}")
    if not target.parent.is_dir():
        raise ScreenshotError(f"cannot write {target}: no folder {target.parent}")

    with tempfile.TemporaryDirectory(prefix="inspector-shot-") as tmp:
        copy = Path(tmp) / "shot.sqlite3"
        if not demo:
            _copy_database(str(db), copy)
        _ensure_platform()
        with _pinned_time(demo):
            return _render(target, copy, Path(tmp), size=size, demo=demo, db=db, select=select, theme=theme,
                           redact=redact, view=view, compare=compare, presentation=presentation, tab=tab)


def _render(target: Path, database: Path, tmp: Path, *, size: tuple[int, int], demo: bool, db: str | None,
            select: int | None, theme: str, redact: bool, view: str, compare: tuple[int, int] | None,
            presentation: bool, tab: int) -> Path:
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from inspector.app import build_window, create_application
    from mockserver.records.demo import fill_demo
    from mockserver.storage.recorder import Recorder
    from mockserver.storage.store import BeaconStore, StoreError

    if QApplication.instance() is None:  # our own process: the offscreen platform's notes are noise here
        _quiet_platform_warnings()
    app = create_application()
    try:
        store = BeaconStore(database, start_session=False)  # a picture leaves no empty session
    except StoreError as exc:
        raise ScreenshotError(f"cannot open {db}: {exc}") from None
    stopwatch = _Stopwatch()
    settings = QSettings(str(tmp / "inspector.ini"), QSettings.Format.IniFormat)
    settings.setValue("view/presentation", presentation)
    window = None
    try:
        recorder = Recorder(store)
        if demo:
            fill_demo(store, FIXED_NOW, part=slice(None, DEMO_BEFORE_CHECK if view == "opt-out" else None),
                      recorder=recorder)
        ids = {s.id for s in store.summaries() if s.id is not None}
        where = "the demo data" if demo else str(db)
        span = f" (ids {min(ids)}–{max(ids)})" if ids else " (it holds no records)"
        if select is not None and select not in ids:
            raise ScreenshotError(f"--select: no record #{select} in {where}{span}")
        for record_id in compare or ():
            if record_id not in ids:
                raise ScreenshotError(f"--compare: no record #{record_id} in {where}{span}")
        window = build_window(store, PictureServer(), settings=settings, theme=theme, clock=stopwatch)  # type: ignore[arg-type]  # a stand-in server
        window.resize(*size)
        window.show()
        _settle(app, window)
        if redact:
            window.set_redaction(True)
        if view == "opt-out":
            window.start_opt_out_check()
            if demo:
                stopwatch.now += DEMO_CHECK_SECONDS
                fill_demo(store, FIXED_NOW, part=slice(DEMO_BEFORE_CHECK, None), recorder=recorder)
            _settle(app, window)
            window.optout._refresh()  # the verdict now, not at the next wake-up
        elif view == "compare":
            pair = compare or (DEMO_COMPARE if demo else _last_two(store))
            if pair is not None:
                _select_pair(window, *pair)
            window.set_mode("compare")
        if select is None and demo and view == "details":
            select = DEMO_SELECT
        if select is not None and view != "compare":
            window.select_record(select)
        window.detail.tabs.setCurrentIndex(tab)
        _settle(app, window)
        window.statusBar().clearMessage()
        if window.table.isVisible():
            window.table.setFocus()  # never a line edit: a blinking caret would differ run to run
        elif app.focusWidget() is not None:
            app.focusWidget().clearFocus()
        _settle(app, window)
        if (window.width(), window.height()) != size:
            raise ScreenshotError(f"the window cannot be {size[0]}x{size[1]}; the smallest it allows is "
                                  f"{window.minimumSizeHint().width()}x{window.minimumSizeHint().height()}")
        image = window.grab().toImage()
        partial = target.with_name(f".{target.name}.part")
        if not image.save(str(partial), "PNG"):
            raise ScreenshotError(f"cannot write {target}")
        os.replace(partial, target)
        return target
    finally:
        if window is not None:
            window.close()
        store.close()


_IGNORED = ("propagateSizeHints",)  # the offscreen platform's notes about window-manager hints
_handler_installed = False


def _quiet_platform_warnings() -> None:
    """Drop the offscreen platform's harmless notes; everything else still reaches stderr."""
    global _handler_installed
    if _handler_installed:
        return
    from PySide6.QtCore import qInstallMessageHandler

    def handler(_mode: Any, _context: Any, message: str) -> None:
        if not any(text in message for text in _IGNORED):
            sys.stderr.write(message + "\n")

    qInstallMessageHandler(handler)
    _handler_installed = True


def _last_two(store: Any) -> tuple[int, int] | None:
    ids = [s.id for s in store.summaries()][-2:]
    return (ids[0], ids[1]) if len(ids) == 2 else None


def _select_pair(window: Any, first: int, second: int) -> None:
    from PySide6.QtCore import QItemSelectionModel

    window.select_record(first)
    row = window.model.row_of(second)
    if row is not None:
        flags = QItemSelectionModel.SelectionFlag.Select | QItemSelectionModel.SelectionFlag.Rows
        window.table.selectionModel().select(window.model.index(row, 0), flags)
