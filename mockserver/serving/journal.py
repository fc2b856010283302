"""The ``/__inspector/`` journal API as a Flask Blueprint: read, wait for, stream and delete records.

Only this machine's programs reach it (the app puts a
:class:`~mockserver.serving.access.JournalGuard` in front); refine's endpoints
live in :mod:`mockserver.serving.endpoints`. Long polls and event streams end
when the server stops (``shutdown``) or, served by the server's bridge, when
their client leaves (``environ["mockserver.cancel"]``); :func:`holding_kind`
tells the bridge which requests those are, so it can cap them.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Response, current_app, request

from mockserver import __version__
from mockserver.core.beacon import KINDS, STATUSES
from mockserver.core.clock import iso_utc, utc_now
from mockserver.serving.access import API
from mockserver.serving.probe import NONCE, ProbeLog
from mockserver.serving.responses import NO_STORE, error_response, json_response
from mockserver.storage.store import BeaconStore, StoreEvent

MAX_LIST = 10_000
MAX_WAIT = 300.0
SSE_HEARTBEAT = 15.0
LARGEST_ID = 2**63 - 1  # SQLite's largest integer

# The journal answers OPTIONS like any other unknown method: its JSON 404.
_JOURNAL = {"provide_automatic_options": False}
_ANY_METHOD = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]
_DELETE_BY = ("kind", "status", "session", "ids")
LONG_POLL, EVENT_STREAM = "long poll", "event stream"


def holding_kind(path: str, method: str) -> str | None:
    """Which of the journal's waiting requests this is (LONG_POLL, EVENT_STREAM), or None."""
    if method not in ("GET", "HEAD") or not path.startswith(API):
        return None
    if path == f"{API}/wait" or path.startswith(f"{API}/probes/"):
        return LONG_POLL
    return EVENT_STREAM if path == f"{API}/events" else None


def _cancel(shutdown: threading.Event) -> threading.Event:
    """What ends this request's wait: the bridge's per-request event (set on a disconnect and when the
    server stops), else ``shutdown``."""
    cancel = request.environ.get("mockserver.cancel")
    return cancel if isinstance(cancel, threading.Event) else shutdown


class BadArgument(ValueError):
    """A journal query argument out of range or of the wrong form: answered 400 with its message."""


def journal_blueprint(store: BeaconStore, shutdown: threading.Event, probes: ProbeLog) -> Blueprint:
    """The journal API over ``store``; long polls and event streams end when ``shutdown`` is set.

    Rules carry the full ``/__inspector`` path (no ``url_prefix``), so the URL map
    is the same as when they were the app's own.
    """
    journal = Blueprint("journal", __name__)

    @journal.get(f"{API}/health", **_JOURNAL)
    def health() -> Response:
        # serve --workers: which of how many processes answered (set by mockserver.serving.worker)
        worker, workers = current_app.extensions.get("worker", (1, 1))
        health = {"status": "ok", "version": __version__, "session": store.session,
                  "database": store.path, "time": iso_utc(utc_now()), "worker": worker, "workers": workers}
        # Set by InspectorServer once bound: lets `verify --server` find the
        # HTTPS side and its pin whatever ports were chosen.
        listening = current_app.extensions.get("listening")
        if listening is not None:
            health.update(http_url=listening.http_url, https_url=listening.https_url,
                          https_port=listening.https_port, spki_pin=listening.spki_pin,
                          proxy_url=listening.proxy_url)
        return json_response(health)

    journal.add_url_rule(f"{API}/ca.pem", "ca_certificate", ca_certificate, methods=["GET"], **_JOURNAL)

    @journal.get(f"{API}/beacons", **_JOURNAL)
    def list_beacons() -> Response:
        beacons = store.query(
            kind=_choice_arg("kind", KINDS),
            status=_choice_arg("status", STATUSES),
            since=_int_arg("since", None, 0),
            limit=_int_arg("limit", 1000, 1, MAX_LIST),
        )
        return json_response({"beacons": [b.to_dict() for b in beacons]})

    @journal.get(f"{API}/beacons/<record_id>", **_JOURNAL)
    def one_beacon(record_id: str) -> Response:
        if not (record_id.isascii() and record_id.isdigit()):
            return error_response(f"record id must be a whole number, got {record_id!r}", 400)
        beacon = store.get(int(record_id)) if int(record_id) <= LARGEST_ID else None
        if beacon is None:
            return error_response(f"no record #{record_id}", 404)
        return json_response(beacon.to_dict())

    @journal.get(f"{API}/count", **_JOURNAL)
    def count() -> Response:
        return json_response(store.counts())

    @journal.delete(f"{API}/beacons", **_JOURNAL)
    def delete_beacons() -> Response:
        selection = _deletion()
        if not selection:
            return json_response({"deleted": store.clear()})
        return json_response({"deleted": len(store.delete_where(**selection))})

    @journal.get(f"{API}/wait", **_JOURNAL)
    def wait() -> Response:
        target = _int_arg("count", 1, 0)
        seconds = _seconds_arg("timeout", "10")
        reached, current = store.wait_for_count(
            target or 0, seconds, kind=_choice_arg("kind", KINDS), status=_choice_arg("status", STATUSES),
            cancel=_cancel(shutdown),
        )
        return json_response({"reached": reached, "count": current, "wanted": target}, 200 if reached else 408)

    @journal.get(f"{API}/events", **_JOURNAL)
    def events() -> Response:
        since = _int_arg("since", None, 0)
        last_event = request.headers.get("Last-Event-ID", "")
        if since is None:
            since = int(last_event) if last_event.isdigit() else store.last_id()
        return Response(_event_stream(store, since, _cancel(shutdown)), mimetype="text/event-stream",
                        headers={**NO_STORE, "X-Accel-Buffering": "no"})

    @journal.get(f"{API}/probes/<nonce>")
    def probe_seen(nonce: str) -> Response:
        if not NONCE.fullmatch(nonce):
            return error_response(f"a probe nonce is 32 hex digits, got {nonce[:40]!r}", 400)
        timeout = _int_arg("timeout", 0, 0, 30) or 0  # a short long-poll for a remote prover
        return json_response({"nonce": nonce, "seen": probes.wait(nonce, timeout, cancel=_cancel(shutdown))})

    # Journal paths are never telemetry: whatever the method, an unknown one is the API's 404.
    @journal.route(API, defaults={"rest": None}, methods=_ANY_METHOD, **_JOURNAL)
    @journal.route(f"{API}/", defaults={"rest": ""}, methods=_ANY_METHOD, **_JOURNAL)
    @journal.route(f"{API}/<path:rest>", methods=_ANY_METHOD, **_JOURNAL)
    def api_not_found(rest: str | None) -> Response:
        path = API if rest is None else f"{API}/{rest}"
        return error_response(f"no journal endpoint {request.method} {path}", 404)

    return journal


