"""Background jobs: file I/O and network work off the GUI thread, results back on it.

A :class:`Job` runs ``fn(progress)`` on a ``QThreadPool`` thread. The
worker never touches a widget and never emits a Qt signal: it stores its
progress or outcome under a lock and wakes the GUI thread with a queued
``QMetaObject.invokeMethod`` (as :mod:`inspector.bridge` does: one coalesced wake-up,
never a signal from the worker). The GUI-thread slot
then emits the job's signals. Progress wake-ups are coalesced: however
often the worker reports, at most one is queued at a time.

``progress(done, total)`` returns ``False`` once :meth:`Job.cancel` was
called, which :func:`mockserver.formats.progress.report` turns into ``Cancelled``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QThreadPool, Signal, Slot

from inspector.wake import GuiWake
from mockserver.core.text import one_line
from mockserver.formats.progress import Cancelled

log = logging.getLogger(__name__)

ProgressFn = Callable[[int, int], bool]


class Job(QObject):
    """One background task with progress, cancel, and a result or a one-line error.

    Signals (GUI thread): ``progressed(done, total)``, ``succeeded(result)``,
    ``failed(message)``, ``cancelled()``, and ``finished()`` after any of the last three.
    """

    progressed = Signal(int, int)
    succeeded = Signal(object)
    failed = Signal(str)
    cancelled = Signal()
    finished = Signal()

    def __init__(self, title: str, fn: Callable[[ProgressFn], Any], *,
                 expected: tuple[type[BaseException], ...] = (), parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.title = title
        self._fn = fn
        self._expected = expected  # errors whose message is for the user as it is
        self._lock = threading.Lock()
        self._cancel = threading.Event()
        self._progress: tuple[int, int] | None = None
        self._outcome: tuple[str, Any] | None = None  # ("ok", result) | ("error", message) | ("cancelled", None)
        self._wake = GuiWake(self, "_on_wake")
        self.done = False
        self.result: Any = None
        self.error: str | None = None
        self.was_cancelled = False

    # -- the worker side ----------------------------------------------------

    def start(self, pool: QThreadPool) -> Job:
        """Run on ``pool``; returns self."""
        pool.start(self._run)
        return self

    def cancel(self) -> None:
        """Ask the job to stop at its next progress report."""
        self._cancel.set()

    def _report(self, done: int, total: int) -> bool:
        with self._lock:
            self._progress = (done, total)
        self._wake()
        return not self._cancel.is_set()

    def _run(self) -> None:
        try:
            outcome: tuple[str, Any] = ("ok", self._fn(self._report))
        except Cancelled:
            outcome = ("cancelled", None)
        except self._expected as exc:
            outcome = ("error", one_line(exc))
        except Exception as exc:  # a bug must reach the user as a message, not kill a thread
            log.exception("%s failed", self.title)
            outcome = ("error", f"{type(exc).__name__}: {one_line(exc)}")
        with self._lock:
            self._outcome = outcome
        self._wake()

    # -- the GUI side -------------------------------------------------------

    @Slot()
    def _on_wake(self) -> None:
        self._wake.reset()
        with self._lock:
            progress, self._progress = self._progress, None
            outcome = self._outcome
        if self.done:
            return
        if progress is not None:
            self.progressed.emit(*progress)
        if outcome is None:
            return
        self.done = True
        kind, value = outcome
        if kind == "ok":
            self.result = value
            self.succeeded.emit(value)
        elif kind == "error":
            self.error = value
            self.failed.emit(value)
        else:
            self.was_cancelled = True
            self.cancelled.emit()
        self.finished.emit()
