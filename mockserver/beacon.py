"""The captured-request record: one dataclass, one JSON form everywhere.

The store keeps it, the journal API returns it, exports write it and the GUI
shows it. ``Beacon.to_json()`` / ``Beacon.from_json()`` are the only
(de)serialisers, so the forms cannot drift apart.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from .jsontext import dumps_strict

# "preflight": a CORS preflight (OPTIONS with Access-Control-Request-Method) to a refine endpoint;
# it carries no data and is linked to the request it announces (``Beacon.preflight``).
KINDS = ("beacon", "cli", "project", "superplate", "encrypted", "location", "preflight", "unknown")
STATUSES = ("ok", "invalid")


class Summary(NamedTuple):
    """The at-a-glance columns of a record, as plain strings (or None).

    Stored beside the full record so list views (GUI table, CLI lines) never
    parse every record's JSON.
    """

    id: int | None
    session: int | None
    received_at: str
    kind: str
    status: str
    method: str
    path: str
    hostname: str | None
    version: str | None
    resource_count: str | None
    providers: str | None
    browser: str | None
    os: str | None
    ip: str | None
    project_id: str | None
    problem: str | None


def _family_version(part: Any) -> str | None:
    if not isinstance(part, dict) or not part.get("family"):
        return None
    return " ".join(x for x in (part.get("family"), part.get("version")) if x)


# How `send` and the window's composer sign their requests (compose.default_headers).
COMPOSER_AGENT = "telemetry-inspector/"
_UNKNOWN_CLIENT = (None, "Other")  # ua-parser's family for a User-Agent it does not know


def client_columns(kind: str, payload: Any, client: dict[str, Any]) -> tuple[str | None, str | None]:
    """The Browser and OS columns of a record.

    They come from the parsed User-Agent, except where that says nothing: the
    refine CLI's is node-fetch's, so its Node.js and OS are the ones its body
    reports (``nodeVersion``, ``os``, ``osVersion``); requests made by this
    tool's composer say so.
    """
    browser = _family_version(client.get("browser"))
    system = _family_version(client.get("os"))
    agent = client.get("user_agent") or ""
    if agent.startswith(COMPOSER_AGENT) and "(composer;" in agent:
        return "telemetry-inspector composer", None
    if kind == "cli" and isinstance(payload, dict):
        node, name, release = payload.get("nodeVersion"), payload.get("os"), payload.get("osVersion")
        if browser in _UNKNOWN_CLIENT and isinstance(node, str) and node:
            browser = f"Node {node.removeprefix('v')}"
        if system in _UNKNOWN_CLIENT and isinstance(name, str) and name:
            if isinstance(release, str) and release:  # envinfo's osVersion may already start with the name
                system = release if release.lower().startswith(name.lower()) else f"{name} {release}"
            else:
                system = name
    return browser, system


def _scalar(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return dumps_strict(value)


def compact_providers(providers: Any) -> str | None:
    """The providers that are on, e.g. ``"data router auth"``; None when absent."""
    if isinstance(providers, dict):
        on = [name for name, value in providers.items() if value is True]
        return " ".join(on) if on else "(none)"
    if providers is None:
        return None
    return _scalar(providers)


@dataclass
class RequestInfo:
    """What arrived on the wire, kept verbatim (bodies/queries capped)."""

    method: str
    scheme: str
    path: str
    query: str  # the raw query string: percent escapes and '+' untouched
    headers: dict[str, str]
    body: str | None  # text of the (possibly truncated) body, None when empty
    body_size: int  # bytes announced/received, before truncation

    def to_dict(self) -> dict[str, Any]:
        """The ``request`` part of the record's JSON form (a plain copy: asdict()'s
        deep copy cost a measurable share of each request)."""
        return {"method": self.method, "scheme": self.scheme, "path": self.path, "query": self.query,
                "headers": dict(self.headers), "body": self.body, "body_size": self.body_size}


@dataclass
class Beacon:
    """One captured request, decoded and enriched."""

    kind: str
    status: str
    request: RequestInfo
    received_at: str  # ISO 8601, UTC
    id: int | None = None
    session: int | None = None
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    raw_payload: str | None = None
    encoding: str | None = None  # "utf-8" | "latin-1" | None
    base64_variant: str | None = None
    payload: dict[str, Any] | None = None
    client: dict[str, Any] = field(default_factory=dict)
    contact: dict[str, Any] | None = None
    preflight: int | None = None  # the id of the CORS preflight that announced this request

    def to_dict(self) -> dict[str, Any]:
        """The record's JSON form as a plain dict (documented in the README)."""
        return {
            "id": self.id,
            "session": self.session,
            "received_at": self.received_at,
            "kind": self.kind,
            "status": self.status,
            "problems": list(self.problems),
            "notes": list(self.notes),
            "request": self.request.to_dict(),
            "raw_payload": self.raw_payload,
            "encoding": self.encoding,
            "base64_variant": self.base64_variant,
            "payload": self.payload,
            "client": self.client,
            "contact": self.contact,
            "preflight": self.preflight,
        }

    def to_json(self) -> str:
        """Serialise to compact, strict JSON (non-ASCII kept as is, a lone surrogate as ``\\udXXX``)."""
        return dumps_strict(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Beacon:
        """Rebuild a record from its JSON form."""
        return cls(
            id=data.get("id"),
            session=data.get("session"),
            received_at=data["received_at"],
            kind=data["kind"],
            status=data["status"],
            problems=list(data.get("problems") or []),
            notes=list(data.get("notes") or []),
            request=RequestInfo(**data["request"]),
            raw_payload=data.get("raw_payload"),
            encoding=data.get("encoding"),
            base64_variant=data.get("base64_variant"),
            payload=data.get("payload"),
            client=dict(data.get("client") or {}),
            contact=data.get("contact"),
            preflight=data.get("preflight"),
        )

    @classmethod
    def from_json(cls, text: str) -> Beacon:
        """Parse the output of :meth:`to_json`."""
        return cls.from_dict(json.loads(text))

    def summary(self) -> Summary:
        """The record's at-a-glance columns."""
        payload = self.payload or {}
        client = self.client or {}
        browser, system = client_columns(self.kind, payload, client)
        return Summary(
            id=self.id,
            session=self.session,
            received_at=self.received_at,
            kind=self.kind,
            status=self.status,
            method=self.request.method,
            path=self.request.path,
            hostname=client.get("hostname"),
            version=_scalar(payload.get("version")),
            resource_count=_scalar(payload.get("resourceCount")),
            providers=compact_providers(payload.get("providers")),
            browser=browser,
            os=system,
            ip=client.get("ip"),
            project_id=_scalar(payload.get("projectId")),
            problem=self.problems[0] if self.problems else None,
        )

    # -- conveniences used by front ends (pure reads of the record) --------

    def payload_get(self, dotted: str, default: Any = None) -> Any:
        """Look up ``a.b.c`` in the decoded payload; ``default`` when absent."""
        node: Any = self.payload
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return node
