"""Configuration in one place: defaults, environment overrides, paths.

Flags override environment variables, which override these defaults; the
CLI's ``--help`` shows the same values.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

from platformdirs import user_data_path

APP_NAME = "telemetry-inspector"
DISPLAY_NAME = "refine Telemetry Inspector"
REFINE_HOST = "telemetry.refine.dev"

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8787
DEFAULT_HTTPS_PORT = 8788
DEFAULT_URL = f"http://{DEFAULT_HOST}:{DEFAULT_PORT}"  # the local inspector, as `send --to` defaults to it

ENV_HOME = "TELEMETRY_INSPECTOR_HOME"  # data folder (database, certificate); made 0700
ENV_DB = "TELEMETRY_INSPECTOR_DB"  # database path, or :memory:
ENV_BROWSER = "TELEMETRY_INSPECTOR_BROWSER"  # a Chromium-family browser executable


def data_dir() -> Path:
    """The user data folder (``$TELEMETRY_INSPECTOR_HOME`` or the platform's)."""
    override = os.environ.get(ENV_HOME)
    return Path(override).expanduser() if override else user_data_path(APP_NAME, appauthor=False)


def is_data_dir(folder: str | Path) -> bool:
    """True when ``folder`` is the data folder (kept 0700: it holds the journal and the keys)."""
    try:
        return Path(folder).expanduser().resolve() == data_dir().resolve()
    except OSError:
        return False


def default_db() -> str:
    """The database the app uses unless ``--db`` says otherwise."""
    return os.environ.get(ENV_DB) or str(data_dir() / "telemetry.sqlite3")


def tls_dir() -> Path:
    """Where the local CA, server key and certificate live."""
    return data_dir() / "tls"


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and the loopback addresses (127.0.0.0/8, ::1): what only this machine reaches.

    A name that merely starts like one (``127.attacker.example``) is not.
    """
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
