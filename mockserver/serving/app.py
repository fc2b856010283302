"""The Flask app: refine's endpoints and the journal API put together, with the errors both answer.

Nothing a client sends can produce a 500: an unexpected failure is itself
recorded and answered 400. In front of Flask sit the :class:`JournalGuard`
(who may read the journal) and the :class:`BeaconFastPath` (refine's exact
routes without Flask's per-request work).
"""

from __future__ import annotations

import logging
import threading

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as WsgiResponse

from mockserver.serving.access import JournalGuard
from mockserver.serving.endpoints import BeaconFastPath, RefineEndpoints
from mockserver.serving.journal import BadArgument, journal_blueprint
from mockserver.serving.probe import ProbeLog
from mockserver.serving.responses import error_response
from mockserver.storage.recorder import Recorder
from mockserver.storage.store import BeaconStore, StoreError

log = logging.getLogger(__name__)


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

    refine = RefineEndpoints(recorder, country, probes)
    app.extensions["fast_routes"] = frozenset(refine.fast_routes)  # (path, method): the server's beacon threads
    refine.add_routes(app)
    app.register_blueprint(journal_blueprint(store, shutdown, probes))
    refine.add_fallback_routes(app)

    @app.errorhandler(BadArgument)
    def bad_argument(exc: BadArgument) -> Response:
        return error_response(str(exc), 400)

    @app.errorhandler(StoreError)
    def store_failed(exc: StoreError) -> Response:
        return _store_failed(exc)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> WsgiResponse:
        return _unexpected(exc, request.method, request.path)

    # Flask's documented way to add WSGI middleware (mypy sees wsgi_app as a method):
    app.wsgi_app = JournalGuard(app.wsgi_app, journal_token)  # type: ignore[method-assign]
    fast_path = BeaconFastPath(app, refine, _answer_error)
    app.wsgi_app = fast_path  # type: ignore[method-assign]
    # refine's endpoints answered with no thread waiting on each (the server's event loop calls it)
    app.extensions["submit_beacon"] = fast_path.submit
    return app


def _store_failed(exc: StoreError) -> Response:
    log.error("%s", exc)
    return error_response(f"not recorded: {exc}", 503)


def _unexpected(exc: Exception, method: str, path: str) -> WsgiResponse:
    if isinstance(exc, HTTPException) and (exc.code or 500) < 500:
        return exc.get_response()
    # Never a 500: say what happened; the request itself is already kept
    # or, if recording failed, the message says so.
    # exc_info given: an error from the store's committer thread reaches here outside an except block
    log.error("unexpected error handling %s %s", method, path, exc_info=exc)
    return error_response(f"inspector error: {type(exc).__name__}: {exc}", 400)


def _answer_error(exc: Exception, method: str, path: str) -> WsgiResponse:
    """What Flask's error handlers answer for an exception out of a recorded endpoint."""
    if isinstance(exc, StoreError):
        return _store_failed(exc)
    if isinstance(exc, BadArgument):
        return error_response(str(exc), 400)
    return _unexpected(exc, method, path)
