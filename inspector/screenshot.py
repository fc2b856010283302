"""Render the real main window, filled with demo traffic, to a PNG.

``python -m inspector.screenshot out.png [--theme light|dark] [--size 1280x800] [--select N] [--empty]``

Works offscreen (``QT_QPA_PLATFORM=offscreen``) or on a real/virtual display.
The database is a temporary one and the server is not started, so nothing
of the user's is touched.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path


def take_screenshot(path: str | Path, *, theme: str = "light", size: tuple[int, int] = (1280, 800),
                    select: int | None = -1, empty: bool = False, tab: int = 0) -> Path:
    """Save a PNG of the main window; ``select`` is a record id (-1: the invalid one, None: none)."""
    from PySide6.QtCore import QSettings

    from mockserver.server import InspectorServer
    from mockserver.store import BeaconStore

    from .app import build_window, create_application
    from .demo import fill_demo

    app = create_application()
    with tempfile.TemporaryDirectory(prefix="inspector-shot-") as tmp:
        store = BeaconStore(Path(tmp) / "demo.sqlite3")
        server = InspectorServer(store, port=0, https_port=0, certificate_dir=Path(tmp) / "tls")
        settings = QSettings(str(Path(tmp) / "inspector.ini"), QSettings.Format.IniFormat)
        try:
            window = build_window(store, server, settings=settings, theme=theme)
            if not empty:
                fill_demo(store)
            window.resize(*size)
            window.show()
            _settle(app, window)
            if not empty and select is not None:
                target = select
                if target == -1:
                    invalid = [s.id for s in store.summaries() if s.status == "invalid"]
                    target = invalid[0] if invalid else store.last_id()
                window.select_record(target)
                window.detail.tabs.setCurrentIndex(tab)
            _settle(app, window)
            out = Path(path)
            window.grab().save(str(out))
            window.close()
        finally:
            server.stop()
            store.close()
    return out


def _settle(app, window) -> None:
    """Let the batch timer and layouts run."""
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    QTimer.singleShot(250, loop.quit)
    loop.exec()
    window.bridge.drain()
    app.processEvents()


def main(argv: list[str] | None = None) -> int:
    """Command line for :func:`take_screenshot`."""
    parser = argparse.ArgumentParser(prog="python -m inspector.screenshot", description=__doc__.splitlines()[0])
    parser.add_argument("output")
    parser.add_argument("--theme", choices=("light", "dark", "system"), default="light")
    parser.add_argument("--size", default="1280x800")
    parser.add_argument("--select", type=int, default=-1, help="record id to select (-1: the first invalid one)")
    parser.add_argument("--tab", type=int, default=0, help="detail tab: 0 collected, 1 JSON, 2 raw")
    parser.add_argument("--empty", action="store_true", help="no records: the empty state")
    args = parser.parse_args(argv)
    width, height = (int(x) for x in args.size.lower().split("x"))
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    out = take_screenshot(args.output, theme=args.theme, size=(width, height), select=args.select,
                          empty=args.empty, tab=args.tab)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
