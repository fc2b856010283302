"""GuiWake: wake a QObject's slot on its own (GUI) thread, once per burst.

Server threads and worker threads call it as often as they like; the slot
runs once per burst, on the GUI thread. A queued ``QMetaObject.invokeMethod``
carries it there (PySide6 6.12's ``Signal.emit`` leaked references; pyproject.toml's
PySide6 pin keeps that release out, and tests/gui/test_qtcompat.py checks the installed one).
"""

from __future__ import annotations

import threading

from PySide6.QtCore import QMetaObject, QObject, Qt


class GuiWake:
    """Callable from any thread: queues one call of ``target.<slot>()`` until :meth:`reset`."""

    def __init__(self, target: QObject, slot: str) -> None:
        self._target = target
        self._slot = slot
        self._lock = threading.Lock()
        self._woken = False

    def __call__(self) -> None:
        """Ask for the slot to run; a no-op while a call is already pending."""
        with self._lock:
            if self._woken:
                return
            self._woken = True
        QMetaObject.invokeMethod(self._target, self._slot, Qt.ConnectionType.QueuedConnection)

    def reset(self) -> None:
        """Allow the next wake. Call it before reading the shared state: whatever
        arrives after that read then wakes the slot again, so nothing is missed."""
        with self._lock:
            self._woken = False
