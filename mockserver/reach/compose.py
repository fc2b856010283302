"""The composer: build (and send) the exact request ``@refinedev/core`` sends.

``compose_beacon()`` is pure: for the inputs a refine app has (version,
providers, resources, projectId) and the encoder its environment uses, it
returns the request byte for byte as refine would make it:

* the payload object, ``JSON.stringify`` and ``btoa`` or Buffer, as
  :mod:`mockserver.core.payloads` builds and encodes them;
* the base64 put into the query **without** URL-encoding.

When ``btoa`` would throw, refine's ``encode()`` catches it and the beacon
is simply not sent; :class:`BtoaRefused` says so instead of sending.

The GUI composer dialog calls :func:`compose_beacon` and :func:`send`; the
``telemetry-inspector send`` command is a thin wrapper around the same two.
"""

from __future__ import annotations

import http.client
import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from mockserver import __version__
from mockserver.core.beacon import COMPOSER_AGENT
from mockserver.core.config import DEFAULT_URL, tls_dir
from mockserver.core.payloads import (
    BROWSER,
    DEFAULT_PROVIDERS,
    DEFAULT_RESOURCES,
    DEFAULT_VERSION,
    BtoaRefused,
    beacon_payload,
    encode_payload,
    js_stringify,
)

DEFAULT_TO = DEFAULT_URL
BEACON_PATH = "/telemetry"


# -- the request -----------------------------------------------------------------

@dataclass(frozen=True)
class ComposedRequest:
    """A request exactly as refine would send it (before a base URL is chosen)."""

    method: str
    path: str
    query: str  # raw: the base64 is not URL-encoded, exactly like refine
    headers: dict[str, str] = field(default_factory=dict)
    payload: dict[str, Any] = field(default_factory=dict)
    json_text: str = ""
    encoding: str = BROWSER

    @property
    def target(self) -> str:
        """The request target: path and raw query."""
        return f"{self.path}?{self.query}" if self.query else self.path

    def url(self, base_url: str = "https://telemetry.refine.dev") -> str:
        """The full URL under ``base_url`` (refine's own host by default)."""
        return base_url.rstrip("/") + self.target


def default_headers(encoding: str, version: str, referer: str | None = None) -> dict[str, str]:
    """Honest headers for a composed request: it says it is the composer, not a browser.

    ``referer`` (an app origin such as ``http://localhost:5173/``) is what a
    browser would send with the image beacon; the inspector derives the app's
    hostname from it.
    """
    headers = {"User-Agent": f"{COMPOSER_AGENT}{__version__} (composer; @refinedev/core {version}; {encoding})",
               "Accept": "*/*"}
    if referer:
        headers["Referer"] = referer
    return headers


def compose_beacon(*, version: str = DEFAULT_VERSION, providers: Iterable[str] = DEFAULT_PROVIDERS,
                   resources: int = DEFAULT_RESOURCES, project_id: str | None = None,
                   encoding: str = BROWSER, referer: str | None = None,
                   headers: Mapping[str, str] | None = None) -> ComposedRequest:
    """The browser beacon refine sends for these inputs.

    Raises ``ValueError`` for inputs refine cannot have (unknown provider,
    negative resource count, unknown encoding) and :class:`BtoaRefused` when
    ``encoding="browser"`` and ``btoa`` would throw: refine then sends nothing.
    """
    if isinstance(resources, bool) or not isinstance(resources, int) or resources < 0:
        raise ValueError(f"resources must be a whole number ≥ 0 (the length of the resources prop), got {resources!r}")
    payload = beacon_payload(version, providers, resources, project_id)
    try:
        encoded = encode_payload(payload, encoding)
    except BtoaRefused as exc:
        # Name the input, so the user knows what to change.
        where = next((name for name, value in (("projectId", project_id), ("version", version))
                      if isinstance(value, str) and exc.character in value), None)
        raise BtoaRefused(exc.character, exc.offset, exc.text, where) from None
    return ComposedRequest(
        method="GET",
        path=BEACON_PATH,
        query=f"payload={encoded}",  # refine: `${url}?payload=${encoded}`, no encodeURIComponent
        headers=dict(headers) if headers is not None else default_headers(encoding, version, referer),
        payload=payload,
        json_text=js_stringify(payload),
        encoding=encoding,
    )


# -- sending ---------------------------------------------------------------------

class SendError(Exception):
    """The request could not be delivered (bad URL, connection refused, TLS); one line."""


@dataclass(frozen=True)
class SendResult:
    """What the target answered."""

    url: str
    status: int
    reason: str
    content_type: str
    body: bytes


def check_base_url(base_url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, path prefix) of ``base_url``; ``SendError`` when unusable."""
    try:
        parts = urlsplit(base_url)
        port = parts.port
    except ValueError as exc:
        raise SendError(f"not a usable URL {base_url!r}: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SendError(f"--to must be an http:// or https:// base URL such as {DEFAULT_TO}, got {base_url!r}")
    if parts.query or parts.fragment:
        raise SendError(f"--to is a base URL; drop the query/fragment from {base_url!r}")
    port = port or (443 if parts.scheme == "https" else 80)
    return parts.scheme, parts.hostname, port, parts.path.rstrip("/")


def _tls_context() -> ssl.SSLContext:
    """System CAs plus the inspector's own local CA, when it exists (for its HTTPS listener)."""
    context = ssl.create_default_context()
    ca = tls_dir() / "ca.pem"
    if ca.is_file():
        try:
            context.load_verify_locations(cafile=str(ca))
        except (OSError, ssl.SSLError):
            pass  # a broken local CA only means the system CAs are used
    return context


def send(request: ComposedRequest, base_url: str = DEFAULT_TO, timeout: float = 10.0) -> SendResult:
    """Send ``request`` to the mock (or server) at ``base_url``, target byte for byte.

    ``http.client`` is used directly so nothing re-quotes the query: what
    goes on the wire is ``GET <prefix>/telemetry?payload=<base64>``.
    """
    scheme, host, port, prefix = check_base_url(base_url)
    target = prefix + request.target
    connection: http.client.HTTPConnection
    if scheme == "https":
        connection = http.client.HTTPSConnection(host, port, timeout=timeout, context=_tls_context())
    else:
        connection = http.client.HTTPConnection(host, port, timeout=timeout)
    url = f"{scheme}://{urlsplit(base_url).netloc}{target}"
    try:
        connection.putrequest(request.method, target, skip_accept_encoding=True)
        for name, value in request.headers.items():
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        body = response.read()
    except (OSError, http.client.HTTPException, ssl.SSLError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise SendError(f"could not send to {base_url}: {reason}") from exc
    finally:
        connection.close()
    return SendResult(url=url, status=response.status, reason=response.reason,
                      content_type=response.getheader("Content-Type", ""), body=body)
