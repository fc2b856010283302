"""telemetry.refine.dev's endpoints: reading a request, recording it, answering as refine's server does.

Handlers do the minimum on the hot path: read the request (capped), hand it
to the :class:`Recorder` (which commits), answer. :class:`RefineEndpoints`
holds one answer function per endpoint; the Flask views and
:class:`BeaconFastPath` (which skips Flask for those exact routes) both call
them, so the two cannot answer differently. Every other path is recorded too
and answered 404; the route probe is answered, never recorded.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException
from werkzeug.wsgi import get_content_length, get_input_stream

from mockserver.core.beacon import Beacon
from mockserver.core.capture import MAX_BODY, RawRequest, oversize_status
from mockserver.core.config import REFINE_HOST
from mockserver.core.wire import GIF
from mockserver.serving.egress import PROXIED
from mockserver.serving.probe import NONCE, PROBE_PATH, ProbeLog
from mockserver.serving.responses import CORS, NO_STORE, json_response
from mockserver.storage.recorder import Recorder

# Flask answers OPTIONS by itself unless told not to: preflights must reach
# the catch-all so they are recorded like everything else.
_RECORDED = {"provide_automatic_options": False}
_ANY_METHOD = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]


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
        arrived_at=_arrival(environ),
    )


def _arrival(environ: dict[str, Any]) -> datetime | None:
    """When the server's bridge had the request's head (recorded as its time), if it says."""
    arrival = environ.get("mockserver.arrival")
    return arrival if isinstance(arrival, datetime) else None


_NOT_HEADERS = frozenset(("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"))
_CONTENT_KEYS = {"CONTENT_TYPE": "Content-Type", "CONTENT_LENGTH": "Content-Length"}
_HEADER_NAMES: dict[str, str] = {}  # environ key -> header name, e.g. HTTP_USER_AGENT -> User-Agent


def _raw_request_from_environ(environ: dict[str, Any]) -> RawRequest | None:
    """What :func:`_raw_request` builds, straight from the WSGI environ (no Flask request).

    Headers are named exactly as ``dict(werkzeug.EnvironHeaders(environ))`` names
    them; an environ whose header keys would not round-trip that way (never made by
    the server's bridge or werkzeug) gives None, and the request goes through Flask instead.
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
        arrived_at=_arrival(environ),
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

    def __init__(self, app: Flask, refine: RefineEndpoints, on_error: Callable[[Exception, str, str], Any]) -> None:
        self.app = app
        self.inner = app.wsgi_app
        self.refine = refine
        self.routes = refine.fast_routes
        self.on_error = on_error

    def _hooked(self) -> bool:
        app = self.app
        return any(any(funcs.values()) for funcs in (
            app.before_request_funcs, app.after_request_funcs, app.teardown_request_funcs,
            app.url_value_preprocessors)) or bool(app.teardown_appcontext_funcs)

    def submit(self, environ: dict[str, Any], then: Callable[[Any], None]) -> bool:
        """Answer ``environ`` without a thread waiting for it, when it is one of refine's endpoints.

        The request is read (its body is already in ``wsgi.input``), decoded and handed to the store's
        group commit; ``then(answer)`` runs once it is committed, on the store's committer thread, with
        what :meth:`__call__` would have answered as a WSGI app (a Response, or a :class:`_Constant`).
        False, with nothing read, when the request is not taken here: call this middleware instead.
        """
        path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "")
        reply = self.refine.replies.get((path, method))
        if reply is None or environ.get("SCRIPT_NAME") or self._hooked():
            return False

        def answered(result: Response | _Constant | Exception) -> None:
            then(self.on_error(result, method, path) if isinstance(result, Exception) else result)

        try:
            raw = _raw_request_from_environ(environ)
            if raw is None:
                return False
            self.refine.submit(raw, reply, answered)
        except Exception as exc:  # noqa: BLE001 - the same answers Flask's error handlers give
            then(self.on_error(exc, method, path))
        return True

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
        return response(environ, start_response)


Reply = Callable[[Beacon, int], "Response | _Constant"]  # a recorded request (and its cut status) → the answer


