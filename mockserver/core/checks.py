"""Documented-vs-sent checks: what the docs promise against what arrived.

The public docs page lists ``providers`` (``boolean[]``), ``version`` and
``resourceCount``. refine's code sends ``providers`` as an object of
booleans and may add ``projectId``. Each difference becomes a note, so a
user can hold what was sent against what was promised.
"""

from __future__ import annotations

import threading
from typing import Any

from mockserver.core.beacon import Beacon
from mockserver.core.decode import json_type_name
from mockserver.core.enrich import header_value

PROVIDERS = ("auth", "auditLog", "live", "router", "data", "i18n", "notification", "accessControl")

# What the docs page documents for the browser beacon: key -> type as written there.
DOCUMENTED_BEACON = {"providers": "boolean[]", "version": "string", "resourceCount": "number"}

# Documented bodies of the other endpoints (from the published packages).
DOCUMENTED_BODIES: dict[str, tuple[str, ...]] = {
    "cli": ("nodeEnv", "nodeVersion", "os", "osVersion", "command", "packages", "projectFramework", "projectId"),
    "project": ("email", "answers", "source"),
    "superplate": ("event", "properties", "anonymousId", "originalTimestamp"),
}

PROJECT_ID_NOTE = (
    "projectId: sent, but not in the docs; it links this app to the project "
    "(and any email given when the project was created)"
)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _providers_notes(providers: Any) -> list[str]:
    if isinstance(providers, dict):
        notes = ["providers: sent as an object of booleans; the docs say boolean[]"]
        for name, value in providers.items():
            if name not in PROVIDERS:
                notes.append(f"providers.{name}: not a provider refine reports (undocumented)")
            elif not isinstance(value, bool):
                notes.append(f"providers.{name}: expected a boolean, got {json_type_name(value)}")
        missing = [name for name in PROVIDERS if name not in providers]
        if missing:
            notes.append("providers: missing " + ", ".join(missing))
        return notes
    if isinstance(providers, list):
        if all(isinstance(v, bool) for v in providers):
            return ["providers: sent as boolean[] as the docs say; refine 4.x and 5.x send an object"]
        return ["providers: an array, but not all booleans"]
    return [f"providers: expected boolean[] (docs) or an object (refine), got {json_type_name(providers)}"]


def beacon_notes(payload: dict[str, Any]) -> list[str]:
    """Notes comparing a decoded browser beacon with the documented fields."""
    notes: list[str] = []
    for key, documented in DOCUMENTED_BEACON.items():
        if key not in payload:
            notes.append(f"missing documented key '{key}' ({documented})")
    if "providers" in payload:
        notes.extend(_providers_notes(payload["providers"]))
    if "version" in payload and not isinstance(payload["version"], str):
        notes.append(f"version: expected a string, got {json_type_name(payload['version'])}")
    if "resourceCount" in payload and not _is_number(payload["resourceCount"]):
        notes.append(f"resourceCount: expected a number, got {json_type_name(payload['resourceCount'])}")
    if "projectId" in payload:
        notes.append(PROJECT_ID_NOTE)
        if not isinstance(payload["projectId"], str):
            notes.append(f"projectId: expected a string, got {json_type_name(payload['projectId'])}")
    for key in payload:
        if key not in DOCUMENTED_BEACON and key != "projectId":
            notes.append(f"undocumented key '{key}' sent (privacy-relevant: not in the docs)")
    return notes


def body_notes(kind: str, payload: dict[str, Any]) -> list[str]:
    """Notes for the JSON bodies of ``/cli``, ``/projects`` and ``/superplate``."""
    documented = DOCUMENTED_BODIES.get(kind)
    if documented is None:
        return []
    notes = [
        f"undocumented key '{key}' sent (privacy-relevant)" for key in payload if key not in documented
    ]
    if kind == "project" and "email" in payload:
        if isinstance(payload["email"], str):
            notes.append("email: the developer's email address is sent and linked to the new project")
        else:
            notes.append(f"email: expected a string, got {json_type_name(payload['email'])}")
    return notes


