"""The one place that loads the window package: ``inspector`` is imported here, by name, when asked for.

``mockserver`` is Qt-free: every other module works where PySide6 is not installed. The window
(no command) and the ``screenshot`` command come through here; they get from the command line
only plain values, so ``inspector`` never has to call back into it.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from types import ModuleType

WINDOW_MODULE = "inspector.app"
PICTURE_MODULE = "inspector.screenshot"


def run_window(args: argparse.Namespace) -> int:
    """No command: open the window with the mock's options in ``args``; returns the exit status."""
    run: Callable[[argparse.Namespace], int] = importlib.import_module(WINDOW_MODULE).run
    return run(args)


def picture_renderer() -> ModuleType:
    """The module that renders the window to a PNG (``render``, ``parse_size``, ``ScreenshotError``).

    Raises ImportError when the window cannot be loaded here (no PySide6, no Qt libraries).
    """
    return importlib.import_module(PICTURE_MODULE)
