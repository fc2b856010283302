"""Request -> Beacon: the pure heart of the mock (no I/O, no Flask, no Qt).

``capture()`` takes what arrived on the wire (a :class:`RawRequest`) and
returns the decoded, enriched, checked record. The Flask app, HAR import and
the tests all go through it, so a request is decoded the same way wherever
it comes from.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import datetime

from mockserver.core import checks
from mockserver.core.beacon import Beacon, RequestInfo
from mockserver.core.clock import iso_utc, utc_now
from mockserver.core.decode import decode_payload, decode_text, parse_json_object, raw_query_values
from mockserver.core.enrich import client_facts, header_value
from mockserver.core.jsontext import loads_strict

MAX_BODY = 64 * 1024
MAX_QUERY = 64 * 1024

# path -> (method, kind) of every endpoint telemetry.refine.dev serves
ENDPOINTS: dict[str, dict[str, str]] = {
    "/telemetry": {"GET": "beacon", "POST": "beacon"},
    "/cli": {"POST": "cli"},
    "/projects": {"POST": "project"},
    "/superplate": {"POST": "superplate"},
    "/send": {"POST": "encrypted"},
    "/location": {"GET": "location"},
}

ENCRYPTED_NOTE = "encrypted (JWE from @pankod/refine-core 3.x): cannot be decoded locally"


@dataclass
class RawRequest:
    """A request as it arrived, before any interpretation."""

    method: str
    path: str
    query: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    body_size: int | None = None  # announced size when the body was cut short
    scheme: str = "http"
    peer: str | None = None
    problem: str | None = None  # how its framing was broken (the body is then what arrived before)
    via_proxy: str | None = None  # how the inspector's proxy brought it ("CONNECT telemetry.refine.dev:443")
    arrived_at: datetime | None = None  # when its head was in (the server says); None: when it is recorded


def _query_size(query: str) -> int:
    return len(query.encode("utf-8", "surrogateescape"))


def _body_size(raw: RawRequest) -> int:
    return raw.body_size if raw.body_size is not None else len(raw.body)


def oversize_status(raw: RawRequest) -> int:
    """414 for a query over the cap, 413 for a body over it, else 0."""
    if _query_size(raw.query) > MAX_QUERY:
        return 414
    if _body_size(raw) > MAX_BODY:
        return 413
    return 0


def classify(method: str, path: str, headers: dict[str, str] | None = None) -> str:
    """The record kind for a method, path and headers (``unknown`` for anything else).

    An ``OPTIONS`` to a refine endpoint that carries ``Access-Control-Request-Method``
    is a browser's CORS preflight for the request it announces (``preflight``).
    """
    if method.upper() == "OPTIONS" and path in ENDPOINTS and headers is not None \
            and header_value(headers, "Access-Control-Request-Method") is not None:
        return "preflight"
    return ENDPOINTS.get(path, {}).get(method.upper(), "unknown")


def _describe_jwe(body: str) -> tuple[list[str], list[str]]:
    """(notes, problems) for a compact JWE body; only the clear header is read."""
    parts = body.strip().split(".")
    if len(parts) != 5:
        return [], [f"send: not a compact JWE (expected 5 dot-separated parts, got {len(parts)})"]
    try:
        header_bytes = base64.urlsafe_b64decode(parts[0] + "=" * (-len(parts[0]) % 4))
        header, _ = loads_strict(header_bytes.decode("utf-8"))
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return [], ["send: the JWE protected header is not base64url JSON"]
    if not isinstance(header, dict):
        return [], ["send: the JWE protected header is not a JSON object"]
    fields = ", ".join(f"{k} {header[k]}" for k in ("alg", "enc") if k in header)
    return ([f"JWE header: {fields}"] if fields else []), []


def capture(raw: RawRequest, *, received_at: datetime | None = None, trust_proxy: bool = False) -> Beacon:
    """Decode, enrich and check one request. Never raises on bad input."""
    moment = received_at or raw.arrived_at or utc_now()
    kind = classify(raw.method, raw.path, raw.headers)
    problems: list[str] = [raw.problem] if raw.problem else []
    notes: list[str] = []

    query = raw.query
    query_bytes = _query_size(query)
    if query_bytes > MAX_QUERY:
        problems.append(f"query: {query_bytes} bytes, over the {MAX_QUERY // 1024} KiB cap; "
                        f"kept the first {MAX_QUERY // 1024} KiB")
        query = query[:MAX_QUERY]
    body_size = _body_size(raw)
    body = raw.body
    if body_size > MAX_BODY:
        problems.append(f"body: {body_size} bytes, over the {MAX_BODY // 1024} KiB cap; "
                        f"kept the first {MAX_BODY // 1024} KiB")
        body = body[:MAX_BODY]
    body_text, body_encoding = decode_text(body) if body else (None, None)

    beacon = Beacon(
        kind=kind,
        status="ok",
        received_at=iso_utc(moment),
        request=RequestInfo(
            method=raw.method.upper(),
            scheme=raw.scheme,
            path=raw.path,
            query=query,
            headers=dict(raw.headers),
            body=body_text,
            body_size=body_size,
        ),
        client=client_facts(raw.peer, raw.headers, trust_proxy),
    )
    if raw.via_proxy:
        beacon.client["via_proxy"] = raw.via_proxy

    if not problems:  # truncated input is never decoded: it would only add noise
        _decode_kind(beacon, raw.path, query, body_text, body_encoding, problems, notes)

    beacon.problems = problems
    beacon.notes = notes
    beacon.status = "invalid" if problems else "ok"
    return beacon


def _decode_kind(beacon: Beacon, path: str, query: str, body_text: str | None, body_encoding: str | None,
                 problems: list[str], notes: list[str]) -> None:
    """Fill payload, problems and notes the way this endpoint's sender encodes."""
    kind = beacon.kind
    if kind == "beacon":
        _capture_beacon(beacon, beacon.request.method, query, body_text, problems, notes)
    elif kind in checks.DOCUMENTED_BODIES:
        _capture_json_body(beacon, body_text, body_encoding, problems, notes)
    elif kind == "preflight":
        _describe_preflight(beacon, problems, notes)
    elif kind == "encrypted":
        beacon.raw_payload = body_text
        notes.append(ENCRYPTED_NOTE)
        if body_text:
            jwe_notes, jwe_problems = _describe_jwe(body_text)
            notes.extend(jwe_notes)
            problems.extend(jwe_problems)
        else:
            problems.append("body: empty, expected a compact JWE")
    elif kind == "unknown":
        expected = ENDPOINTS.get(path)
        if expected:
            problems.append(f"method {beacon.request.method} is not accepted by {path} (expects {', '.join(expected)})")
        else:
            problems.append(
                f"unknown endpoint {beacon.request.method} {path}: telemetry.refine.dev serves "
                + ", ".join(ENDPOINTS)
            )


