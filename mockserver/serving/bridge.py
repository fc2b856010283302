"""The ASGI app granian runs: the request read on the event loop, the WSGI app (Flask) run on our own threads.

* **The body is read on the loop**, with a deadline (:data:`BODY_DEADLINE`) and a cap
  (:data:`~mockserver.core.capture.MAX_BODY` + 1 bytes): a client trickling its body holds
  no thread. A body that stops before its end is handed to the app as far as it arrived,
  so the request is recorded as invalid with what was wrong (see :class:`_BrokenBody`).
* **refine's endpoints hold no thread**: the app's ``submit`` decodes the request on the loop and
  hands it to the store's group commit; the committer hands the answer back to the loop in bursts
  (:class:`_LoopInbox`), and only then is it sent.
* **Two pools of threads** (granian's embedded server allows its ASGI apps one blocking thread,
  its own): refine's endpoints run on one when the app does not take them that way (an app with
  request hooks), everything else (the journal API, unknown paths) on the other, so long polls and
  event streams can never take a beacon's thread.
* **Long polls and event streams are capped**, each kind at its own limit, decided on the loop
  without a thread: beyond it, 503 with ``Retry-After``. A client that disconnects sets its
  request's ``environ["mockserver.cancel"]`` (a :class:`threading.Event` the journal watches),
  and so does :meth:`WsgiBridge.stop_requests`, so they end within the journal's wait slice.
* **The answer is sent only once the app returned it**: a recorded request is committed by then
  (the Recorder's commit), so nothing is answered that is not stored.
"""

from __future__ import annotations

import asyncio
import io
import logging
import re
import threading
import urllib.parse
from collections.abc import Awaitable, Callable, Collection, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from mockserver.core.capture import MAX_BODY
from mockserver.core.clock import utc_now
from mockserver.core.jsontext import dumps_strict
from mockserver.core.wire import MAX_HEADER_BYTES, head_size
from mockserver.serving.endpoints import MalformedBody

log = logging.getLogger(__name__)