class RefineEndpoints:
    """refine's endpoints over ``recorder``: each answer takes the raw request and returns a Response,
    or a :class:`_Constant` (the same bytes every time, which the fast path writes without building a
    Response). ``country`` is what ``/location`` says."""

    def __init__(self, recorder: Recorder, country: str, probes: ProbeLog) -> None:
        self.recorder = recorder
        self.probes = probes
        self.gif = _Constant.of(lambda: Response(GIF, status=200, mimetype="image/gif", headers={**CORS, **NO_STORE}))
        self.ok = _Constant.of(lambda: json_response({"ok": True}, headers=CORS))
        self.where = _Constant.of(lambda: json_response({"country": country}, headers=CORS))
        # The exact (path, method) pairs BeaconFastPath answers without Flask, and how each is answered
        # once recorded.
        self.replies: dict[tuple[str, str], Reply] = {
            ("/telemetry", "GET"): self.gif_reply, ("/telemetry", "POST"): self.gif_reply,
            ("/cli", "POST"): self.ok_reply, ("/superplate", "POST"): self.ok_reply,
            ("/send", "POST"): self.ok_reply, ("/projects", "POST"): self.project_reply,
            ("/location", "GET"): self.where_reply}
        self.fast_routes: dict[tuple[str, str], Callable[[RawRequest], Response | _Constant]] = {
            route: functools.partial(self.answer, reply) for route, reply in self.replies.items()}

    def record(self, raw: RawRequest) -> tuple[Beacon, int]:
        """Record a request; returns (record, HTTP status for a cut request)."""
        return self.recorder.record(raw), oversize_status(raw)

    def answer(self, reply: Reply, raw: RawRequest) -> Response | _Constant:
        """Record ``raw`` (waiting for the commit), then answer it with ``reply``."""
        beacon, too_big = self.record(raw)
        return reply(beacon, too_big)

    def submit(self, raw: RawRequest, reply: Reply, then: Callable[[Response | _Constant | Exception], None]) -> None:
        """Record ``raw`` without waiting; ``then(answer)`` (or ``then(error)``) runs once it is committed,
        on the store's committer thread."""
        too_big = oversize_status(raw)

        def committed(beacon: Beacon, error: BaseException | None) -> None:
            if error is not None:
                then(error if isinstance(error, Exception) else RuntimeError(str(error)))
                return
            try:
                then(reply(beacon, too_big))
            except Exception as exc:  # noqa: BLE001 - answered as Flask's error handlers would
                then(exc)

        self.recorder.submit(raw, committed)

    @staticmethod
    def refused(beacon: Beacon, too_big: int) -> Response | None:
        """The answer to a cut (413/414) or invalid (400) request, or None when it is to be accepted."""
        if too_big:
            headers = {**CORS, "Connection": "close"}
            return Response(beacon.problems[0] + "\n", status=too_big, mimetype="text/plain", headers=headers)
        if beacon.status == "invalid":
            text = "\n".join(beacon.problems) + "\n"
            return Response(text, status=400, mimetype="text/plain", headers={**CORS, **NO_STORE})
        return None

    def gif_reply(self, beacon: Beacon, too_big: int) -> Response | _Constant:
        """``/telemetry``: the browser beacon, answered with the GIF."""
        return self.refused(beacon, too_big) or self.gif

    def ok_reply(self, beacon: Beacon, too_big: int) -> Response | _Constant:
        """``/cli``, ``/superplate``, ``/send``: ``{"ok": true}``."""
        return self.refused(beacon, too_big) or self.ok

    def project_reply(self, beacon: Beacon, too_big: int) -> Response | _Constant:
        """``/projects``: a fresh projectId."""
        answer = self.refused(beacon, too_big)
        if answer is not None:
            return answer
        return json_response({"projectId": str(uuid.uuid4())}, headers=CORS)

    def where_reply(self, beacon: Beacon, too_big: int) -> Response | _Constant:
        """``/location``: the configured country."""
        return self.refused(beacon, too_big) or self.where

    def add_routes(self, app: Flask) -> None:
        """The Flask views of refine's endpoints (what the fast path does not take)."""

        @app.route("/telemetry", methods=["GET", "POST"], **_RECORDED)
        def telemetry() -> Response:
            return _response(self.answer(self.gif_reply, _raw_request()))

        @app.route("/cli", methods=["POST"], **_RECORDED)
        @app.route("/superplate", methods=["POST"], **_RECORDED)
        @app.route("/send", methods=["POST"], **_RECORDED)
        def accepted() -> Response:
            return _response(self.answer(self.ok_reply, _raw_request()))

        @app.route("/projects", methods=["POST"], **_RECORDED)
        def projects() -> Response:
            return _response(self.answer(self.project_reply, _raw_request()))

        @app.route("/location", methods=["GET"], **_RECORDED)
        def location() -> Response:
            return _response(self.answer(self.where_reply, _raw_request()))

    def add_fallback_routes(self, app: Flask) -> None:
        """Everything else, recorded and never hidden; and the route probe, answered but not recorded."""

        @app.route("/", defaults={"path": ""}, methods=_ANY_METHOD)
        @app.route("/<path:path>", methods=_ANY_METHOD)
        def anything_else(path: str) -> Response:
            raw = _raw_request()
            beacon, too_big = self.record(raw)
            if too_big or raw.problem:  # cut, or its framing broken: 413/414 or 400, not a 404
                return self.refused(beacon, too_big)  # type: ignore[return-value]  # cut or misframed: always refused
            if request.method == "OPTIONS":  # a CORS preflight: allow it, but it is on the record
                return Response(status=204, headers={**CORS, "Access-Control-Allow-Methods": "GET, POST",
                                                     "Access-Control-Allow-Headers": "*"})
            return Response("\n".join(beacon.problems) + "\n", status=404, mimetype="text/plain", headers=CORS)

        @app.get(f"{PROBE_PATH}/<name>", **_RECORDED)
        def route_probe(name: str) -> Response:
            nonce = name.removesuffix(".gif")
            # Only what came the routed way (HTTPS, for telemetry.refine.dev) proves the route.
            routed = request.scheme == "https" and request.host.rsplit(":", 1)[0].lower() == REFINE_HOST
            if not (routed and name.endswith(".gif") and NONCE.fullmatch(nonce)):
                return anything_else(request.path.lstrip("/"))  # not our probe: on the record like the rest
            self.probes.saw(nonce)
            return Response(GIF, status=200, mimetype="image/gif", headers={**CORS, **NO_STORE})


class _Constant:
    """An answer that is the same bytes every time, kept with the Response that makes it.

    Flask's views return ``make()``; the fast path calls it as a WSGI app, which writes ``status``,
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

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        """As a WSGI app: the same bytes, without building a Response."""
        start_response(self.status, list(self.headers))
        return [self.body]


def _response(answer: Response | _Constant) -> Response:
    return answer.make() if isinstance(answer, _Constant) else answer