def _describe_preflight(beacon: Beacon, problems: list[str], notes: list[str]) -> None:
    """What a CORS preflight announces; one that announces a method its endpoint refuses is invalid."""
    method, path = checks.announced(beacon) or ("", beacon.request.path)
    wanted = header_value(beacon.request.headers, "Access-Control-Request-Headers")
    notes.append(f"CORS preflight: the browser asks whether it may send {method or '(no method)'} {path}"
                 + (f" with the headers {wanted.strip()}" if wanted and wanted.strip() else "")
                 + "; answered 204. It carries no data: the request it announces follows, linked to it")
    accepted = ENDPOINTS[path]
    if method not in accepted:
        problems.append(f"preflight: announces {method or 'no method'}, which {path} does not accept "
                        f"(expects {', '.join(accepted)})")


def _capture_beacon(beacon: Beacon, method: str, query: str, body_text: str | None,
                    problems: list[str], notes: list[str]) -> None:
    if method == "GET":
        values = raw_query_values(query, "payload")
        if not values:
            problems.append("query: no 'payload' parameter")
            return
        if len(values) > 1:
            notes.append(f"query: {len(values)} 'payload' parameters; decoded the first")
        raw_payload = values[0]
    else:
        raw_payload = (body_text or "").strip()
        if raw_payload.startswith("payload="):
            raw_payload = raw_payload[len("payload="):]
        if not raw_payload:
            problems.append("body: empty, expected base64 JSON")
            return
    beacon.raw_payload = raw_payload
    decoded = decode_payload(raw_payload)
    beacon.encoding = decoded.encoding
    beacon.base64_variant = decoded.base64_variant
    beacon.payload = decoded.payload
    problems.extend(decoded.problems)
    notes.extend(decoded.notes)
    if decoded.payload is not None:
        notes.extend(checks.beacon_notes(decoded.payload))


def _capture_json_body(beacon: Beacon, body_text: str | None, encoding: str | None,
                       problems: list[str], notes: list[str]) -> None:
    if not body_text:
        problems.append("body: empty, expected a JSON object")
        return
    beacon.raw_payload = body_text
    beacon.encoding = encoding
    payload, json_problems = parse_json_object(body_text, "body")
    problems.extend(json_problems)
    if payload is None:
        return
    beacon.payload = payload
    notes.extend(checks.body_notes(beacon.kind, payload))
    if beacon.kind == "project" and "email" in payload:
        beacon.contact = {"email": payload["email"]}