BODY_DEADLINE = 10.0  # seconds a request's body may take to arrive, whole
RETRY_AFTER = 2  # seconds, in the 503 of a long poll or stream over its cap
ANSWER_WITHIN = 60.0  # seconds a submitted request waits for its commit before it is answered with an error
SERVER_NAME = "telemetry-inspector"  # the Server header, and SERVER_NAME for a request without Host
Scope = Mapping[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
# Takes a request whose answer comes later: then(answer) is called once, from any thread, with a WSGI app
# to answer it with; False when it is not taken.
Submit = Callable[[dict[str, Any], Callable[[WsgiApp], None]], bool]
_QUOTED_SLASH = re.compile(rb"%2F", re.IGNORECASE)
_HEAD_TOO_LARGE = f"the request line and headers are over {MAX_HEADER_BYTES // 1024} KiB\n".encode()
_DONE = object()


class _BrokenBody(io.BytesIO):
    """A body that did not arrive whole: the first read raises MalformedBody with what did arrive
    (:func:`~mockserver.serving.endpoints._read_body` records it as the problem)."""

    def __init__(self, received: bytes, problem: str) -> None:
        super().__init__(received)
        self.problem = problem

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        raise MalformedBody(self.problem, data)


class WsgiBridge:
    """ASGI (granian) in front of ``app``, a WSGI app.

    ``fast_routes`` are the (path, method) pairs of refine's endpoints: their own pool of
    ``beacon_threads``. ``holding(path, method)`` names the kind of a request that waits
    (``"long poll"``, ``"event stream"``) or gives None; ``limits`` caps how many of each kind
    are open at once. Everything else shares ``other_threads``, which must exceed the caps' sum.
    """

    def __init__(self, app: WsgiApp, *, fast_routes: Collection[tuple[str, str]],
                 holding: Callable[[str, str], str | None], limits: Mapping[str, int],
                 beacon_threads: int, other_threads: int, shutdown: threading.Event,
                 body_deadline: float = BODY_DEADLINE, submit: Submit | None = None) -> None:
        self.app = app
        self.submit = submit
        self._inbox: _LoopInbox | None = None
        self.fast_routes = frozenset(fast_routes)
        self.holding = holding
        self.limits = dict(limits)
        self.body_deadline = body_deadline
        self.shutdown = shutdown  # set when the server stops: holding requests are cancelled from the start
        self.beacons = ThreadPoolExecutor(beacon_threads, thread_name_prefix="beacons")
        self.others = ThreadPoolExecutor(other_threads, thread_name_prefix="journal")
        # Touched on the loop's thread only:
        self.held = dict.fromkeys(self.limits, 0)
        self._cancels: set[threading.Event] = set()
        self._stopping: asyncio.Future[None] | None = None
        self._busy = {kind: dumps_strict({"error": f"too many {kind}s open at once (at most {limit}); "
                                                   f"try again in {RETRY_AFTER} s"}).encode()
                      for kind, limit in self.limits.items()}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if self._stopping is None:
            self._stopping = asyncio.get_running_loop().create_future()
        if _head_size(scope) > MAX_HEADER_BYTES:  # granian's own limit is looser: ours is the documented one
            await _answer(send, 431, [(b"content-type", b"text/plain; charset=utf-8"), (b"connection", b"close")],
                          _HEAD_TOO_LARGE)
            return
        kind = self.holding(scope["path"], scope["method"])
        if kind is None:
            await self._serve(scope, receive, send, None)
            return
        if self.held[kind] >= self.limits[kind]:
            await _answer(send, 503, [(b"content-type", b"application/json"), (b"cache-control", b"no-store"),
                                      (b"retry-after", str(RETRY_AFTER).encode())], self._busy[kind])
            return
        self.held[kind] += 1
        try:
            await self._serve(scope, receive, send, kind)
        finally:
            self.held[kind] -= 1

    def stop_requests(self) -> None:
        """On the loop: every body still arriving ends now (and any later), every waiting request is cancelled."""
        if self._stopping is None:
            self._stopping = asyncio.get_running_loop().create_future()
        if not self._stopping.done():
            self._stopping.set_result(None)
        for cancel in self._cancels:
            cancel.set()

    def close_pools(self) -> None:
        """Wait for the app's threads to finish (after the listeners stopped)."""
        self.beacons.shutdown(wait=True)
        self.others.shutdown(wait=True)

    async def _serve(self, scope: Scope, receive: Receive, send: Send, kind: str | None) -> None:
        arrival = utc_now()
        try:
            body = await self._read_body(scope, receive)
            cancel = threading.Event()
            environ = wsgi_environ(scope, body, cancel, arrival)
        except Exception as exc:  # noqa: BLE001 - never a 500: say what failed, in one line
            await _inspector_error(send, exc, "reading a request")
            return
        if (environ["PATH_INFO"], environ["REQUEST_METHOD"]) in self.fast_routes:
            if not await self._answer_submitted(environ, send):
                await self._run(self.beacons, environ, send, cancel)
            return
        # Everything else may wait (the journal): cancelled when the server stops, and a long poll or
        # stream also when its client leaves.
        if self.shutdown.is_set():
            cancel.set()
        self._cancels.add(cancel)
        watcher = asyncio.ensure_future(_watch_disconnect(receive, cancel)) if kind is not None else None
        try:
            await self._run(self.others, environ, send, cancel)
        finally:
            if watcher is not None:
                watcher.cancel()
            self._cancels.discard(cancel)

    async def _answer_submitted(self, environ: dict[str, Any], send: Send) -> bool:
        """Answer one of refine's endpoints with no thread waiting for it: the request is decoded here and
        committed by the store's committer, which hands the answer back (see :class:`_LoopInbox`). False
        when the app did not take it (then it runs on the beacon threads)."""
        if self.submit is None:
            return False
        loop = asyncio.get_running_loop()
        if self._inbox is None:
            self._inbox = _LoopInbox(loop)
        inbox, answered = self._inbox, loop.create_future()
        what = f"{environ['REQUEST_METHOD']} {environ['PATH_INFO']}"
        try:
            if not self.submit(environ, lambda answer: inbox.put(answered, answer)):
                return False
            # Not shielded: a client that leaves cancels only this wait; its record is committed all the same.
            # The deadline is a safety net (the store always calls back, with an answer or an error).
            try:
                answer = await asyncio.wait_for(answered, ANSWER_WITHIN)
            except TimeoutError:
                raise RuntimeError(f"the journal did not commit the request within {ANSWER_WITHIN:g} s") from None
            status, headers, whole, stream = _call_app(answer, environ)
            if stream is not None:  # refine's answers have a length; a stream would be the app's bug
                try:
                    whole = b"".join(stream)
                finally:
                    _close(stream)
        except Exception as exc:  # noqa: BLE001 - the app's own handlers answer its errors; never a 500
            await _inspector_error(send, exc, what)
            return True
        await _answer(send, status, headers, whole)
        return True

    async def _read_body(self, scope: Scope, receive: Receive) -> io.BytesIO:
        """The body as far as it arrived (at most MAX_BODY + 1 bytes), within the deadline."""
        headers = scope["headers"]
        chunked = any(name == b"transfer-encoding" for name, _ in headers)
        if not chunked and not any(name == b"content-length" for name, _ in headers):
            # No body (hyper frames a request without either header as empty): nothing to receive, which
            # saves a round trip through granian for each GET.
            return io.BytesIO(b"")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.body_deadline
        parts: list[bytes] = []
        size = 0
        while size <= MAX_BODY:
            message = await self._next(receive, deadline - loop.time())
            if message is None:
                received = b"".join(parts)
                if self._stopping is not None and self._stopping.done():
                    return _BrokenBody(received, "the inspector stopped while the body was arriving")
                return _BrokenBody(received, f"the body did not arrive within {self.body_deadline:g} s")
            if message["type"] == "http.disconnect":
                received = b"".join(parts)
                if chunked:  # hyper says no more than that the stream ended
                    return _BrokenBody(received, "the body ended before its last chunk (a malformed chunk, "
                                                 "or the connection closed; the HTTP server does not say which)")
                return io.BytesIO(received)  # short of its Content-Length: the app says so
            parts.append(message.get("body", b""))
            size += len(parts[-1])
            if not message.get("more_body", False):
                break
        return io.BytesIO(b"".join(parts))

    async def _next(self, receive: Receive, left: float) -> dict[str, Any] | None:
        """The next ASGI message, or None when ``left`` seconds pass or the server stops first."""
        assert self._stopping is not None
        pending = asyncio.ensure_future(receive())
        done, _ = await asyncio.wait((pending, self._stopping), timeout=max(left, 0.0),
                                     return_when=asyncio.FIRST_COMPLETED)
        if pending not in done:
            pending.cancel()
            return None
        return pending.result()

    async def _run(self, pool: ThreadPoolExecutor, environ: dict[str, Any], send: Send,
                   cancel: threading.Event) -> None:
        """Run the app on ``pool``; send its answer from the loop (a stream chunk by chunk)."""
        loop = asyncio.get_running_loop()
        try:
            status, headers, whole, stream = await loop.run_in_executor(pool, _call_app, self.app, environ)
        except Exception as exc:  # noqa: BLE001 - the app's own handlers answer its errors; never a 500
            await _inspector_error(send, exc, f"{environ['REQUEST_METHOD']} {environ['PATH_INFO']}")
            return
        if stream is None:
            await _answer(send, status, headers, whole)
            return
        try:
            chunk = await loop.run_in_executor(pool, next, stream, _DONE)
            await send({"type": "http.response.start", "status": status, "headers": headers})
            while chunk is not _DONE and not cancel.is_set():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
                chunk = await loop.run_in_executor(pool, next, stream, _DONE)
            # The end, also when cancelled: the server stopping ends the stream properly (a client that
            # left reads nothing, and granian drops what is sent to it).
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            await loop.run_in_executor(pool, _close, stream)


class _LoopInbox:
    """Answers handed to the loop from other threads: one wake-up of the loop per burst, not one per answer
    (each ``call_soon_threadsafe`` writes to the loop's self-pipe)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._lock = threading.Lock()
        self._items: list[tuple[asyncio.Future[Any], Any]] = []
        self._scheduled = False

    def put(self, future: asyncio.Future[Any], value: Any) -> None:
        """From any thread: ``future``'s result is to be ``value``."""
        with self._lock:
            self._items.append((future, value))
            if self._scheduled:
                return
            self._scheduled = True
        self.loop.call_soon_threadsafe(self._deliver)

    def _deliver(self) -> None:
        with self._lock:
            items, self._items, self._scheduled = self._items, [], False
        for future, value in items:
            if not future.done():  # its client left and its wait was cancelled
                future.set_result(value)


def _call_app(app: WsgiApp, environ: dict[str, Any]) -> tuple[int, list[tuple[bytes, bytes]], bytes,
                                                              Iterator[bytes] | None]:
    """On a pool thread: status, headers and either the whole body or (no Content-Length) a stream."""
    started: list[Any] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
        started[:] = [status, headers]
        return _no_write

    result = app(environ, start_response)
    status, headers = started
    raw = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers]
    if not any(name == b"server" for name, _ in raw):
        raw.append((b"server", SERVER_NAME.encode()))
    code = int(status.split(" ", 1)[0])
    if any(name == b"content-length" for name, _ in raw) or isinstance(result, list):
        try:
            return code, raw, b"".join(result), None
        finally:
            _close(result)
    return code, raw, b"", _bytes_of(result)