def ca_certificate() -> Response:
    """``GET /__inspector/ca.pem``: the local CA's certificate (public, never its key), which a routed
    Firefox imports into its profile, also for an inspector reached with ``--server``."""
    certificate = current_app.extensions.get("certificate")
    if certificate is None:
        return error_response("HTTPS is off: this inspector has no certificate", 404)
    try:
        pem = certificate.ca_cert.read_bytes()
    except OSError as exc:
        return error_response(f"cannot read the CA certificate: {exc.strerror or exc}", 503)
    return Response(pem, mimetype="application/x-pem-file", headers=NO_STORE)


def _int_arg(name: str, default: int | None, low: int, high: int | None = None) -> int | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadArgument(f"{name} must be a whole number, got {raw!r}") from None
    if value < low or (high is not None and value > high):
        raise BadArgument(f"{name} must be between {low} and {high}" if high else f"{name} must be at least {low}")
    if value > LARGEST_ID:  # SQLite cannot even compare with it
        raise BadArgument(f"{name} must be at most {LARGEST_ID}")
    return value


def _seconds_arg(name: str, default: str) -> float:
    raw = request.args.get(name, default)
    try:
        seconds = float(raw)
    except ValueError:
        raise BadArgument(f"{name} must be a number of seconds, got {raw!r}") from None
    if not 0 <= seconds <= MAX_WAIT:
        raise BadArgument(f"{name} must be between 0 and {MAX_WAIT:g} seconds")
    return seconds


def _choice_arg(name: str, choices: tuple[str, ...]) -> str | None:
    value = request.args.get(name) or None
    if value is not None and value not in choices:
        raise BadArgument(f"{name} must be one of {', '.join(choices)}; got {value!r}")
    return value


def _deletion() -> dict[str, Any]:
    """What ``DELETE /beacons`` was asked to delete: {} for everything; a bad or unknown argument is a 400."""
    unknown = sorted(set(request.args) - set(_DELETE_BY))
    if unknown:
        raise BadArgument(f"DELETE {API}/beacons takes only {', '.join(_DELETE_BY)}; got {', '.join(unknown)}")
    for name in request.args:
        values = request.args.getlist(name)
        if len(values) != 1 or not values[0].strip():
            raise BadArgument(f"{name} must be given once, with a value")
    selection: dict[str, Any] = {}
    if "kind" in request.args:
        selection["kind"] = _choice_arg("kind", KINDS)
    if "status" in request.args:
        selection["status"] = _choice_arg("status", STATUSES)
    if "session" in request.args:
        selection["session"] = _int_arg("session", None, 0)
    if "ids" in request.args:
        selection["ids"] = [_whole_number("ids", part) for part in request.args["ids"].split(",")]
    return selection


def _whole_number(name: str, raw: str) -> int:
    text = raw.strip()
    if not (text.isascii() and text.isdigit()) or int(text) > LARGEST_ID:
        raise BadArgument(f"{name} must be comma-separated record ids, got {raw!r}")
    return int(text)


def _event_stream(store: BeaconStore, since: int, cancel: threading.Event) -> Iterator[str]:
    """Server-sent events: one ``beacon`` event per new record, ids as event ids, until ``cancel`` is set.

    It re-reads the store after each wake-up instead of queueing records, so
    a slow reader never loses one and never makes the server hold a backlog.
    """
    changed = threading.Event()

    def on_change(event: StoreEvent) -> None:
        changed.set()

    unsubscribe = store.subscribe(on_change)
    last = since
    try:
        yield "retry: 2000\n\n"
        while not cancel.is_set():
            for beacon in store.query(since=last, limit=500):
                last = beacon.id or last
                yield f"id: {beacon.id}\nevent: beacon\ndata: {beacon.to_json()}\n\n"
            if store.last_id() > last:
                continue
            waited = 0.0
            while not changed.wait(0.5) and not cancel.is_set():
                waited += 0.5
                if waited >= SSE_HEARTBEAT:
                    yield ": keep-alive\n\n"
                    waited = 0.0
            changed.clear()
            if store.last_id() < last:  # the journal was cleared
                last = 0
                yield "event: cleared\ndata: {}\n\n"
    finally:
        unsubscribe()
