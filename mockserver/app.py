"""The Flask app: telemetry.refine.dev's endpoints and the ``/__inspector/`` journal API.

Handlers do the minimum on the hot path: read the request (capped), hand it
to the :class:`Recorder` (which commits), answer. Nothing a client sends can
produce a 500: an unexpected failure is itself recorded and answered 400.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Iterator
from typing import Any

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from . import __version__
from .beacon import KINDS, STATUSES
from .capture import MAX_BODY, RawRequest, iso_utc, oversize_status, utc_now
from .recorder import Recorder
from .store import BeaconStore, StoreError, StoreEvent

log = logging.getLogger(__name__)

# The smallest transparent 1x1 GIF: what an <img> beacon expects back.
GIF = bytes.fromhex("47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b")

API = "/__inspector"
MAX_LIST = 10_000
MAX_WAIT = 300.0
SSE_HEARTBEAT = 15.0

# Flask answers OPTIONS by itself unless told not to: preflights must reach
# the catch-all so they are recorded like everything else.
_RECORDED = {"provide_automatic_options": False}
_CORS = {"Access-Control-Allow-Origin": "*"}
_NO_STORE = {"Cache-Control": "no-store"}


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(data, ensure_ascii=False)
    return Response(body, status=status, mimetype="application/json", headers={**_NO_STORE, **(headers or {})})


def _error(message: str, status: int) -> Response:
    return _json({"error": message}, status)


def _read_body() -> tuple[bytes, int | None]:
    """The body, at most MAX_BODY + 1 bytes, and the announced size when it was larger."""
    length = request.content_length
    stream = request.stream
    data = stream.read(MAX_BODY + 1)
    if length is not None and length > len(data):
        return data, length
    return data, None if len(data) <= MAX_BODY else len(data)


def _raw_request() -> RawRequest:
    environ = request.environ
    body, announced = _read_body()
    return RawRequest(
        method=request.method,
        path=request.path,
        query=environ.get("QUERY_STRING", ""),
        headers=dict(request.headers),
        body=body,
        body_size=announced,
        scheme=environ.get("wsgi.url_scheme", "http"),
        peer=request.remote_addr,
    )


def _int_arg(name: str, default: int | None, low: int, high: int | None = None) -> int | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _BadArgument(f"{name} must be a whole number, got {raw!r}") from None
    if value < low or (high is not None and value > high):
        raise _BadArgument(f"{name} must be between {low} and {high}" if high else f"{name} must be at least {low}")
    return value


def _choice_arg(name: str, choices: tuple[str, ...]) -> str | None:
    value = request.args.get(name) or None
    if value is not None and value not in choices:
        raise _BadArgument(f"{name} must be one of {', '.join(choices)}; got {value!r}")
    return value


class _BadArgument(ValueError):
    pass


def create_app(store: BeaconStore, *, trust_proxy: bool = False, country: str = "XX",
               recorder: Recorder | None = None) -> Flask:
    """The WSGI app serving refine's endpoints and the journal API over ``store``."""
    app = Flask("mockserver")
    app.config["MAX_CONTENT_LENGTH"] = None  # we cap ourselves, and record what was cut
    recorder = recorder or Recorder(store, trust_proxy=trust_proxy)
    app.extensions["recorder"] = recorder
    # Set when the server stops: long polls and event streams end at once
    # instead of holding a worker thread until their timeout.
    shutdown = app.extensions["shutdown"] = threading.Event()

    def record() -> tuple[Any, int]:
        """Record the current request; returns (record, HTTP status for a cut request)."""
        raw = _raw_request()
        return recorder.record(raw), oversize_status(raw)

    def refused(beacon: Any, too_big: int) -> Response | None:
        if too_big:
            headers = {**_CORS, "Connection": "close"}
            return Response(beacon.problems[0] + "\n", status=too_big, mimetype="text/plain", headers=headers)
        if beacon.status == "invalid":
            text = "\n".join(beacon.problems) + "\n"
            return Response(text, status=400, mimetype="text/plain", headers={**_CORS, **_NO_STORE})
        return None

    @app.route("/telemetry", methods=["GET", "POST"], **_RECORDED)
    def telemetry() -> Response:
        beacon, too_big = record()
        answer = refused(beacon, too_big)
        if answer is not None:
            return answer
        return Response(GIF, status=200, mimetype="image/gif", headers={**_CORS, **_NO_STORE})

    @app.route("/cli", methods=["POST"], **_RECORDED)
    @app.route("/superplate", methods=["POST"], **_RECORDED)
    @app.route("/send", methods=["POST"], **_RECORDED)
    def accepted() -> Response:
        beacon, too_big = record()
        return refused(beacon, too_big) or _json({"ok": True}, headers=_CORS)

    @app.route("/projects", methods=["POST"], **_RECORDED)
    def projects() -> Response:
        beacon, too_big = record()
        answer = refused(beacon, too_big)
        if answer is not None:
            return answer
        project_id = str(uuid.uuid4())
        return _json({"projectId": project_id}, headers=_CORS)

    @app.route("/location", methods=["GET"], **_RECORDED)
    def location() -> Response:
        beacon, too_big = record()
        return refused(beacon, too_big) or _json({"country": country}, headers=_CORS)

    # -- journal API ------------------------------------------------------

    @app.get(f"{API}/health")
    def health() -> Response:
        return _json({"status": "ok", "version": __version__, "session": store.session,
                      "database": store.path, "time": iso_utc(utc_now())})

    @app.get(f"{API}/beacons")
    def list_beacons() -> Response:
        beacons = store.query(
            kind=_choice_arg("kind", KINDS),
            status=_choice_arg("status", STATUSES),
            since=_int_arg("since", None, 0),
            limit=_int_arg("limit", 1000, 1, MAX_LIST),
        )
        return _json({"beacons": [b.to_dict() for b in beacons]})

    @app.get(f"{API}/beacons/<record_id>")
    def one_beacon(record_id: str) -> Response:
        if not record_id.isdigit():
            return _error(f"record id must be a whole number, got {record_id!r}", 400)
        beacon = store.get(int(record_id))
        if beacon is None:
            return _error(f"no record #{record_id}", 404)
        return _json(beacon.to_dict())

    @app.get(f"{API}/count")
    def count() -> Response:
        return _json(store.counts())

    @app.delete(f"{API}/beacons")
    def reset() -> Response:
        return _json({"deleted": store.clear()})

    @app.get(f"{API}/wait")
    def wait() -> Response:
        target = _int_arg("count", 1, 0)
        timeout = request.args.get("timeout", "10")
        try:
            seconds = float(timeout)
        except ValueError:
            raise _BadArgument(f"timeout must be a number of seconds, got {timeout!r}") from None
        if not 0 <= seconds <= MAX_WAIT:
            raise _BadArgument(f"timeout must be between 0 and {MAX_WAIT:g} seconds")
        reached, current = store.wait_for_count(
            target or 0, seconds, kind=_choice_arg("kind", KINDS), status=_choice_arg("status", STATUSES),
            cancel=shutdown,
        )
        return _json({"reached": reached, "count": current, "wanted": target}, 200 if reached else 408)

    @app.get(f"{API}/events")
    def events() -> Response:
        since = _int_arg("since", None, 0)
        last_event = request.headers.get("Last-Event-ID", "")
        if since is None:
            since = int(last_event) if last_event.isdigit() else store.last_id()
        return Response(_event_stream(store, since, shutdown), mimetype="text/event-stream",
                        headers={**_NO_STORE, "X-Accel-Buffering": "no"})

    @app.route(f"{API}/<path:rest>", methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
    def api_not_found(rest: str) -> Response:
        return _error(f"no journal endpoint {request.method} {API}/{rest}", 404)

    # -- everything else is recorded, never hidden ------------------------

    @app.route("/", defaults={"path": ""}, methods=["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"])
    @app.route("/<path:path>", methods=["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"])
    def anything_else(path: str) -> Response:
        beacon, too_big = record()
        if too_big:
            return refused(beacon, too_big)  # type: ignore[return-value]
        if request.method == "OPTIONS":  # a CORS preflight: allow it, but it is on the record
            return Response(status=204, headers={**_CORS, "Access-Control-Allow-Methods": "GET, POST",
                                                 "Access-Control-Allow-Headers": "*"})
        return Response("\n".join(beacon.problems) + "\n", status=404, mimetype="text/plain", headers=_CORS)

    @app.errorhandler(_BadArgument)
    def bad_argument(exc: _BadArgument) -> Response:
        return _error(str(exc), 400)

    @app.errorhandler(StoreError)
    def store_failed(exc: StoreError) -> Response:
        log.error("%s", exc)
        return _error(f"not recorded: {exc}", 503)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Response:
        if isinstance(exc, HTTPException) and (exc.code or 500) < 500:
            return exc.get_response()
        # Never a 500: say what happened; the request itself is already kept
        # or, if recording failed, the message says so.
        log.exception("unexpected error handling %s %s", request.method, request.path)
        return _error(f"inspector error: {type(exc).__name__}: {exc}", 400)

    return app


def _event_stream(store: BeaconStore, since: int, shutdown: threading.Event) -> Iterator[str]:
    """Server-sent events: one ``beacon`` event per new record, ids as event ids.

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
        while not shutdown.is_set():
            for beacon in store.query(since=last, limit=500):
                last = beacon.id or last
                yield f"id: {beacon.id}\nevent: beacon\ndata: {beacon.to_json()}\n\n"
            if store.last_id() > last:
                continue
            waited = 0.0
            while not changed.wait(0.5) and not shutdown.is_set():
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