def _bytes_of(result: Iterable[bytes | str]) -> Iterator[bytes]:
    try:
        for chunk in result:
            yield chunk if isinstance(chunk, bytes) else chunk.encode()
    finally:  # also when the bridge stops early (the client left): the app's generator ends too
        _close(result)


def _close(result: object) -> None:
    close = getattr(result, "close", None)
    if close is not None:
        close()


def _no_write(data: bytes) -> None:
    raise RuntimeError("the WSGI write() callable is not supported")


async def _answer(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def _inspector_error(send: Send, exc: Exception, what: str) -> None:
    log.error("%s failed", what, exc_info=exc)
    await _answer(send, 400, [(b"content-type", b"text/plain; charset=utf-8"), (b"server", SERVER_NAME.encode())],
                  " ".join(f"inspector error: {type(exc).__name__}: {exc}".split()).encode() + b"\n")


async def _watch_disconnect(receive: Receive, cancel: threading.Event) -> None:
    """Set ``cancel`` when the client goes away (the body was read: the next message is the disconnect)."""
    while (await receive())["type"] != "http.disconnect":
        pass
    cancel.set()


def _head_size(scope: Scope) -> int:
    query: bytes = scope.get("query_string", b"")
    target: bytes = (scope.get("raw_path") or b"") + (b"?" + query if query else b"")
    return head_size(scope["method"].encode("latin-1"), target, scope["headers"])


def path_info(raw_path: bytes) -> str:
    """WSGI's PATH_INFO from the raw request path: percent-decoded, except ``%2F`` (kept, so a path's
    segments stay as sent), as bytes read as Latin-1."""
    return b"%2F".join(urllib.parse.unquote_to_bytes(part)
                       for part in _QUOTED_SLASH.split(raw_path)).decode("latin-1")


def wsgi_environ(scope: Scope, body: io.BytesIO, cancel: threading.Event, arrival: datetime) -> dict[str, Any]:
    """The WSGI environ of an ASGI request (granian's scope: ports as strings, raw header bytes)."""
    raw_path: bytes = scope.get("raw_path") or scope["path"].encode("utf-8")
    query: bytes = scope.get("query_string", b"")
    server = scope.get("server") or ("", 0)
    client = scope.get("client") or ("", 0)
    version = scope.get("http_version", "1.1")
    environ: dict[str, Any] = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": "",
        "PATH_INFO": path_info(raw_path),
        "QUERY_STRING": query.decode("latin-1"),  # raw, as sent: refine's base64 is not form-encoded
        "REQUEST_URI": (raw_path + (b"?" + query if query else b"")).decode("latin-1"),
        "SERVER_NAME": SERVER_NAME,
        "SERVER_PORT": str(int(server[1])),
        "REMOTE_ADDR": str(client[0]),
        "REMOTE_PORT": str(int(client[1])),
        "SERVER_PROTOCOL": "HTTP/1.0" if version in ("1", "1.0") else f"HTTP/{version}",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.input": body,
        "wsgi.input_terminated": True,
        "wsgi.errors": _LOG_STREAM,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "mockserver.cancel": cancel,  # set when the client disconnects or the server stops
        "mockserver.arrival": arrival,  # when the request's head was in: the time it is recorded with
    }
    for name_bytes, value_bytes in scope["headers"]:
        name = name_bytes.decode("latin-1")
        value = value_bytes.decode("latin-1")  # the bytes as sent (WSGI's Latin-1 form)
        if name == "host" and not value and environ["SERVER_PROTOCOL"] == "HTTP/1.0":
            continue  # granian adds an empty Host to an HTTP/1.0 request that sent none
        key = ("CONTENT_LENGTH" if name == "content-length" else "CONTENT_TYPE" if name == "content-type"
               else "HTTP_" + name.upper().replace("-", "_"))
        environ[key] = f"{environ[key]}, {value}" if key in environ else value
    return environ


class _LogStream(io.TextIOBase):
    """``wsgi.errors``: what an app writes there goes to this module's log."""

    def write(self, text: str) -> int:
        if text.strip():
            log.warning("%s", text.rstrip())
        return len(text)


_LOG_STREAM = _LogStream()
