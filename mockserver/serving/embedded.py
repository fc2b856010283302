"""granian's embedded server, run in this process: listeners we bind, on one asyncio loop in one thread.

granian (Rust: hyper, tokio, rustls) parses HTTP and terminates TLS; our ASGI app
(:mod:`mockserver.serving.bridge`) runs on the loop. Three things here lean on granian's
private names, which is why pyproject.toml pins granian exactly:

* **We bind the listening sockets ourselves** (:func:`bind_listener`), on the caller's thread,
  and hand a duplicate of each to granian (``_init_shared_socket``). granian's own bind sets
  SO_REUSEPORT (a second inspector on the same port would share it silently instead of failing),
  leaks a socket per start, and fails with a Rust message without an errno. With our own
  socket, "port in use" is an OSError with its errno before anything runs, and a request sent
  the moment :meth:`EmbeddedServers.start` returns waits in the kernel's queue.
* **Stopping waits for granian's native threads to leave.** granian's Python-attached Rust
  threads (its blocking worker and runtime thread) re-take the GIL when they end; one still
  ending when the interpreter finalizes aborted it with a Rust panic ("panic in a function that
  cannot unwind"), about one exit in ten. Every such thread hands results to the loop through
  ``call_soon_threadsafe``, so the loop notes who calls it (:class:`_NotingLoop`), and
  :meth:`EmbeddedServers.stop` waits until those threads are gone (Linux: ``/proc/self/task``).
* ``workers_kill_timeout`` (an attribute, not a constructor argument of the embedded server)
  bounds a stop that an answer which never ends would otherwise hold for ever.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVarTuple

from granian._granian import SocketHolder
from granian.constants import HTTPModes, Interfaces, SSLProtocols
from granian.http import HTTP1Settings
from granian.server.embed import Server

log = logging.getLogger(__name__)
_Args = TypeVarTuple("_Args")

BACKLOG = 1024  # connections the kernel completes before granian accepts them
# Connections each listener holds at once (a permit per connection, idle keep-alives included):
# far above what a siege opens, since our own pools and caps limit the work, not this.
BACKPRESSURE = 4096
KILL_AFTER = 5  # seconds a stopping listener waits for answers still being sent
THREADS_GONE_WITHIN = 2.0  # seconds stop() waits for granian's native threads to end
_TASKS = Path("/proc/self/task")
# granian's loggers: they write to stdout by default, which would corrupt `serve --json`.
_QUIET_LOGGING: dict[str, Any] = {
    "handlers": {"null": {"class": "logging.NullHandler"}},
    "loggers": {"_granian": {"handlers": ["null"], "propagate": False},
                "granian.access": {"handlers": ["null"], "propagate": False}},
}


@dataclass(frozen=True)
class Listener:
    """One listening socket to serve, with its TLS certificate and key when it is HTTPS."""

    sock: socket.socket
    cert: Path | None = None
    key: Path | None = None

    @property
    def port(self) -> int:
        """The port it is bound to."""
        return int(self.sock.getsockname()[1])


def bind_listener(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` and listening; OSError (with its errno) if it cannot be."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        if os.name != "nt":  # a port left in TIME_WAIT by the last run is free; Windows' flag means more
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(BACKLOG)
    except OSError:
        sock.close()
        raise
    return sock


class _ListenerServer(Server):
    """granian's embedded server on a socket bound by :func:`bind_listener`."""

    def __init__(self, listener: Listener, app: Callable[..., Any], http1: HTTP1Settings) -> None:
        tls: dict[str, Any] = {}
        if listener.cert is not None:
            tls = {"ssl_cert": listener.cert, "ssl_key": listener.key, "ssl_protocol_min": SSLProtocols.tls12}
        super().__init__(app, address=listener.sock.getsockname()[0], port=listener.port,
                         interface=Interfaces.ASGINL, http=HTTPModes.http1, websockets=False,
                         backlog=BACKLOG, backpressure=BACKPRESSURE, http1_settings=http1,
                         log_enabled=False, log_dictconfig=_QUIET_LOGGING, **tls)
        self.listener = listener
        self.workers_kill_timeout = KILL_AFTER

    def _init_shared_socket(self) -> None:
        # granian's worker takes ownership of the descriptor (and closes it): give it a duplicate.
        fd = os.dup(self.listener.sock.fileno())
        self._ssp = None
        # granian's stub declares neither SocketHolder's constructor (fd; on POSIX also uds, backlog) nor these
        # attributes' types (None until bound).
        holder = SocketHolder(fd) if sys.platform == "win32" else SocketHolder(fd, False, self.backlog)  # type: ignore[call-arg]
        self._shd = holder  # type: ignore[assignment]
        self._sfd = fd  # type: ignore[assignment]


