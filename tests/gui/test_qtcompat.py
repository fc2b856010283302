"""PySide6 6.12 on CPython 3.11 loses a reference to None on every void call (and to True on every
Signal.emit): without inspector.qtcompat a window aborts with "none_dealloc" after about a hundred record
selections. These run in child processes, since the failure is the interpreter aborting."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(code: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def test_thousands_of_void_calls_and_emits_do_not_abort():
    result = run("""
        import inspector.qtcompat as qtcompat
        from PySide6.QtCore import QObject, Signal
        from PySide6.QtWidgets import QApplication, QLabel
        app = QApplication([])
        label = QLabel()
        class Probe(QObject):
            ping = Signal(int)
        probe = Probe()
        for n in range(30000):
            label.setWordWrap(True)   # returns nothing: PySide6 6.12 drops a None reference
            label.parent()            # returns a null object: the same
            qtcompat.emit(probe.ping, n)
        print("ok")
    """)
    assert result.returncode == 0 and result.stdout == "ok\n", result.stderr[-2000:]


def test_the_window_survives_many_selections():
    result = run("""
        import tempfile
        from pathlib import Path
        from PySide6.QtCore import QSettings
        from inspector.app import build_window, create_application
        from inspector.demo import fill_demo
        from mockserver.store import BeaconStore
        app = create_application()
        store = BeaconStore(":memory:")
        folder = Path(tempfile.mkdtemp())
        window = build_window(store, None, settings=QSettings(str(folder / "i.ini"), QSettings.Format.IniFormat),
                              theme="light")
        fill_demo(store)
        window.bridge.drain()
        for n in range(250):  # without the repair it aborted before 100
            window.select_record(1 + n % 10)
            if n % 50 == 0:
                window.set_redaction(not window.redact_action.isChecked())
        window.close()
        print("ok")
    """)
    assert result.returncode == 0 and result.stdout.endswith("ok\n"), result.stderr[-2000:]
