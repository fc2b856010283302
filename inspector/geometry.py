"""Window geometry that fits the screen the window opens on.

The window prefers 1280×800, but a 1024×768 laptop or a small VM must still
show its status bar and right edge: a new window takes at most 90 % of the
screen's available area. (A saved geometry from a bigger screen, or from one
that is gone, is moved and shrunk onto the current one by Qt's own
``restoreGeometry``.)
"""

from __future__ import annotations

from PySide6.QtCore import QRect, QSize
from PySide6.QtGui import QGuiApplication, QScreen
from PySide6.QtWidgets import QWidget

PREFERRED = QSize(1280, 800)
SCREEN_SHARE = 0.9  # of the available area, leaving room for a title bar and a taskbar


def initial_geometry(available: QRect, preferred: QSize = PREFERRED, share: float = SCREEN_SHARE) -> QRect:
    """The preferred size, at most ``share`` of ``available`` each way, centred in it."""
    width = min(preferred.width(), int(available.width() * share))
    height = min(preferred.height(), int(available.height() * share))
    rect = QRect(0, 0, width, height)
    rect.moveCenter(available.center())
    return rect


def _screen_for(widget: QWidget) -> QScreen | None:
    return QGuiApplication.screenAt(widget.frameGeometry().center()) or QGuiApplication.primaryScreen()


def place_new_window(widget: QWidget) -> None:
    """Give a window that has no saved geometry its first size and place."""
    screen = _screen_for(widget)
    if screen is not None:
        widget.setGeometry(initial_geometry(screen.availableGeometry()))
