"""Work-arounds for bugs in the PySide6 we run on.

PySide6 6.12 (seen with CPython 3.11) drops one reference to ``True`` on
every ``Signal.emit()`` from Python. On 3.11 ``True`` is not immortal, so a
long-running window would abort with "bool_dealloc: deallocating True or
False" after a few hundred emits. :func:`emit` measures the loss once and
gives the references back; on a fixed PySide6 it measures 0 and does nothing.
Cross-thread wake-ups use ``QMetaObject.invokeMethod`` instead, which is fine.

The same PySide6 also drops one reference to ``None`` on every call of a
method that returns nothing (``label.setText(…)``, ``widget.setEnabled(…)``,
``timer.start()``) or returns a null object (``obj.parent()``). A window
makes thousands of those: selecting a hundred records used to abort it with
"none_dealloc: deallocating None". Those calls are everywhere and cannot all
be wrapped, so on CPython < 3.12 this module pins the reference counts of
``None``, ``True`` and ``False`` far above anything a session can lose (as
3.12 does by making them immortal). The three are never freed in a healthy
interpreter anyway; the pin only stops a binding bug from freeing them.
"""

from __future__ import annotations

import ctypes
import sys
from typing import Any

from PySide6.QtCore import QObject, Signal, SignalInstance

_TRUE = ctypes.py_object(True)
_PROBES = 16
PIN = 1 << 40  # a trillion lost references before anything could go wrong


def _pin_singletons() -> bool:
    """Raise the reference counts of None, True and False by :data:`PIN` (CPython < 3.12 only).

    Returns True when pinned. ``ob_refcnt`` is the first field of every object
    in a release build of CPython 3.11; anything else (a debug build, another
    interpreter) is detected and left alone.
    """
    if sys.version_info >= (3, 12) or sys.implementation.name != "cpython" or hasattr(sys, "gettotalrefcount"):
        return False
    pinned = False
    interval = sys.getswitchinterval()
    sys.setswitchinterval(100.0)  # no other Python thread runs between the reads and the writes below
    try:
        for obj in (None, True, False):
            cell = ctypes.c_ssize_t.from_address(id(obj))  # made first: it holds references to None itself
            before = sys.getrefcount(obj)  # the count, plus one for getrefcount's own argument
            if cell.value != before - 1:
                continue  # not the layout we expected: leave it alone
            cell.value += PIN
            if sys.getrefcount(obj) != before + PIN:
                cell.value -= PIN
                continue
            pinned = True
    finally:
        sys.setswitchinterval(interval)
    return pinned


PINNED = _pin_singletons()


class _Probe(QObject):
    ping = Signal()


def _give_back(count: int) -> None:
    for _ in range(count):
        ctypes.pythonapi.Py_IncRef(_TRUE)


def _measure() -> int:
    """References to True one emit() loses (0 on a correct PySide6)."""
    probe = _Probe()
    before = sys.getrefcount(True)
    for _ in range(_PROBES):
        probe.ping.emit()
    lost = before - sys.getrefcount(True)
    if lost > 0:
        _give_back(lost)  # undo the probe's own damage
    per_emit = lost / _PROBES
    # Only a clean whole number is a bug we understand; anything else is noise.
    return round(per_emit) if 0 < round(per_emit) <= 2 and abs(per_emit - round(per_emit)) < 0.2 else 0


LOST_PER_EMIT = _measure()


def emit(signal: SignalInstance, *args: Any) -> None:
    """``signal.emit(*args)``, repairing PySide6's reference count on ``True``."""
    signal.emit(*args)
    if LOST_PER_EMIT:
        _give_back(LOST_PER_EMIT)