class _NotingLoop(asyncio.SelectorEventLoop):
    """An event loop that remembers which OS threads called ``call_soon_threadsafe`` (see the module doc),
    and wakes up once per burst of such calls.

    granian hands every request to the loop with ``call_soon_threadsafe``, and asyncio writes a byte to
    its self-pipe for each (a system call, ~12 % of the server's Python time under load). One unread
    byte wakes the loop as well as many: while one is unread, no more are written. The flag is cleared
    once the loop has emptied the pipe, before it runs the callbacks queued so far, so a call that
    finds it set has queued its callback where the loop will see it without another wake-up.
    """

    def __init__(self) -> None:
        super().__init__()
        self.callers: set[int] = set()
        self._wake_pending = False

    def _write_to_self(self) -> None:
        if self._wake_pending:
            return
        self._wake_pending = True
        csock = self._csock  # type: ignore[attr-defined]  # asyncio's private self-pipe, not in its stub
        if csock is None:  # closed: the loop is done
            return
        try:
            csock.send(b"\0")
        except OSError:  # no byte went: the next call must try again (asyncio itself just drops it)
            self._wake_pending = False

    def _read_from_self(self) -> None:
        try:
            super()._read_from_self()  # type: ignore[misc]
        finally:
            # Only once the pipe is empty: cleared before, a byte written meanwhile would be read here with
            # the flag left set, and the next call would write none while the loop sleeps.
            self._wake_pending = False

    def call_soon_threadsafe(self, callback: Callable[[*_Args], object], *args: *_Args,
                             context: contextvars.Context | None = None) -> asyncio.Handle:
        self.callers.add(threading.get_native_id())
        return super().call_soon_threadsafe(callback, *args, context=context)


class EmbeddedServers:
    """Several granian listeners over one ASGI app, on one loop in one background thread."""

    def __init__(self, app: Callable[..., Any], listeners: list[Listener], *, header_timeout: float,
                 max_header_bytes: int) -> None:
        """``header_timeout``: seconds a connection may take to send a request's head (and stay idle between
        requests) before granian closes it; ``max_header_bytes``: the most a head may take."""
        http1 = HTTP1Settings(header_read_timeout=round(header_timeout * 1000), keep_alive=True,
                              max_buffer_size=max_header_bytes)
        self.servers = [_ListenerServer(listener, app, http1) for listener in listeners]
        self.loop = _NotingLoop()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Serve in the background; the sockets already listen, so this returns at once."""
        self._thread = threading.Thread(target=self._run, name="http-listeners", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        # Each listener on its own: one that fails (logged) leaves the other serving.
        outcomes = self.loop.run_until_complete(
            asyncio.gather(*(server.serve() for server in self.servers), return_exceptions=True))
        for server, outcome in zip(self.servers, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                log.error("the listener on port %s stopped: %r", server.listener.port, outcome)

    def call(self, callback: Callable[[], object]) -> None:
        """Run ``callback`` on the listeners' loop (from any thread)."""
        if not self.loop.is_closed():
            self.loop.call_soon_threadsafe(callback)

    def stop(self, timeout: float = 15) -> bool:
        """Stop every listener (answers in flight are finished first, up to KILL_AFTER) and wait for
        their thread; False if it is still running after ``timeout``."""
        if self._thread is not None:
            for server in self.servers:
                self.call(server.stop)
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.error("the HTTP listeners did not stop within %s s", timeout)
                return False
            self._thread = None
        return True

    def close(self) -> None:
        """Close the loop (once :meth:`stop` returned True and nothing hands it work any more) and wait
        for granian's native threads to end."""
        if not self.loop.is_closed():
            self.loop.close()
        # Python's own threads (ours, the caller's, pools already joined) are not granian's.
        _wait_for_threads_to_end(self.loop.callers - {thread.native_id for thread in threading.enumerate()})


def _wait_for_threads_to_end(native_ids: set[int]) -> None:
    """Wait (at most THREADS_GONE_WITHIN) until none of these OS threads is alive; a short pause where
    threads cannot be listed."""
    if not _TASKS.is_dir():
        time.sleep(0.2)
        return
    deadline = time.monotonic() + THREADS_GONE_WITHIN
    while any((_TASKS / str(tid)).exists() for tid in native_ids):
        if time.monotonic() > deadline:
            log.debug("granian threads still running after stop: %s", sorted(native_ids))
            return
        time.sleep(0.002)
