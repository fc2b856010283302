"""The window fits the screen it opens on: new, and restored from a bigger screen."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from PySide6.QtCore import QRect, QSize

from inspector.geometry import initial_geometry
from tests.support.helpers import xvfb_display

ROOT = Path(__file__).resolve().parents[2]


def test_a_new_window_takes_at_most_90_percent_of_a_small_screen():
    assert initial_geometry(QRect(0, 0, 1024, 768)) == QRect(51, 38, 921, 691)
    # A big screen gets the preferred size, centred.
    assert initial_geometry(QRect(0, 0, 2560, 1440)) == QRect(640, 320, 1280, 800)
    # A second screen to the right, with a panel on top.
    assert initial_geometry(QRect(1920, 32, 1024, 736), QSize(1280, 800)) == QRect(1971, 69, 921, 662)


_CHILD = textwrap.dedent("""
    import sys
    from PySide6.QtCore import QByteArray, QSettings, QRect
    from mockserver.storage.store import BeaconStore
    from inspector.app import build_window, create_application

    settings = QSettings(sys.argv[1], QSettings.Format.IniFormat)
    app = create_application()
    store = BeaconStore(":memory:")
    window = build_window(store, None, settings=settings, start_server=False, theme="light")
    window.show()
    app.processEvents()
    if sys.argv[2] == "save-big":  # as if saved on a bigger screen, then closed
        window.setGeometry(QRect(400, 300, 1600, 1000))
        window.close()
        settings.sync()
        print("saved")
        sys.exit(0)
    avail = window.screen().availableGeometry()
    frame = window.frameGeometry()
    print(f"{avail.width()}x{avail.height()} {frame.x()},{frame.y()} {frame.width()}x{frame.height()}")
    window.close()
""")


@pytest.fixture
def small_screen():
    """A real X server with a 1024x768 screen (Xvfb), for the xcb platform."""
    with xvfb_display("1024x768") as display:
        yield display


def _child(display: str, settings: Path, step: str) -> str:
    env = {**os.environ, "QT_QPA_PLATFORM": "xcb", "DISPLAY": display}
    run = subprocess.run([sys.executable, "-c", _CHILD, str(settings), step], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    return run.stdout.strip().splitlines()[-1]


def test_the_window_fits_a_1024x768_screen_new_and_restored(small_screen, tmp_path):
    settings = tmp_path / "settings.ini"
    # Xvfb has no window manager: no frame, no panels, so the frame is the window itself.
    assert _child(small_screen, settings, "show") == "1024x768 51,38 921x691"
    assert _child(small_screen, settings, "save-big") == "saved"
    # Restored from a bigger screen: moved and shrunk inside it, leaving room for a title bar.
    assert _child(small_screen, settings, "show") == "1024x768 1,25 1022x742"
