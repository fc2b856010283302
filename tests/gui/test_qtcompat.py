"""The installed PySide6 must not lose references to None or True.

PySide6 6.12.0 on CPython 3.11 drops a reference to None on every void call (and to True on every
``Signal.emit``): a long session aborts with "Fatal Python error: none_dealloc" (SIGABRT), without
any of the project's code. pyproject.toml pins PySide6 below 6.12 on CPython < 3.12 for that; when
PySide6 releases a version after 6.12.0, run this file against it before widening the pin.
These run in child processes, since the failure is the interpreter aborting.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CALLS = 300_000

# Plain PySide6 and nothing of the project's: the pin alone must keep this process alive.
VOID_CALLS_SCRIPT = textwrap.dedent(f"""
    import sys
    from PySide6.QtCore import QObject, Signal
    from PySide6.QtWidgets import QApplication, QWidget
    app = QApplication([])
    widget = QWidget()
    class Probe(QObject):
        ping = Signal()
    probe = Probe()
    none_before, true_before = sys.getrefcount(None), sys.getrefcount(True)
    for _ in range({CALLS}):
        widget.setVisible(False)  # returns nothing: PySide6 6.12.0 drops a None reference here
        probe.ping.emit()         # and a True reference here
    print(none_before - sys.getrefcount(None), true_before - sys.getrefcount(True))
""")


def run(code: str, python: str = sys.executable) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    return subprocess.run([python, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def test_the_installed_pyside6_survives_300000_void_calls_and_emits():
    result = run(VOID_CALLS_SCRIPT)
    assert result.returncode == 0, result.stderr[-2000:]  # 6.12.0 on 3.11: -6 (SIGABRT), "none_dealloc"
    none_lost, true_lost = map(int, result.stdout.split())
    assert none_lost < 1000 and true_lost < 1000  # a leaking PySide6 loses ~300,000 of each


def test_the_window_survives_many_selections():
    result = run(textwrap.dedent("""
        import tempfile
        from pathlib import Path
        from PySide6.QtCore import QSettings
        from inspector.app import build_window, create_application
        from mockserver.records.demo import fill_demo
        from mockserver.storage.store import BeaconStore
        app = create_application()
        store = BeaconStore(":memory:")
        folder = Path(tempfile.mkdtemp())
        window = build_window(store, None, settings=QSettings(str(folder / "i.ini"), QSettings.Format.IniFormat),
                              theme="light")
        fill_demo(store)
        window.bridge.drain()
        for n in range(250):  # on a leaking PySide6 this aborted before 100
            window.select_record(1 + n % 10)
            if n % 50 == 0:
                window.set_redaction(not window.redact_action.isChecked())
        window.close()
        print("ok")
    """))
    assert result.returncode == 0 and result.stdout.endswith("ok\n"), result.stderr[-2000:]
