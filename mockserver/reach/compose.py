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

import argparse
import http.client
import ssl
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from mockserver import __version__
from mockserver.core.beacon import COMPOSER_AGENT
from mockserver.core.checks import PROVIDERS
from mockserver.core.config import DEFAULT_HOST, DEFAULT_PORT, is_loopback, tls_dir
from mockserver.core.payloads import (
    BROWSER,
    DEFAULT_PROVIDERS,
    DEFAULT_RESOURCES,
    DEFAULT_VERSION,
    ENCODINGS,
    BtoaRefused,
    beacon_payload,
    encode_payload,
    js_stringify,
)

if TYPE_CHECKING:
    from mockserver.cli.main import CommandParsers

DEFAULT_TO = f"http://{DEFAULT_HOST}:{DEFAULT_PORT}"
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


# -- the command -----------------------------------------------------------------

def _providers(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in PROVIDERS]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown provider {unknown[0]!r}; choose from {','.join(PROVIDERS)} (or '' for none)")
    return names


def add_command(subparsers: CommandParsers) -> None:
    """Register ``send``."""
    from mockserver.cli.main import whole_number

    parser = subparsers.add_parser(
        "send", help="send the exact beacon @refinedev/core sends for given inputs (exit 0 sent, 1 refine "
                     "would send nothing, 2 error)",
        description="Compose the browser beacon @refinedev/core sends for these inputs, byte for byte "
                    "(key order, JSON.stringify, btoa/Buffer, no URL-encoding), and send it. "
                    "Exit 0 when the target answered 2xx, 1 when refine would send nothing (btoa refuses a "
                    "character above U+00FF) or the target refused it, 2 for bad arguments or no connection.")
    parser.add_argument("--to", default=DEFAULT_TO, metavar="BASE_URL",
                        help="base URL of the mock (default %(default)s, the local inspector); /telemetry is "
                             "appended")
    parser.add_argument("--version", dest="refine_version", default=DEFAULT_VERSION, metavar="V",
                        help="the @refinedev/core version to report (default %(default)s)")
    parser.add_argument("--providers", type=_providers, default=list(DEFAULT_PROVIDERS), metavar="LIST",
                        help="comma-separated providers that are on; the others are sent as false "
                             f"(default {','.join(DEFAULT_PROVIDERS)}; known: {','.join(PROVIDERS)})")
    parser.add_argument("--resources", type=whole_number(0, what="resource count"), default=DEFAULT_RESOURCES,
                        metavar="N",
                        help="resourceCount: the length of the resources prop (default %(default)s)")
    parser.add_argument("--project-id", metavar="ID", help="options.projectId (omitted when not given, as refine does)")
    parser.add_argument("--encoding", choices=ENCODINGS, default=BROWSER,
                        help="browser = btoa (Latin-1, refuses above U+00FF), node = Buffer (UTF-8) "
                             "(default %(default)s)")
    parser.add_argument("--referer", metavar="ORIGIN",
                        help="a Referer such as http://localhost:5173/ (the app's origin, as a browser sends it)")
    parser.add_argument("--dry-run", action="store_true", help="print the request, send nothing")
    parser.set_defaults(handler=cmd_send)


def cmd_send(args: argparse.Namespace) -> int:
    """``send``: compose, print, send; exit 0 / 1 / 2 as documented."""
    from mockserver.cli.main import UsageError
    from mockserver.core.text import printable

    try:
        request = compose_beacon(version=args.refine_version, providers=args.providers, resources=args.resources,
                                 project_id=args.project_id, encoding=args.encoding, referer=args.referer)
    except BtoaRefused as exc:
        print(f"not sent: {exc}", file=sys.stderr)
        return 1
    except ValueError as exc:
        raise UsageError(f"send: {exc}") from None
    try:
        scheme, host, _, _ = check_base_url(args.to)
    except SendError as exc:
        raise UsageError(f"send: {exc}") from None

    print(f"payload  {printable(request.json_text)}")
    print(f"request  {request.method} {printable(request.url(args.to))}")
    if args.dry_run:
        return 0
    if not is_loopback(host):
        print(f"warning: sending to {host}, not this machine", file=sys.stderr)
    try:
        result = send(request, args.to)
    except SendError as exc:
        print(f"telemetry-inspector: send: {exc}", file=sys.stderr)
        return 2
    detail = ""
    if result.status >= 400:
        detail = "  " + printable(result.body.decode("utf-8", "replace").strip().splitlines()[0]
                                  if result.body.strip() else "")
    print(f"answer   {result.status} {result.reason} {result.content_type}{detail}".rstrip())
    return 0 if 200 <= result.status < 300 else 1
