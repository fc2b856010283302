"""A running inspector reached through its journal API (``--server URL``).

``browser`` and ``verify`` can use an inspector that is already running (the
GUI, or ``serve``) instead of starting their own. They need three things from
it: where its HTTPS listener is, the pin of its certificate (to route a
browser there), and the records that arrive after a given moment.
"""

from __future__ import annotations

import json
import os
import re
import ssl
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography import x509

from mockserver.core.beacon import Beacon
from mockserver.core.config import is_loopback
from mockserver.serving.access import ENV_TOKEN, read_token
from mockserver.serving.tls import spki_pin

API = "/__inspector"
_PROXY_URL = re.compile(r"http://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):\d{1,5}")


class RemoteError(Exception):
    """The running inspector cannot be used; message is one line."""


class RemoteHTTPError(RemoteError):
    """The inspector answered, with an HTTP error (``status``): retrying will not help."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def journal_token(url: str, given: str | None = None) -> str | None:
    """The token to send to the journal at ``url``: ``given``, else ``$TELEMETRY_INSPECTOR_TOKEN``,
    else (only for a loopback URL: never hand this machine's token to another) the data folder's."""
    if given:
        return given
    if os.environ.get(ENV_TOKEN):
        return os.environ[ENV_TOKEN]
    host = urllib.parse.urlsplit(url).hostname or ""
    return read_token() if is_loopback(host.lower()) else None


def _insecure_context() -> ssl.SSLContext:
    # Only ever used towards the inspector's own listener, whose key we pin ourselves.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _get(url: str, timeout: float, context: ssl.SSLContext | None = None, token: str | None = None) -> bytes:
    """The body ``url`` answers (RemoteHTTPError for an HTTP error, RemoteError when unreachable)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout,
                                    context=context) as response:
            return bytes(response.read())
    except urllib.error.HTTPError as exc:
        if exc.code == 401:
            raise RemoteHTTPError(f"{url} answered HTTP 401: the journal wants its token "
                                  f"(--token, or env {ENV_TOKEN}; the inspector's banner shows it)", 401) from exc
        raise RemoteHTTPError(f"{url} answered HTTP {exc.code}{_error_text(exc)}", exc.code) from exc
    except urllib.error.URLError as exc:
        reason = getattr(exc.reason, "strerror", None) or str(exc.reason)
        raise RemoteError(f"no inspector at {url}: {reason}") from exc
    except OSError as exc:
        raise RemoteError(f"no inspector at {url}: {exc}") from exc


def _get_json(url: str, timeout: float, context: ssl.SSLContext | None = None, token: str | None = None) -> Any:
    body = _get(url, timeout, context, token)
    try:
        return json.loads(body)
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError: something answered, not the journal
        raise RemoteHTTPError(f"{url} answered something that is not JSON: {exc}", 200) from exc


def _error_text(exc: urllib.error.HTTPError) -> str:
    """``: <message>`` from a journal API error answer (``{"error": ...}``), else nothing."""
    try:
        message = json.loads(exc.read(4096)).get("error")
    except (OSError, ValueError, AttributeError):
        return ""
    return f": {' '.join(message.split())[:300]}" if isinstance(message, str) else ""


def _http_port(health: dict[str, Any], scheme: str, port: int) -> int | None:
    """The HTTP listener's port: the health answer's ``http_url``, else the URL given when it is HTTP."""
    http_url = health.get("http_url")
    if isinstance(http_url, str):
        try:
            found = urllib.parse.urlsplit(http_url).port
        except ValueError:
            found = None
        if found:
            return found
    return port if scheme == "http" else None


def _proxy_url(value: Any) -> str | None:
    """The health answer's ``proxy_url`` when it is one (``http://host:port``), else None."""
    if isinstance(value, str) and _PROXY_URL.fullmatch(value):
        return value
    return None


def certificate_pin(host: str, port: int, timeout: float = 5.0) -> str:
    """The SPKI pin of the certificate served at ``host:port``."""
    try:
        pem = ssl.get_server_certificate((host, port), timeout=timeout)
    except (OSError, ssl.SSLError) as exc:
        raise RemoteError(f"cannot read the certificate of https://{host}:{port}: {exc}") from exc
    return spki_pin(x509.load_pem_x509_certificate(pem.encode("ascii")))


