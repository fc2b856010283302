"""The composer: build (and send) the exact request ``@refinedev/core`` sends.

``compose_beacon()`` is pure: for the inputs a refine app has (version,
providers, resources, projectId) and the encoder its environment uses, it
returns the request byte for byte as refine would make it:

* the payload object with keys in refine's order (``providers`` with all
  eight keys in refine's order, ``version``, ``resourceCount``, then
  ``projectId`` only when set: ``JSON.stringify`` drops ``undefined``);
* ``JSON.stringify`` formatting (compact, non-ASCII written as is);
* ``btoa`` (one Latin-1 byte per character, throws above U+00FF) in a
  browser, ``Buffer.from(s).toString("base64")`` (UTF-8) in Node;
* the base64 put into the query **without** URL-encoding.

When ``btoa`` would throw, refine's ``encode()`` catches it and the beacon
is simply not sent; :class:`BtoaRefused` says so instead of sending.

The GUI composer dialog calls :func:`compose_beacon` and :func:`send`; the
``telemetry-inspector send`` command is a thin wrapper around the same two.
"""

from __future__ import annotations

import base64
import http.client
import json
import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from mockserver import __version__
from mockserver.core.beacon import COMPOSER_AGENT
from mockserver.core.checks import PROVIDERS
from mockserver.core.config import DEFAULT_HOST, DEFAULT_PORT, tls_dir
from mockserver.core.jsontext import escape_surrogates

BROWSER = "browser"  # btoa: Latin-1
NODE = "node"  # Buffer: UTF-8
ENCODINGS = (BROWSER, NODE)

DEFAULT_TO = f"http://{DEFAULT_HOST}:{DEFAULT_PORT}"
DEFAULT_VERSION = "4.58.0"
DEFAULT_PROVIDERS = ("data", "router")  # what a minimal 4.x app reports
DEFAULT_RESOURCES = 0
BEACON_PATH = "/telemetry"


class BtoaRefused(ValueError):
    """``btoa`` throws for this payload, so refine sends nothing at all."""

    def __init__(self, character: str, offset: int, text: str, where: str | None = None) -> None:
        self.character = character
        self.offset = offset  # in the JSON text
        self.text = text
        self.where = where  # the input that holds the character, when known
        place = where or f"the JSON at offset {offset}"
        super().__init__(
            f"{place} contains {character!r} (U+{ord(character):04X}), which btoa cannot encode: "
            "refine's encode() catches the error and sends no beacon at all"
        )


# -- the payload -----------------------------------------------------------------

def js_stringify(value: Any) -> str:
    """``JSON.stringify`` for plain JSON data: compact, insertion order, non-ASCII as is.

    Python's ``json.dumps`` escapes exactly what ``JSON.stringify`` escapes
    (``"``, ``\\``, controls below U+0020 with the same short forms) once
    ``ensure_ascii`` is off; lone surrogates, which ``JSON.stringify`` writes
    as ``\\udXXX``, are escaped the same way here.
    """
    return escape_surrogates(json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False))


def beacon_payload(version: str = DEFAULT_VERSION, providers: Iterable[str] = DEFAULT_PROVIDERS,
                   resources: int = DEFAULT_RESOURCES, project_id: str | None = None) -> dict[str, Any]:
    """The payload object ``useTelemetryData()`` builds, keys in refine's order.

    ``providers`` names the providers that are on; every other one of the
    eight is sent as ``false``. Unknown names raise ``ValueError``.
    """
    on = set(providers)
    unknown = sorted(on - set(PROVIDERS))
    if unknown:
        raise ValueError(f"unknown {'provider' if len(unknown) == 1 else 'providers'} {', '.join(unknown)}; "
                         f"refine reports {', '.join(PROVIDERS)}")
    payload: dict[str, Any] = {
        "providers": {name: name in on for name in PROVIDERS},
        "version": version,
        "resourceCount": resources,
    }
    if project_id is not None:  # JSON.stringify drops undefined
        payload["projectId"] = project_id
    return payload


def btoa(text: str) -> str:
    """The browser's ``btoa``: one Latin-1 byte per character; throws above U+00FF."""
    for offset, ch in enumerate(text):
        if ord(ch) > 0xFF:
            raise BtoaRefused(ch, offset, text)
    return base64.b64encode(text.encode("latin-1")).decode("ascii")


def buffer_base64(text: str) -> str:
    """Node's ``Buffer.from(text).toString("base64")``: UTF-8 bytes.

    Node writes a lone surrogate as U+FFFD; so does this.
    """
    data = "".join("\ufffd" if "\ud800" <= ch <= "\udfff" else ch for ch in text).encode("utf-8")
    return base64.b64encode(data).decode("ascii")


def encode_payload(payload: Any, encoding: str = BROWSER) -> str:
    """``btoa(JSON.stringify(payload))`` (``browser``) or the Buffer form (``node``).

    Raises :class:`BtoaRefused` where refine's browser path would send nothing.
    """
    text = js_stringify(payload)
    if encoding == BROWSER:
        return btoa(text)
    if encoding == NODE:
        return buffer_base64(text)
    raise ValueError(f"encoding must be one of {', '.join(ENCODINGS)}, got {encoding!r}")


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