class DuplicateDetector:
    """Flags a second byte-identical beacon from the same client within ``window`` seconds.

    Identical means the same method, path and raw query (or body) from the same
    IP address and User-Agent. What really sends one twice is a remount of
    ``<Refine>`` (a route change that rebuilds it, an error boundary) or the
    ``fetch`` fallback, which browsers do not coalesce. Refine up to 4.28 sets
    ``new Image().src`` twice under React StrictMode, but browsers load the same
    image URL once, so that case arrives once. Different payloads (another
    version, another page's resources) are never duplicates.
    """

    def __init__(self, window: float = 5.0) -> None:
        self.window = window
        # key -> (earlier record, its time); the record's id is read when a
        # duplicate is noted, by which time the earlier insert has happened.
        self._last: dict[tuple[Any, ...], tuple[Beacon, float]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _key(beacon: Beacon) -> tuple[Any, ...]:
        client, request = beacon.client, beacon.request
        return (client.get("ip"), client.get("user_agent"), request.method, request.path, request.query,
                request.body)

    def learn(self, beacon: Beacon, at: float) -> None:
        """Remember a record stored elsewhere (another process's) without checking it, unless a later
        record (a larger id, or one not stored yet) is remembered for the same payload and client."""
        key = self._key(beacon)
        with self._lock:
            seen = self._last.get(key)
            if seen is None or (seen[0].id is not None and beacon.id is not None and seen[0].id < beacon.id):
                self._last[key] = (beacon, at)

    def check_and_remember(self, beacon: Beacon, at: float) -> str | None:
        """A note if the same payload came from this client within the window;
        then remember this one for the next."""
        key = self._key(beacon)
        with self._lock:
            seen = self._last.get(key)
            if len(self._last) > 10_000:  # bound memory: keys older than the window are useless
                self._last = {k: v for k, v in self._last.items() if at - v[1] <= self.window}
            self._last[key] = (beacon, at)
        if seen is None or not 0 <= at - seen[1] <= self.window:
            return None
        earlier = f"#{seen[0].id}" if seen[0].id is not None else "an earlier beacon"
        return (
            f"duplicate: the same payload from the same client as {earlier}, {at - seen[1]:.2f} s earlier "
            "(<Refine> mounted again, or refine's fetch fallback, which browsers do not coalesce)"
        )


def announced(beacon: Beacon) -> tuple[str, str] | None:
    """(method, path) that a ``preflight`` record announces; None for any other record."""
    if beacon.kind != "preflight":
        return None
    method = header_value(beacon.request.headers, "Access-Control-Request-Method") or ""
    return method.strip().upper(), beacon.request.path


class PreflightLinker:
    """Links a request to the CORS preflight that announced it.

    A browser sends ``OPTIONS`` with ``Access-Control-Request-Method`` before a
    cross-origin request that is not "simple" (refine 3.x's encrypted ``POST
    /send`` with ``Content-Type: application/text``), then the request itself.
    The request that follows from the same client (IP, User-Agent, Origin) to
    the same path with the announced method within ``window`` seconds is the one
    announced; each preflight announces one request (a cached preflight sends
    none, so a later request is not linked to an old one).
    """

    def __init__(self, window: float = 10.0) -> None:
        self.window = window
        self._waiting: dict[tuple[Any, ...], tuple[Beacon, float]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _key(beacon: Beacon, method: str, path: str) -> tuple[Any, ...]:
        client = beacon.client
        return (client.get("ip"), client.get("user_agent"), header_value(beacon.request.headers, "Origin"),
                method, path)

    def remember(self, preflight: Beacon, at: float) -> None:
        """Note a stored preflight (its id is read when a request is linked to it)."""
        what = announced(preflight)
        if what is None:
            return
        with self._lock:
            if len(self._waiting) > 10_000:  # bound memory: old preflights announce nothing now
                self._waiting = {k: v for k, v in self._waiting.items() if at - v[1] <= self.window}
            self._waiting[self._key(preflight, *what)] = (preflight, at)

    @property
    def waiting(self) -> bool:
        """Whether a preflight still waits for the request it announced."""
        return bool(self._waiting)

    def forget(self, preflight_id: int) -> None:
        """A preflight's request was linked elsewhere (another process): it announces nothing more here."""
        with self._lock:
            self._waiting = {k: v for k, v in self._waiting.items() if v[0].id != preflight_id}

    def link(self, beacon: Beacon, at: float) -> None:
        """Set ``beacon.preflight`` (and a note) when a preflight announced it."""
        if not self._waiting:  # the common case (an image GET needs no preflight): nothing to look up
            return
        key = self._key(beacon, beacon.request.method, beacon.request.path)
        with self._lock:
            found = self._waiting.pop(key, None)
        if found is None or found[0].id is None or not 0 <= at - found[1] <= self.window:
            return
        beacon.preflight = found[0].id
        beacon.notes.append(f"announced by the CORS preflight #{found[0].id}, {at - found[1]:.2f} s earlier")
