"""Entry points: ``run(args)`` for ``telemetry-inspector`` with no subcommand, ``build_window`` for tests.

``run`` checks the display before Qt is touched (:mod:`inspector.platform_check`;
Qt aborts the process when no platform plugin can start), opens the store,
starts the embedded mock and shows the window. Everything that can fail for a user (database, ports) ends
in a one-line message, never a traceback.
"""

from __future__ import annotations

import gc
import os
import signal
import sys
from argparse import Namespace
from pathlib import Path

from inspector.platform_check import display_problem, offscreen_note
from mockserver.core.config import DISPLAY_NAME, ENV_HOME, data_dir
from mockserver.core.text import command_message
from mockserver.serving.server import InspectorServer
from mockserver.storage.store import BeaconStore, StoreError

__all__ = ["build_window", "create_application", "display_problem", "run", "settings_for_home"]

ENV_THEME = "TELEMETRY_INSPECTOR_THEME"  # system | light | dark


def settings_for_home():
    """QSettings in ``$TELEMETRY_INSPECTOR_HOME/inspector.ini`` when that is set, else the platform's."""
    from PySide6.QtCore import QSettings

    from inspector.settings import APPLICATION, ORGANIZATION

    if os.environ.get(ENV_HOME):
        return QSettings(str(data_dir() / "inspector.ini"), QSettings.Format.IniFormat)
    return QSettings(ORGANIZATION, APPLICATION)


def create_application(argv: list[str] | None = None):
    """The QApplication with the product's names and icon (reuses a running one)."""
    from PySide6.QtWidgets import QApplication

    from inspector.settings import APPLICATION, DESKTOP_FILE, ORGANIZATION
    from inspector.widgets.icons import app_icon

    # Names first: the platform reads them when the application starts
    # (task bar grouping, the desktop file, QSettings' default location).
    QApplication.setApplicationName(APPLICATION)
    QApplication.setOrganizationName(ORGANIZATION)
    QApplication.setApplicationDisplayName(DISPLAY_NAME)
    QApplication.setDesktopFileName(DESKTOP_FILE)
    app = QApplication.instance()
    if app is None:
        app = QApplication(argv if argv is not None else [sys.argv[0]])
        # Everything imported so far (Qt's bindings, Flask, the user-agent tables: ~60,000 objects)
        # lives as long as the process. Out of the collector's sight, a full collection, which the
        # embedded server's garbage triggers now and then and which holds the GIL throughout, scans
        # only what came later: 5-15 ms instead of ~45 ms with 12,000 rows loaded, so the window is
        # not frozen that long under a burst of requests.
        gc.freeze()
    QApplication.setWindowIcon(app_icon())
    return app


def build_window(store: BeaconStore, server: InspectorServer | None, *, settings=None,
                 start_server: bool = True, theme: str | None = None, clock=None):
    """The real main window over ``store`` and ``server``, without running an event loop.

    ``settings`` defaults to :func:`settings_for_home`; tests pass their own.
    ``theme`` (system/light/dark) defaults to ``$TELEMETRY_INSPECTOR_THEME``,
    then to the user's saved choice. ``clock`` (seconds, monotonic) is for
    reproducible pictures; the default is the real clock.
    """
    from inspector.widgets import theme as themes
    from inspector.window import MainWindow

    app = create_application()
    settings = settings if settings is not None else settings_for_home()
    chosen = theme or os.environ.get(ENV_THEME) or str(settings.value("view/theme", "system"))
    if chosen not in themes.THEMES:
        chosen = "system"
    themes.apply_theme(app, chosen)
    window = MainWindow(store, server, settings=settings, start_server=start_server, clock=clock)
    for key, action in window.theme_actions.items():
        action.setChecked(key == chosen)
    return window


def _say(message: str) -> None:
    """An error or a note on stderr, in the form every command uses (the window has no command name)."""
    print(command_message(None, message), file=sys.stderr)


def run(args: Namespace) -> int:
    """Open the inspector window with the embedded mock; returns the exit status.

    ``args``: ``host``, ``port``, ``https_port`` (None = no HTTPS), ``db``
    (path or ``:memory:``), ``trust_proxy``; optional ``theme``.
    """
    problem = display_problem()  # before Qt: a platform that cannot start makes Qt abort the process
    if problem:
        _say(problem)
        return 2
    note = offscreen_note()
    if note:
        _say(note)

    try:
        store = BeaconStore(args.db)
    except StoreError as exc:
        _say(str(exc))
        _show_fatal("Cannot open the database", str(exc))
        return 1

    server = InspectorServer(store, host=args.host, port=args.port, https_port=args.https_port,
                             trust_proxy=bool(getattr(args, "trust_proxy", False)),
                             certificate_dir=_certificate_dir(args),
                             proxy_port=getattr(args, "proxy_port", None))
    app = create_application()
    window = build_window(store, server, theme=getattr(args, "theme", None))
    window.show()

    # Ctrl+C (or a plain kill) closes the window like the close button does,
    # so settings are saved and the server stops cleanly; the timer lets
    # Python run its signal handler while Qt's loop spins.
    signal.signal(signal.SIGINT, lambda *_: window.close())
    signal.signal(signal.SIGTERM, lambda *_: window.close())
    tick = _python_tick(app)
    try:
        return int(app.exec())
    finally:
        tick.stop()
        server.stop()
        store.close()


def _certificate_dir(args: Namespace) -> Path | None:
    value = getattr(args, "certificate_dir", None)
    return Path(value) if value else None


def _python_tick(app):
    from PySide6.QtCore import QTimer

    timer = QTimer(app)
    timer.start(250)
    timer.timeout.connect(lambda: None)
    return timer


def _show_fatal(title: str, message: str) -> None:
    """A dialog for a failure before the window exists (best effort: stderr already has it)."""
    try:
        from PySide6.QtWidgets import QMessageBox

        from inspector.widgets.plaintext import plain_message_box

        create_application()
        plain_message_box(QMessageBox.Icon.Critical, title, message).exec()
    except Exception:  # noqa: BLE001 - the message is on stderr already
        pass
