"""Work-around for a bug in PySide6 6.12: ``Signal.emit()`` from Python drops a reference to ``True``.

On CPython 3.11 ``True`` is not immortal, so a long-running window would abort
with "bool_dealloc: deallocating True or False" after a few hundred emits.
:func:`emit` measures the loss once and gives the references back; on a sound
PySide6 it measures 0 and does nothing. Cross-thread wake-ups use
``QMetaObject.invokeMethod`` instead, which is fine.

The same PySide6 also drops a reference to ``None`` on every void call, which no
wrapper can repair; pyproject.toml therefore pins PySide6 below 6.12 on
CPython < 3.12 (6.11.3 loses neither), and tests/gui/test_qtcompat.py checks
the installed one. With that pin this wrapper measures 0.
"""

from __future__ import annotations

import ctypes
import sys
from typing import Any

from PySide6.QtCore import QObject, Signal, SignalInstance

_TRUE = ctypes.py_object(True)
_PROBES = 16


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
