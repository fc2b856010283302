"""The Flask app: telemetry.refine.dev's endpoints and the ``/__inspector/`` journal API.

Handlers do the minimum on the hot path: read the request (capped), hand it
to the :class:`Recorder` (which commits), answer. Nothing a client sends can
produce a 500: an unexpected failure is itself recorded and answered 400.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as WsgiResponse
from werkzeug.wsgi import get_content_length, get_input_stream

from mockserver import __version__
from mockserver.core.beacon import KINDS, STATUSES
from mockserver.core.capture import MAX_BODY, RawRequest, iso_utc, oversize_status, utc_now
from mockserver.core.config import REFINE_HOST
from mockserver.core.jsontext import dumps_strict
from mockserver.serving.access import JournalGuard
from mockserver.serving.egress import PROXIED
from mockserver.serving.probe import NONCE, PROBE_PATH, ProbeLog
from mockserver.storage.recorder import Recorder
from mockserver.storage.store import BeaconStore, StoreError, StoreEvent

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
# The journal answers OPTIONS like any other unknown method: its JSON 404.
_JOURNAL = {"provide_automatic_options": False}
_CORS = {"Access-Control-Allow-Origin": "*"}  # refine's endpoints only: never on the journal API
_NO_STORE = {"Cache-Control": "no-store"}


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = dumps_strict(data)  # strict JSON that always encodes as UTF-8
    return Response(body, status=status, mimetype="application/json", headers={**_NO_STORE, **(headers or {})})


def _error(message: str, status: int) -> Response:
    return _json({"error": message}, status)


class MalformedBody(ValueError):
    """Raised by a request body stream whose framing is broken; ``received`` is what arrived before."""

    def __init__(self, problem: str, received: bytes = b"") -> None:
        super().__init__(problem)
        self.received = received


def framing_problem(content_length: str | None, transfer_encoding: str | None) -> str | None:
    """What is wrong with how a request's headers say where its body ends, or None.

    The server (which must then read no body it cannot delimit) and the app
    (which records it) both ask this, with the header values as they were sent.
    """
    if transfer_encoding is not None and transfer_encoding.strip():
        codings = [coding.strip().lower() for coding in transfer_encoding.split(",") if coding.strip()]
        if codings != ["chunked"]:
            return f"unsupported Transfer-Encoding {transfer_encoding!r} (only chunked is read)"
        if content_length is not None:
            return "both Content-Length and Transfer-Encoding: chunked"
        return None
    if content_length is not None and not (content_length.isascii() and content_length.isdigit()):
        return f"invalid Content-Length {content_length[:40]!r}"
    return None


def _read_body(environ: dict[str, Any]) -> tuple[bytes, int | None, str | None]:
    """The body (at most MAX_BODY + 1 bytes), its announced size when larger, and how its framing broke.

    A broken body is kept as far as it arrived, and the request is recorded as
    invalid with the problem, never answered by the server's own 500.
    """
    problem = framing_problem(environ.get("CONTENT_LENGTH"), environ.get("HTTP_TRANSFER_ENCODING"))
    length = None if problem else get_content_length(environ)
    try:
        data = get_input_stream(environ, max_content_length=None).read(MAX_BODY + 1)
    except MalformedBody as exc:
        data, problem = exc.received, "; ".join(filter(None, (problem, str(exc))))
    except (OSError, ValueError, HTTPException) as exc:  # a timeout, a reset, another server's stream
        data, problem = b"", "; ".join(filter(None, (problem, f"the connection failed while it was read ({exc})")))
    if problem is None and length is not None and len(data) < min(length, MAX_BODY + 1):
        problem = f"Content-Length {length} but the connection closed after {len(data)} bytes"
    if problem is None and length is not None and length > len(data):
        return data, length, None
    return data, None if len(data) <= MAX_BODY else len(data), problem and f"malformed request body: {problem}"


def _raw_request() -> RawRequest:
    environ = request.environ
    body, announced, problem = _read_body(environ)
    return RawRequest(
        method=request.method,
        path=request.path,
        query=environ.get("QUERY_STRING", ""),
        headers=dict(request.headers),
        body=body,
        body_size=announced,
        scheme=environ.get("wsgi.url_scheme", "http"),
        peer=request.remote_addr,
        problem=problem,
        via_proxy=PROXIED.lookup(environ),
    )


_NOT_HEADERS = frozenset(("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"))
_CONTENT_KEYS = {"CONTENT_TYPE": "Content-Type", "CONTENT_LENGTH": "Content-Length"}
_HEADER_NAMES: dict[str, str] = {}  # environ key -> header name, e.g. HTTP_USER_AGENT -> User-Agent


def _raw_request_from_environ(environ: dict[str, Any]) -> RawRequest | None:
    """What :func:`_raw_request` builds, straight from the WSGI environ (no Flask request).

    Headers are named exactly as ``dict(werkzeug.EnvironHeaders(environ))`` names
    them; an environ whose header keys would not round-trip that way (never made by
    cheroot or werkzeug) gives None, and the request goes through Flask instead.
    Nothing has been read from the body when None is returned.
    """
    headers: dict[str, str] = {}
    names = _HEADER_NAMES
    for key, value in environ.items():
        name = names.get(key)
        if name is None:
            if key[:5] != "HTTP_" or key in _NOT_HEADERS:
                if key in _CONTENT_KEYS and value:
                    headers[_CONTENT_KEYS[key]] = value
                continue
            name = key[5:].replace("_", "-").title()
            if name.upper().replace("-", "_") != key[5:]:
                return None
            if len(names) < 1000:  # a handful in practice; bounded against header-name floods
                names[key] = name
        headers[name] = value
    body, announced, problem = _read_body(environ)
    return RawRequest(
        method=environ["REQUEST_METHOD"],
        path=environ["PATH_INFO"],
        query=environ.get("QUERY_STRING", ""),
        headers=headers,
        body=body,
        body_size=announced,
        scheme=environ.get("wsgi.url_scheme", "http"),
        peer=environ.get("REMOTE_ADDR"),
        problem=problem,
        via_proxy=PROXIED.lookup(environ),
    )


class BeaconFastPath:
    """WSGI middleware in front of Flask for refine's recorded endpoints.

    Profiling ``serve`` under load (py-spy, see the README's Benchmarks) showed
    Flask's per-request machinery (request context, URL matching, Response
    objects) costing about as much as decoding and enriching the beacon. For the
    exact method and path of each refine endpoint this builds the same
    :class:`RawRequest`, calls the same answer function the Flask view calls and
    writes the same status, headers and body. Everything else (the journal API,
    unknown paths, HEAD/OPTIONS, a ``SCRIPT_NAME`` mount, an app with request
    hooks) goes to Flask unchanged. ``inner`` is the Flask WSGI app behind it.
    """

    def __init__(self, app: Flask, routes: dict[tuple[str, str], Any], on_error: Any) -> None:
        self.app = app
        self.inner = app.wsgi_app
        self.routes = routes
        self.on_error = on_error

    def _hooked(self) -> bool:
        app = self.app
        return any(any(funcs.values()) for funcs in (
            app.before_request_funcs, app.after_request_funcs, app.teardown_request_funcs,
            app.url_value_preprocessors)) or bool(app.teardown_appcontext_funcs)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        answer = self.routes.get((environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "")))
        if answer is None or environ.get("SCRIPT_NAME") or self._hooked():
            return self.inner(environ, start_response)
        try:  # reading the request too: nothing a client sends may reach the server's own 500
            raw = _raw_request_from_environ(environ)
            if raw is None:
                return self.inner(environ, start_response)
            response = answer(raw)
        except Exception as exc:  # noqa: BLE001 - the same answers Flask's error handlers give
            response = self.on_error(exc, environ.get("REQUEST_METHOD", ""), environ.get("PATH_INFO", ""))
        if isinstance(response, _Constant):
            start_response(response.status, list(response.headers))
            return [response.body]
        return response(environ, start_response)


_LARGEST_ID = 2**63 - 1  # SQLite's largest integer


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
    if value > _LARGEST_ID:  # SQLite cannot even compare with it
        raise _BadArgument(f"{name} must be at most {_LARGEST_ID}")
    return value


def _choice_arg(name: str, choices: tuple[str, ...]) -> str | None:
    value = request.args.get(name) or None
    if value is not None and value not in choices:
        raise _BadArgument(f"{name} must be one of {', '.join(choices)}; got {value!r}")
    return value


class _BadArgument(ValueError):
    pass


_ANY_METHOD = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]
_DELETE_BY = ("kind", "status", "session", "ids")


def _deletion() -> dict[str, Any]:
    """What ``DELETE /beacons`` was asked to delete: {} for everything; a bad or unknown argument is a 400."""
    unknown = sorted(set(request.args) - set(_DELETE_BY))
    if unknown:
        raise _BadArgument(f"DELETE {API}/beacons takes only {', '.join(_DELETE_BY)}; got {', '.join(unknown)}")
    for name in request.args:
        values = request.args.getlist(name)
        if len(values) != 1 or not values[0].strip():
            raise _BadArgument(f"{name} must be given once, with a value")
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
    if not (text.isascii() and text.isdigit()) or int(text) > _LARGEST_ID:
        raise _BadArgument(f"{name} must be comma-separated record ids, got {raw!r}")
    return int(text)


def create_app(store: BeaconStore, *, trust_proxy: bool = False, country: str = "XX",
               recorder: Recorder | None = None, journal_token: str | None = None) -> Flask:
    """The WSGI app serving refine's endpoints and the journal API over ``store``.

    The journal answers only this machine's programs (see :mod:`mockserver.serving.access`);
    with ``journal_token`` (a server listening beyond loopback) only requests that
    carry it as ``Authorization: Bearer``.
    """
    app = Flask("mockserver")
    app.config["MAX_CONTENT_LENGTH"] = None  # we cap ourselves, and record what was cut
    recorder = recorder or Recorder(store, trust_proxy=trust_proxy)
    app.extensions["recorder"] = recorder
    # Set when the server stops: long polls and event streams end at once
    # instead of holding a worker thread until their timeout.
    shutdown = app.extensions["shutdown"] = threading.Event()
    probes = app.extensions["probes"] = ProbeLog()  # route probes: answered, never recorded

    def record(raw: RawRequest) -> tuple[Any, int]:
        """Record a request; returns (record, HTTP status for a cut request)."""
        return recorder.record(raw), oversize_status(raw)

    def refused(beacon: Any, too_big: int) -> Response | None:
        if too_big:
            headers = {**_CORS, "Connection": "close"}
            return Response(beacon.problems[0] + "\n", status=too_big, mimetype="text/plain", headers=headers)
        if beacon.status == "invalid":
            text = "\n".join(beacon.problems) + "\n"
            return Response(text, status=400, mimetype="text/plain", headers={**_CORS, **_NO_STORE})
        return None

    # The refine endpoints: each answer function takes the raw request and
    # returns a Response, or a _Constant (the same bytes every time, which the
    # fast path writes without building a Response). Flask's views and
    # BeaconFastPath both call these, so the two cannot answer differently.
    gif = _Constant.of(lambda: Response(GIF, status=200, mimetype="image/gif", headers={**_CORS, **_NO_STORE}))
    ok = _Constant.of(lambda: _json({"ok": True}, headers=_CORS))
    where = _Constant.of(lambda: _json({"country": country}, headers=_CORS))

    def telemetry_answer(raw: RawRequest) -> Response | _Constant:
        beacon, too_big = record(raw)
        answer = refused(beacon, too_big)
        if answer is not None:
            return answer
        return gif

    def accepted_answer(raw: RawRequest) -> Response | _Constant:
        beacon, too_big = record(raw)
        return refused(beacon, too_big) or ok

    def projects_answer(raw: RawRequest) -> Response | _Constant:
        beacon, too_big = record(raw)
        answer = refused(beacon, too_big)
        if answer is not None:
            return answer
        project_id = str(uuid.uuid4())
        return _json({"projectId": project_id}, headers=_CORS)

    def location_answer(raw: RawRequest) -> Response | _Constant:
        beacon, too_big = record(raw)
        return refused(beacon, too_big) or where

    @app.route("/telemetry", methods=["GET", "POST"], **_RECORDED)
    def telemetry() -> Response:
        return _response(telemetry_answer(_raw_request()))

    @app.route("/cli", methods=["POST"], **_RECORDED)
    @app.route("/superplate", methods=["POST"], **_RECORDED)
    @app.route("/send", methods=["POST"], **_RECORDED)
    def accepted() -> Response:
        return _response(accepted_answer(_raw_request()))

    @app.route("/projects", methods=["POST"], **_RECORDED)
    def projects() -> Response:
        return _response(projects_answer(_raw_request()))

    @app.route("/location", methods=["GET"], **_RECORDED)
    def location() -> Response:
        return _response(location_answer(_raw_request()))

    fast_routes = {("/telemetry", "GET"): telemetry_answer, ("/telemetry", "POST"): telemetry_answer,
                   ("/cli", "POST"): accepted_answer, ("/superplate", "POST"): accepted_answer,
                   ("/send", "POST"): accepted_answer, ("/projects", "POST"): projects_answer,
                   ("/location", "GET"): location_answer}

    # -- journal API ------------------------------------------------------

    @app.get(f"{API}/health", **_JOURNAL)
    def health() -> Response:
        health = {"status": "ok", "version": __version__, "session": store.session,
                  "database": store.path, "time": iso_utc(utc_now())}
        # Set by InspectorServer once bound: lets `verify --server` find the
        # HTTPS side and its pin whatever ports were chosen.
        listening = app.extensions.get("listening")
        if listening is not None:
            health.update(http_url=listening.http_url, https_url=listening.https_url,
                          https_port=listening.https_port, spki_pin=listening.spki_pin,
                          proxy_url=listening.proxy_url)
        return _json(health)

    @app.get(f"{API}/beacons", **_JOURNAL)
    def list_beacons() -> Response:
        beacons = store.query(
            kind=_choice_arg("kind", KINDS),
            status=_choice_arg("status", STATUSES),
            since=_int_arg("since", None, 0),
            limit=_int_arg("limit", 1000, 1, MAX_LIST),
        )
        return _json({"beacons": [b.to_dict() for b in beacons]})

    @app.get(f"{API}/beacons/<record_id>", **_JOURNAL)
    def one_beacon(record_id: str) -> Response:
        if not (record_id.isascii() and record_id.isdigit()):
            return _error(f"record id must be a whole number, got {record_id!r}", 400)
        beacon = store.get(int(record_id)) if int(record_id) <= _LARGEST_ID else None
        if beacon is None:
            return _error(f"no record #{record_id}", 404)
        return _json(beacon.to_dict())

    @app.get(f"{API}/count", **_JOURNAL)
    def count() -> Response:
        return _json(store.counts())

    @app.delete(f"{API}/beacons", **_JOURNAL)
    def delete_beacons() -> Response:
        selection = _deletion()
        if not selection:
            return _json({"deleted": store.clear()})
        return _json({"deleted": len(store.delete_where(**selection))})

    @app.get(f"{API}/wait", **_JOURNAL)
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

    @app.get(f"{API}/events", **_JOURNAL)
    def events() -> Response:
        since = _int_arg("since", None, 0)
        last_event = request.headers.get("Last-Event-ID", "")
        if since is None:
            since = int(last_event) if last_event.isdigit() else store.last_id()
        return Response(_event_stream(store, since, shutdown), mimetype="text/event-stream",
                        headers={**_NO_STORE, "X-Accel-Buffering": "no"})

    @app.get(f"{API}/probes/<nonce>")
    def probe_seen(nonce: str) -> Response:
        if not NONCE.fullmatch(nonce):
            return _error(f"a probe nonce is 32 hex digits, got {nonce[:40]!r}", 400)
        timeout = _int_arg("timeout", 0, 0, 30) or 0  # a short long-poll for a remote prover
        return _json({"nonce": nonce, "seen": probes.wait(nonce, timeout, cancel=shutdown)})

    # Journal paths are never telemetry: whatever the method, an unknown one is the API's 404.
    @app.route(API, defaults={"rest": None}, methods=_ANY_METHOD, **_JOURNAL)
    @app.route(f"{API}/", defaults={"rest": ""}, methods=_ANY_METHOD, **_JOURNAL)
    @app.route(f"{API}/<path:rest>", methods=_ANY_METHOD, **_JOURNAL)
    def api_not_found(rest: str | None) -> Response:
        path = API if rest is None else f"{API}/{rest}"
        return _error(f"no journal endpoint {request.method} {path}", 404)

    # -- everything else is recorded, never hidden ------------------------

    @app.route("/", defaults={"path": ""}, methods=["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"])
    @app.route("/<path:path>", methods=["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"])
    def anything_else(path: str) -> Response:
        raw = _raw_request()
        beacon, too_big = record(raw)
        if too_big or raw.problem:  # cut, or its framing broken: 413/414 or 400, not a 404
            return refused(beacon, too_big)  # type: ignore[return-value]  # cut or misframed: always refused
        if request.method == "OPTIONS":  # a CORS preflight: allow it, but it is on the record
            return Response(status=204, headers={**_CORS, "Access-Control-Allow-Methods": "GET, POST",
                                                 "Access-Control-Allow-Headers": "*"})
        return Response("\n".join(beacon.problems) + "\n", status=404, mimetype="text/plain", headers=_CORS)

    @app.get(f"{PROBE_PATH}/<name>", **_RECORDED)
    def route_probe(name: str) -> Response:
        nonce = name.removesuffix(".gif")
        # Only what came the routed way (HTTPS, for telemetry.refine.dev) proves the route.
        routed = request.scheme == "https" and request.host.rsplit(":", 1)[0].lower() == REFINE_HOST
        if not (routed and name.endswith(".gif") and NONCE.fullmatch(nonce)):
            return anything_else(request.path.lstrip("/"))  # not our probe: on the record like the rest
        probes.saw(nonce)
        return Response(GIF, status=200, mimetype="image/gif", headers={**_CORS, **_NO_STORE})

    @app.errorhandler(_BadArgument)
    def bad_argument(exc: _BadArgument) -> Response:
        return _error(str(exc), 400)

    @app.errorhandler(StoreError)
    def store_failed(exc: StoreError) -> Response:
        return _store_failed(exc)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> WsgiResponse:
        return _unexpected(exc, request.method, request.path)

    # Flask's documented way to add WSGI middleware (mypy sees wsgi_app as a method):
    app.wsgi_app = JournalGuard(app.wsgi_app, journal_token)  # type: ignore[method-assign]
    app.wsgi_app = BeaconFastPath(app, fast_routes, _answer_error)  # type: ignore[method-assign]
    return app


def _store_failed(exc: StoreError) -> Response:
    log.error("%s", exc)
    return _error(f"not recorded: {exc}", 503)


def _unexpected(exc: Exception, method: str, path: str) -> WsgiResponse:
    if isinstance(exc, HTTPException) and (exc.code or 500) < 500:
        return exc.get_response()
    # Never a 500: say what happened; the request itself is already kept
    # or, if recording failed, the message says so.
    log.exception("unexpected error handling %s %s", method, path)
    return _error(f"inspector error: {type(exc).__name__}: {exc}", 400)


def _answer_error(exc: Exception, method: str, path: str) -> WsgiResponse:
    """What Flask's error handlers answer for an exception out of a recorded endpoint."""
    if isinstance(exc, StoreError):
        return _store_failed(exc)
    if isinstance(exc, _BadArgument):
        return _error(str(exc), 400)
    return _unexpected(exc, method, path)


class _Constant:
    """An answer that is the same bytes every time, kept with the Response that makes it.

    Flask's views return ``make()``; the fast path writes ``status``,
    ``headers`` and ``body`` (taken from such a Response once) directly.
    """

    __slots__ = ("make", "status", "headers", "body")

    def __init__(self, make: Callable[[], Response]) -> None:
        sample = make()
        self.make = make
        self.status: str = sample.status
        self.headers: tuple[tuple[str, str], ...] = tuple(sample.headers.to_wsgi_list())
        self.body: bytes = sample.get_data()

    @classmethod
    def of(cls, make: Callable[[], Response]) -> _Constant:
        return cls(make)


def _response(answer: Response | _Constant) -> Response:
    return answer.make() if isinstance(answer, _Constant) else answer


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