@dataclass
class RemoteInspector:
    """Where a running inspector listens, and a reader of its journal."""

    base_url: str  # scheme://host:port of the listener whose journal we read
    host: str
    https_port: int
    spki_pin: str
    timeout: float = 10.0
    token: str | None = None  # the journal token, for an inspector listening beyond loopback
    http_port: int | None = None  # its HTTP listener (http://telemetry.refine.dev through a proxy goes there)
    proxy_url: str | None = None  # its scoped proxy (``--proxy-port``), None when it runs none

    @property
    def _context(self) -> ssl.SSLContext | None:
        return _insecure_context() if self.base_url.startswith("https:") else None

    @classmethod
    def connect(cls, url: str, timeout: float = 5.0, token: str | None = None) -> RemoteInspector:
        """Check that ``url`` (the HTTP or HTTPS listener) is an inspector and find its HTTPS side.

        ``token``: see :func:`journal_token` for where it comes from when not given.
        """
        parts = urllib.parse.urlsplit(url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise RemoteError(f"--server wants the inspector's URL, like http://127.0.0.1:8787; got {url!r}")
        host = parts.hostname
        port = parts.port or (443 if parts.scheme == "https" else 80)
        url_host = f"[{host}]" if ":" in host else host
        base = f"{parts.scheme}://{url_host}:{port}"
        context = _insecure_context() if parts.scheme == "https" else None
        token = journal_token(base, token)
        try:
            health = _get_json(f"{base}{API}/health", timeout, context, token)
        except RemoteHTTPError as exc:
            if exc.status != 401:
                raise RemoteError(f"{base} is not a telemetry inspector ({exc})") from exc
            raise
        if not isinstance(health, dict) or health.get("status") != "ok" or "session" not in health:
            raise RemoteError(f"{base} is not a telemetry inspector (its health answer is not the inspector's)")
        https_port: int | None = None
        if isinstance(health.get("https_port"), int):
            https_port = health["https_port"]
        elif parts.scheme == "https":
            https_port = port
        else:
            # The HTTPS listener is by default the next port (8787 → 8788). Make
            # sure it is this very inspector: same session, same database.
            candidate = port + 1
            try:
                other = _get_json(f"https://{url_host}:{candidate}{API}/health", timeout, _insecure_context(), token)
            except RemoteError:
                other = None
            if isinstance(other, dict) and (other.get("session"), other.get("database")) == (
                    health.get("session"), health.get("database")):
                https_port = candidate
        if https_port is None:
            raise RemoteError(f"found no HTTPS listener of the inspector at {base}; "
                              f"pass its HTTPS URL instead, e.g. --server https://{url_host}:8788")
        pin = health.get("spki_pin") if isinstance(health.get("spki_pin"), str) else None
        pin = pin or certificate_pin(host, https_port, timeout)
        return cls(base_url=base, host=url_host, https_port=https_port, spki_pin=pin, token=token,
                   http_port=_http_port(health, parts.scheme, port),
                   proxy_url=_proxy_url(health.get("proxy_url")))

    def ca_pem(self) -> bytes:
        """The inspector's CA certificate (PEM), from ``GET /__inspector/ca.pem`` (a routed Firefox trusts it).

        Raises RemoteError when the inspector has none (HTTPS off, or too old to serve it) or answers
        something that is not a certificate.
        """
        url = f"{self.base_url}{API}/ca.pem"
        try:
            pem = _get(url, self.timeout, self._context, self.token)
        except RemoteHTTPError as exc:
            if exc.status == 404:
                raise RemoteError(f"the inspector at {self.base_url} serves no CA certificate ({exc}); "
                                  "a routed Firefox needs it: update the inspector, or turn its HTTPS on") from exc
            raise
        try:
            x509.load_pem_x509_certificate(pem)
        except ValueError:
            raise RemoteError(f"{url} answered something that is not a PEM certificate") from None
        return pem

    def beacons(self, since: int | None = None, limit: int = 1000) -> list[Beacon]:
        """Records with an id above ``since``, oldest first."""
        query = f"limit={limit}" + (f"&since={since}" if since is not None else "")
        url = f"{self.base_url}{API}/beacons?{query}"
        data = _get_json(url, self.timeout, self._context, self.token)
        items = data.get("beacons") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise RemoteHTTPError(f"{url} answered something that is not the journal's list", 200)
        try:
            return [Beacon.from_dict(item) for item in items]
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            raise RemoteHTTPError(f"{url} answered a record that is not the journal's: {exc}", 200) from exc

    def probe_seen(self, nonce: str, timeout: float = 0.0) -> bool:
        """True once the route probe ``nonce`` reached the inspector (waits up to ``timeout`` seconds there)."""
        seconds = max(0, min(30, int(timeout + 0.999)))
        try:
            data = _get_json(f"{self.base_url}{API}/probes/{nonce}?timeout={seconds}", self.timeout + seconds,
                             self._context, self.token)
        except RemoteHTTPError as exc:
            if exc.status == 404:
                raise RemoteError(f"the inspector at {self.base_url} is too old to confirm route probes "
                                  f"(no {API}/probes endpoint); update it") from exc
            raise
        return isinstance(data, dict) and data.get("seen") is True

    def last_id(self) -> int:
        """The largest record id in the journal (0 when empty).

        The API has no "last id" call; ``beacons?since=S&limit=1`` answers the
        first record after S, so a doubling then halving search finds the last
        one in about 2·log2(id) tiny requests, whatever the journal's size.
        """
        def first_after(since: int) -> int | None:
            found = self.beacons(since=since, limit=1)
            return found[0].id if found else None

        first = first_after(0)
        if first is None:
            return 0
        low, high = first - 1, max(first, 1)  # first_after(low) exists; probe high
        while first_after(high) is not None:
            low, high = high, high * 2
        # Invariant: something exists after low, nothing after high.
        while high - low > 1:
            middle = (low + high) // 2
            if first_after(middle) is not None:
                low = middle
            else:
                high = middle
        return high

    def follow(self, callback: Callable[[Beacon], None], stop: threading.Event, since: int | None = None,
               interval: float = 0.5) -> None:
        """Call ``callback`` for each new record until ``stop`` is set (polls the journal).

        An unreachable inspector is retried (it may be restarting); an HTTP error
        (refused, no token, not an inspector) raises :class:`RemoteHTTPError`.
        """
        last = self.last_id() if since is None else since
        while not stop.is_set():
            try:
                for beacon in self.beacons(since=last):
                    last = max(last, beacon.id or last)
                    callback(beacon)
            except RemoteHTTPError:
                raise
            except RemoteError:
                pass  # unreachable: the inspector may be restarting; keep trying until stopped
            stop.wait(interval)
