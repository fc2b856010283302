"""What one request collected, laid out like the docs page's "What is collected" tables.

Pure data, no Qt: the inspector window renders it as a table, and a later
exporter can render the same rows as Markdown. Each :class:`CollectedField`
holds this request's actual value, where on the wire it came from, and what
in the app makes it what it is for the refine version that sent it, so a
developer knows which line of their code to change.

Also here: the raw URL, the raw request text and a replay ``curl`` command
for a record (plain strings; the GUI only copies them).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import Any

from .beacon import Beacon
from .checks import DOCUMENTED_BODIES, PROVIDERS
from .config import REFINE_HOST
from .enrich import header_value
from .jsontext import dumps_strict, escape_surrogates

# Section titles, in the order the docs page has them (the two extra ones
# cover endpoints the page does not mention).
APPLICATION = "Application attributes"
HEADERS = "From the request headers"
CONTACT = "Contact information"
CLI = "CLI attributes (not on the docs page)"
PROJECT = "Project creation (not on the docs page)"
SUPERPLATE = "Project generation (not on the docs page)"
REQUEST = "Request body"
CORS = "CORS preflight"

NOT_SENT = None  # value of a field that is absent from this request


@dataclass(frozen=True)
class CollectedField:
    """One row of the "What was collected" table.

    ``value`` is the text of what arrived (``None`` when the field was not
    sent; JSON ``null`` is the text ``"null"``). ``documented`` says whether
    the public docs page lists the field.
    """

    section: str
    name: str
    value: str | None
    source: str
    explanation: str
    documented: bool = True


def format_value(value: Any) -> str:
    """A JSON value as plain display text: strings verbatim, the rest as compact JSON.

    A lone surrogate is shown as its escape ``\\udXXX`` (Qt and UTF-8 cannot hold one).
    """
    if isinstance(value, str):
        return escape_surrogates(value)
    return dumps_strict(value, separators=(", ", ": "))


def refine_major(version: Any) -> int | None:
    """The major version of a ``version`` string such as ``"4.58.0"`` (None if unreadable)."""
    if not isinstance(version, str):
        return None
    found = re.match(r"\s*v?(\d+)\.", version)
    return int(found.group(1)) if found else None


# -- explanations --------------------------------------------------------------

_PROVIDER_EXPLANATIONS: dict[str, str] = {
    "auth": "true when <Refine> is given an authProvider prop{legacy}; false without one.",
    "auditLog": "true when the auditLogProvider prop has a create, get or update function.",
    "live": "true when the liveProvider prop has a publish, subscribe or unsubscribe function.",
    "data": (
        "Always true: refine reports whether a data context exists, and <Refine> always creates one "
        "(dataProvider is required), whatever the app passes."
    ),
    "i18n": "true when the i18nProvider prop has a translate, changeLocale or getLocale function.",
    "notification": "true when the notificationProvider prop has an open or close function.",
    "accessControl": "true when the accessControlProvider prop has a can function.",
}

_ROUTER_4 = (
    "Always true in 4.x, whatever the app does: refine 4 reads the legacy router context, whose "
    "defaults are functions, so it is true with routerProvider, legacyRouterProvider or neither."
)
_ROUTER_5 = (
    "true when the routerProvider prop has a Link, go, back or parse function (in 5.x this is real); "
    "false without a routerProvider."
)
_ROUTER_UNKNOWN = (
    "In 4.x always true (the legacy router context has function defaults); in 5.x true only when "
    "routerProvider is given. This version could not be read."
)


def provider_explanation(name: str, major: int | None) -> str:
    """What in the app makes ``providers.<name>`` true or false for refine ``major``."""
    if name == "router":
        return {4: _ROUTER_4, 5: _ROUTER_5}.get(major or 0, _ROUTER_UNKNOWN)
    text = _PROVIDER_EXPLANATIONS.get(name)
    if text is None:
        return "Not a provider refine 4.x or 5.x reports: something else built this payload."
    legacy = " (or, in 4.x, a legacyAuthProvider prop)" if major in (4, None) else ""
    return text.format(legacy=legacy)


VERSION_EXPLANATION = (
    "The @refinedev/core version, baked into the package when it was built: it changes only "
    "when you upgrade or downgrade @refinedev/core."
)
RESOURCE_COUNT_EXPLANATION = (
    "The number of top-level entries in <Refine resources={[…]}>; routes, actions and meta inside "
    "an entry are not counted. 0 when the prop is missing."
)
PROJECT_ID_EXPLANATION = (
    "options.projectId of <Refine options={{ projectId }}>, sent verbatim. Project templates "
    "(create-refine-app, refine.new) write it in; it links this app to the project and to any "
    "email given when it was created. Remove it from options to stop sending it. Not on the docs page."
)
PROJECT_ID_ABSENT = (
    "Not sent: options.projectId is not set (JSON.stringify drops undefined). Templates add it; "
    "the docs page does not mention it."
)

IP_EXPLANATION = (
    "The address the request came from. The real server sees your public address (or your "
    "proxy's); here it is the local peer."
)
HOSTNAME_EXPLANATION = (
    "The host your app is served from, as the browser reports it: an <img> beacon's Referer is the "
    "page's origin only (path and query are cut). The docs call it the machine's hostname; it is "
    "the app's address (localhost during development)."
)
BROWSER_EXPLANATION = (
    "Parsed from the User-Agent string every browser sends; Chromium on HTTPS also sends "
    "Sec-CH-UA client hints saying the same."
)
OS_EXPLANATION = "Parsed from the User-Agent string (and Sec-CH-UA-Platform on HTTPS)."
HINTS_EXPLANATION = (
    "Low-entropy User-Agent client hints Chromium adds to HTTPS requests by default; they repeat "
    "the browser and OS. Not on the docs page."
)
EMAIL_PROJECT_EXPLANATION = (
    "The optional email typed when the project was created. The server answers with a projectId "
    "that is written into the new project; later beacons carrying that projectId are linked to "
    "this email. Not suppressed by --disable-telemetry."
)
EMAIL_BEACON_EXPLANATION = (
    "Never part of the browser beacon: it is given once, at project creation (POST /projects), "
    "and linked to the app through projectId."
)

CLI_EXPLANATIONS: dict[str, str] = {
    "nodeEnv": "NODE_ENV of the CLI process, bucketed (development when unset; production, test, "
               "continuous-integration… by pattern; custom otherwise).",
    "nodeVersion": "process.version of the Node.js running the refine CLI.",
    "os": "The operating system name the CLI detected.",
    "osVersion": "The operating system version the CLI detected.",
    "command": "The refine CLI command that ran (process.argv[2]: dev, build, start, add, …).",
    "packages": "Every installed @refinedev/* package with its version.",
    "projectFramework": "The framework the CLI detected from the project's dependencies (vite, nextjs, remix, …).",
    "projectId": "The projectId the project template wrote into package.json (links to the creation email).",
}
CLI_OPT_OUT = ' Opt out with REFINE_NO_TELEMETRY=true (exactly "true"; =1 does not opt out).'

PROJECT_EXPLANATIONS: dict[str, str] = {
    "email": EMAIL_PROJECT_EXPLANATION,
    "answers": "Every answer given to the project creator's prompts (UI framework, data provider, …).",
    "source": "Which creator made the project: CREATE_REFINE_APP (the CLI) or REFINE_NEW (the web).",
}
SUPERPLATE_EXPLANATIONS: dict[str, str] = {
    "event": "What happened (generate).",
    "properties": "Details of the generated project (the chosen plugins and answers).",
    "anonymousId": "A random id for this machine's creator runs.",
    "originalTimestamp": "When the generation ran, by the creator's clock.",
}


# -- building the rows -----------------------------------------------------------

def _header(beacon: Beacon, name: str) -> str | None:
    return header_value(beacon.request.headers, name)


def _family_version(part: Any) -> str | None:
    if not isinstance(part, dict) or not part.get("family"):
        return None
    return " ".join(str(x) for x in (part.get("family"), part.get("version")) if x)


def _payload_source(beacon: Beacon, key: str) -> str:
    where = "query" if beacon.request.method == "GET" else "body"
    return f"{where} payload → {key}"


def _application_fields(beacon: Beacon) -> list[CollectedField]:
    payload = beacon.payload
    major = refine_major(payload.get("version")) if isinstance(payload, dict) else None
    rows: list[CollectedField] = []
    if not isinstance(payload, dict):
        reason = "the payload could not be decoded (see the problems)" if beacon.raw_payload else "no payload was sent"
        rows.append(CollectedField(APPLICATION, "payload", NOT_SENT, _payload_source(beacon, "(nothing)"),
                                   f"Nothing to show: {reason}."))
        return rows

    providers = payload.get("providers")
    if isinstance(providers, dict):
        names = [*PROVIDERS, *(k for k in providers if k not in PROVIDERS)]
        for name in names:
            value = format_value(providers[name]) if name in providers else NOT_SENT
            rows.append(CollectedField(APPLICATION, f"providers.{name}", value,
                                       _payload_source(beacon, f"providers.{name}"),
                                       provider_explanation(name, major), documented=name in PROVIDERS))
    else:
        rows.append(CollectedField(
            APPLICATION, "providers", format_value(providers) if "providers" in payload else NOT_SENT,
            _payload_source(beacon, "providers"),
            "The docs say boolean[]; refine 4.x and 5.x send an object of booleans, one per provider.",
        ))

    rows.append(CollectedField(APPLICATION, "version",
                               format_value(payload["version"]) if "version" in payload else NOT_SENT,
                               _payload_source(beacon, "version"), VERSION_EXPLANATION))
    rows.append(CollectedField(APPLICATION, "resourceCount",
                               format_value(payload["resourceCount"]) if "resourceCount" in payload else NOT_SENT,
                               _payload_source(beacon, "resourceCount"), RESOURCE_COUNT_EXPLANATION))
    if "projectId" in payload:
        rows.append(CollectedField(APPLICATION, "projectId", format_value(payload["projectId"]),
                                   _payload_source(beacon, "projectId"), PROJECT_ID_EXPLANATION, documented=False))
    else:
        rows.append(CollectedField(APPLICATION, "projectId", NOT_SENT, _payload_source(beacon, "projectId"),
                                   PROJECT_ID_ABSENT, documented=False))
    for key, value in payload.items():
        if key not in ("providers", "version", "resourceCount", "projectId"):
            rows.append(CollectedField(APPLICATION, key, format_value(value), _payload_source(beacon, key),
                                       "Not something refine sends, and not on the docs page.", documented=False))
    return rows


def _body_fields(beacon: Beacon, section: str, keys: tuple[str, ...],
                 explanations: dict[str, str], suffix: str = "") -> list[CollectedField]:
    payload = beacon.payload if isinstance(beacon.payload, dict) else None
    if payload is None:
        reason = "the body is not a JSON object (see the problems)" if beacon.request.body else "the body is empty"
        return [CollectedField(section, "body", NOT_SENT, "body", f"Nothing to show: {reason}.", documented=False)]
    rows = [
        CollectedField(section, key, format_value(payload[key]) if key in payload else NOT_SENT,
                       f"body field {key}", explanations.get(key, "") + suffix, documented=False)
        for key in keys if key != "email"
    ]
    for key, value in payload.items():
        if key not in keys:
            rows.append(CollectedField(section, key, format_value(value), f"body field {key}",
                                       "Not a field refine's tools send (undocumented).", documented=False))
    return rows


def _ip_source(beacon: Beacon, ip: str | None) -> str:
    forwarded = _header(beacon, "X-Forwarded-For")
    if ip and forwarded and forwarded.split(",")[0].strip() == ip:
        return "header X-Forwarded-For (first hop, proxy trusted)"
    return "peer address of the connection"


def _hostname_source(beacon: Beacon) -> str:
    origin = _header(beacon, "Origin")
    if origin and origin != "null":
        return "header Origin"
    if _header(beacon, "Referer"):
        return "header Referer"
    return "header Origin / Referer (neither sent)"


def _header_fields(beacon: Beacon) -> list[CollectedField]:
    client = beacon.client or {}
    ua_source = "header User-Agent" if _header(beacon, "User-Agent") is not None else "header User-Agent (not sent)"
    rows = [
        CollectedField(HEADERS, "IP address", client.get("ip"), _ip_source(beacon, client.get("ip")), IP_EXPLANATION),
        CollectedField(HEADERS, "Hostname", client.get("hostname"), _hostname_source(beacon), HOSTNAME_EXPLANATION),
        CollectedField(HEADERS, "Browser", _family_version(client.get("browser")), ua_source, BROWSER_EXPLANATION),
        CollectedField(HEADERS, "OS", _family_version(client.get("os")), ua_source, OS_EXPLANATION),
    ]
    hints = client.get("client_hints") or {}
    if hints:
        names = {"brands": "Sec-CH-UA", "mobile": "Sec-CH-UA-Mobile", "platform": "Sec-CH-UA-Platform",
                 "platform_version": "Sec-CH-UA-Platform-Version", "arch": "Sec-CH-UA-Arch",
                 "model": "Sec-CH-UA-Model", "full_version_list": "Sec-CH-UA-Full-Version-List"}
        value = "; ".join(f"{k}={v}" for k, v in hints.items())
        source = "headers " + ", ".join(names.get(k, k) for k in hints)
        rows.append(CollectedField(HEADERS, "Client hints", value, source, HINTS_EXPLANATION, documented=False))
    return rows


def _contact_fields(beacon: Beacon) -> list[CollectedField]:
    payload = beacon.payload if isinstance(beacon.payload, dict) else {}
    if beacon.kind == "project":
        email = format_value(payload["email"]) if "email" in payload else NOT_SENT
        explanation = EMAIL_PROJECT_EXPLANATION if email is not None else (
            "Not given: the email prompt at project creation was skipped. " + EMAIL_PROJECT_EXPLANATION)
        return [CollectedField(CONTACT, "Email address", email, "body field email", explanation)]
    explanation = EMAIL_BEACON_EXPLANATION
    if beacon.kind == "beacon" and isinstance(payload.get("projectId"), str):
        explanation += f" This request carries projectId {payload['projectId']}, so it can be linked."
    return [CollectedField(CONTACT, "Email address", NOT_SENT, "not in this request", explanation)]


def collected_fields(beacon: Beacon) -> list[CollectedField]:
    """The "What was collected" rows for one record, section by section.

    Browser beacons follow the docs page's three tables (application
    attributes, header-derived facts, contact); ``/cli``, ``/projects`` and
    ``/superplate`` get their own body section first. Requests that carry no
    telemetry (encrypted, unknown) still get the header-derived rows, because
    the real server would see those too.
    """
    kind = beacon.kind
    rows: list[CollectedField] = []
    if kind == "beacon":
        rows += _application_fields(beacon)
    elif kind == "cli":
        rows += _body_fields(beacon, CLI, DOCUMENTED_BODIES["cli"], CLI_EXPLANATIONS, CLI_OPT_OUT)
    elif kind == "project":
        rows += _body_fields(beacon, PROJECT, DOCUMENTED_BODIES["project"], PROJECT_EXPLANATIONS)
    elif kind == "superplate":
        rows += _body_fields(beacon, SUPERPLATE, DOCUMENTED_BODIES["superplate"], SUPERPLATE_EXPLANATIONS,
                             " Suppressed by --disable-telemetry.")
    elif kind == "encrypted":
        size = beacon.request.body_size
        rows.append(CollectedField(REQUEST, "body", f"{size} bytes of JWE", "body",
                                   "Encrypted with refine's public key by @pankod/refine-core 3.40–3.65: "
                                   "cannot be decoded locally.", documented=False))
    rows += _preflight_fields(beacon)
    rows += _header_fields(beacon)
    rows += _contact_fields(beacon)
    return rows


def _preflight_fields(beacon: Beacon) -> list[CollectedField]:
    """A preflight says what it announces; the request it announced names its preflight."""
    if beacon.kind == "preflight":
        method = _header(beacon, "Access-Control-Request-Method")
        return [CollectedField(CORS, "announces", f"{method} {beacon.request.path}" if method else None,
                               "header Access-Control-Request-Method",
                               "The browser asks before a cross-origin request that is not simple (refine 3.x's "
                               "POST /send with Content-Type application/text). It carries no data and is not "
                               "counted by --expect N; --expect none still fails on it.", documented=False)]
    if beacon.preflight is not None:
        return [CollectedField(CORS, "preflight", f"#{beacon.preflight}", "OPTIONS just before it",
                               "The CORS preflight that announced this request: the two are one send.",
                               documented=False)]
    return []


# -- the request as text ---------------------------------------------------------

_HOP_BY_HOP = {"host", "content-length", "connection", "transfer-encoding", "keep-alive", "accept-encoding"}


def request_target(beacon: Beacon) -> str:
    """Path plus the raw query exactly as it arrived (``+`` and ``%`` untouched)."""
    request = beacon.request
    return f"{request.path}?{request.query}" if request.query else request.path


def raw_url(beacon: Beacon) -> str:
    """The full URL the client asked for, from its Host header (refine's host when routed)."""
    host = _header(beacon, "Host") or REFINE_HOST
    return f"{beacon.request.scheme}://{host}{request_target(beacon)}"


def raw_request_text(beacon: Beacon) -> str:
    """The request as an HTTP/1.1 message: request line, headers, blank line, body."""
    request = beacon.request
    lines = [f"{request.method} {request_target(beacon)} HTTP/1.1"]
    lines += [f"{name}: {value}" for name, value in request.headers.items()]
    text = "\n".join(lines) + "\n"
    if request.body is not None:
        text += "\n" + request.body
        if request.body_size > len(request.body.encode("utf-8", "surrogateescape")):
            text += f"\n[… body cut: {request.body_size} bytes announced]"
    return text


# A beacon is answered with a GIF: curl writes it to /dev/null and prints the status instead of
# putting binary bytes on the user's terminal.
CURL_DISCARD_BODY = ("-sS", "-o", "/dev/null", "-w", shlex.quote(r"%{http_code}\n"))  # curl reads the \n


def curl_command(beacon: Beacon, base_url: str) -> str:
    """A shell command that sends this request again, to ``base_url`` (the local mock).

    Headers are kept except hop-by-hop ones; the query goes as it arrived.
    """
    request = beacon.request
    url = base_url.rstrip("/") + request_target(beacon)
    words = ["curl"]
    if beacon.kind == "beacon":
        words += CURL_DISCARD_BODY
    if re.search(r"[\[\]{}]", url):
        words.append("--globoff")  # curl would read brackets as a URL pattern
    if request.method != "GET" or request.body is not None:
        words += ["-X", request.method]
    for name, value in request.headers.items():
        if name.lower() not in _HOP_BY_HOP:
            words += ["-H", shlex.quote(f"{name}: {value}")]
    if request.body is not None:
        words += ["--data-raw", shlex.quote(request.body)]
    words.append(shlex.quote(url))
    return " ".join(words)
