"""Progress for long jobs (export, HAR import): one callback shape for the CLI and the GUI.

A job calls ``progress(done, total)`` as it goes; returning ``False``
cancels it (a GUI progress dialog's Cancel button), anything else goes on.
The CLI passes :class:`StderrProgress`, which stays silent for small jobs.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

ProgressCallback = Callable[[int, int], "bool | None"]


class Cancelled(Exception):
    """The progress callback asked to stop."""


def report(progress: ProgressCallback | None, done: int, total: int) -> None:
    """Tell ``progress``; raise :class:`Cancelled` when it returns ``False``."""
    if progress is not None and progress(done, total) is False:
        raise Cancelled(f"cancelled after {done} of {total}")


class StderrProgress:
    """``exporting 1200/5000 records (24%)`` on stderr, for jobs of at least ``min_total`` items.

    On a terminal the line is redrawn in place (at most ten times a second);
    into a file or pipe one line is written per 10 %.
    """

    def __init__(self, verb: str, noun: str = "records", *, min_total: int = 1000,
                 stream: TextIO | None = None) -> None:
        self.verb = verb
        self.noun = noun
        self.min_total = min_total
        self.stream = stream or sys.stderr
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._last_draw = 0.0
        self._last_tenth = -1
        self._drawn = False

    def __call__(self, done: int, total: int) -> None:
        if total < self.min_total:
            return
        percent = 100 * done // total if total else 100
        text = f"{self.verb} {done}/{total} {self.noun} ({percent}%)"
        if self._tty:
            now = time.monotonic()
            if done < total and now - self._last_draw < 0.1:
                return
            self._last_draw = now
            self.stream.write("\r" + text)
            self._drawn = True
        else:
            tenth = percent // 10
            if tenth == self._last_tenth:
                return
            self._last_tenth = tenth
            self.stream.write(text + "\n")
        self.stream.flush()

    def finish(self) -> None:
        """End the redrawn line (call once the job is over, even when it failed)."""
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False
