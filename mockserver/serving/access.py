"""Who may use the ``/__inspector/`` journal API: this machine's own programs, never a web page.

refine's endpoints are open to every page (that is how an app's beacon arrives);
the journal is not. A page elsewhere could otherwise read, wipe or stall it:
by DNS rebinding (its own name resolving to 127.0.0.1, so its requests carry
``Host: attacker.example``) or by a plain cross-site ``fetch`` that browsers send
with ``Origin`` / ``Sec-Fetch-Site``. :class:`JournalGuard` refuses those before
Flask even routes the request, so a refused long poll holds no thread; curl,
urllib and Playwright's ``request`` send neither header and keep working.

When the server listens beyond loopback, the Host header proves nothing (any
machine can send any), so the journal then wants ``Authorization: Bearer
<token>``: a random token kept in the data folder, readable by its owner only.
"""

from __future__ import annotations

import hmac
import json
import os
import re
import secrets
import stat
import urllib.parse
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from mockserver.core.config import data_dir, is_loopback
from mockserver.storage.files import make_private_dir, write_atomically

API = "/__inspector"
ENV_TOKEN = "TELEMETRY_INSPECTOR_TOKEN"  # the journal token for --server clients
TOKEN_FILE = "journal-token"
_SAME_SITE_FETCH = frozenset(("same-origin", "none"))  # "none": typed in the address bar, a bookmark
_DEFAULT_PORTS = {"http": 80, "https": 443}


def token_path(directory: Path | None = None) -> Path:
    """Where the journal token is kept (in the data folder unless ``directory`` says otherwise)."""
    return (directory or data_dir()) / TOKEN_FILE


def ensure_token(directory: Path | None = None) -> str:
    """The journal token: read from its file, or made and stored there (mode 0600) the first time.

    A file that others could read is not trusted: it is replaced by a new one.
    """
    path = token_path(directory)
    existing = read_token(path)
    if existing:
        return existing
    make_private_dir(path.parent)
    token = secrets.token_urlsafe(32)
    # 0600 from its first byte (never readable by others, not even for a moment), replacing a loose one.
    write_atomically(path, (token + "\n").encode("ascii"))
    return token


def read_token(path: Path | None = None) -> str | None:
    """The token in ``path`` (default: the data folder's), or None if absent, empty or readable by others."""
    path = path or token_path()
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
        return None
    return text or None


def _authority(host: str, scheme: str) -> tuple[str, int] | None:
    """``host[:port]`` as (lowercase name or address, port), or None when malformed."""
    try:
        parts = urllib.parse.urlsplit(f"{scheme}://{host}")
        name, port = parts.hostname, parts.port
    except ValueError:
        return None
    if not name or parts.path or parts.query or parts.username is not None:
        return None
    return name.lower(), port or _DEFAULT_PORTS.get(scheme, 0)


def refusal(environ: dict[str, Any], token: str | None) -> tuple[int, str] | None:
    """Why the journal refuses this request: (HTTP status, one-line reason), or None to serve it."""
    scheme = environ.get("wsgi.url_scheme", "http")
    host = environ.get("HTTP_HOST") or ""
    authority = _authority(host, scheme)
    fetch_site = environ.get("HTTP_SEC_FETCH_SITE")
    if fetch_site is not None and fetch_site.lower() not in _SAME_SITE_FETCH:
        return 403, f"the journal does not answer web pages of other sites (Sec-Fetch-Site: {fetch_site})"
    origin = environ.get("HTTP_ORIGIN")
    if origin is not None:
        parts = urllib.parse.urlsplit(origin)
        if parts.scheme != scheme or authority is None or _authority(parts.netloc, scheme) != authority:
            return 403, "the journal does not answer web pages of other origins"
    if token is not None:
        given = environ.get("HTTP_AUTHORIZATION", "")
        kind, _, value = given.partition(" ")
        if kind.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), token.encode()):
            return 401, ("the journal wants its token: Authorization: Bearer <token> "
                         f"(printed in the banner; env {ENV_TOKEN} for --server clients)")
        return None
    if authority is None or not is_loopback(authority[0]):
        return 403, f"the journal answers only requests for localhost or 127.0.0.1, not Host: {host[:100]!r}"
    return None


def _is_journal_path(path: str) -> bool:
    path = re.sub("/{2,}", "/", path)  # werkzeug merges slashes when routing: so do we
    return path == API or path.startswith(API + "/")


class JournalGuard:
    """WSGI middleware in front of Flask: journal requests that :func:`refusal` refuses get a JSON error.

    It runs before routing and before any view, so a refused request does no
    work and holds its worker only for the answer. Other paths pass untouched.
    """

    def __init__(self, inner: Callable[[dict[str, Any], Any], Iterable[bytes]], token: str | None) -> None:
        self.inner = inner
        self.token = token

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if _is_journal_path(environ.get("PATH_INFO") or ""):
            refused = refusal(environ, self.token)
            if refused is not None:
                status, message = refused
                body = json.dumps({"error": message}, ensure_ascii=False).encode("utf-8")
                headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body))),
                           ("Cache-Control", "no-store")]
                if status == 401:
                    headers.append(("WWW-Authenticate", 'Bearer realm="telemetry-inspector journal"'))
                start_response(f"{status} {'Unauthorized' if status == 401 else 'Forbidden'}", headers)
                return [body]
        return self.inner(environ, start_response)
