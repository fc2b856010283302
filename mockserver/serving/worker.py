"""One worker of ``serve --workers N`` (internal: started by :mod:`mockserver.serving.workers`, not a command).

``python -m mockserver.serving.worker --http-fd 3 --https-fd 4 --db PATH --session S --since ID
--worker I --workers N [--host H] [--trust-proxy]``

It serves the listening sockets its parent bound and passed down (their descriptors), with its
own :class:`~mockserver.storage.store.BeaconStore` on the parent's journal file, in the parent's
session. The journal is ``shared``: every commit is a write transaction, and the duplicate and
preflight checks catch up with the other workers' records first
(:mod:`mockserver.storage.shared`). A :class:`~mockserver.storage.watch.JournalWatcher` wakes
this worker's long polls and event streams when another worker commits.

It prints ``ready`` on stdout once it serves, and stops cleanly (answers in flight are finished,
so answered means stored) on SIGTERM, on SIGINT, or when its stdin ends: the parent holds the
other end, so a parent that dies, even by ``kill -9``, stops its workers. Errors are one line on
stderr, exit status 2.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sqlite3
import sys
import threading
from collections.abc import Sequence
from typing import NoReturn

from mockserver.core.config import DEFAULT_HOST
from mockserver.core.text import command_message, one_line
from mockserver.serving.server import InspectorServer, ListenerSockets, ServerError
from mockserver.storage.recorder import Recorder
from mockserver.storage.shared import SharedChecks
from mockserver.storage.store import BeaconStore, StoreError
from mockserver.storage.watch import JournalWatcher

READY = "ready"


def parse_arguments(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The worker's arguments (given by its parent, never typed by a user)."""
    parser = argparse.ArgumentParser(prog="python -m mockserver.serving.worker")
    parser.add_argument("--http-fd", type=int, required=True)
    parser.add_argument("--https-fd", type=int)
    parser.add_argument("--db", required=True)
    parser.add_argument("--session", type=int, required=True)
    parser.add_argument("--since", type=int, required=True)
    parser.add_argument("--worker", type=int, required=True)
    parser.add_argument("--workers", type=int, required=True)
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument("--trust-proxy", action="store_true")
    return parser.parse_args(argv)


def _stop_when_told(stop: threading.Event) -> None:
    """SIGTERM, SIGINT and the end of stdin (the parent gone) set ``stop``."""
    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    def read_until_end() -> None:
        try:
            while sys.stdin.buffer.read(4096):
                pass
        except (OSError, ValueError):
            pass
        stop.set()

    threading.Thread(target=read_until_end, name="parent-watch", daemon=True).start()


def serve(args: argparse.Namespace, stop: threading.Event) -> None:
    """Serve the inherited sockets until ``stop`` is set; raises StoreError or ServerError if it cannot start."""
    store = BeaconStore(args.db, start_session=False, shared=True)
    store.session = args.session
    checks = SharedChecks(store, args.since)
    sockets = ListenerSockets(socket.socket(fileno=args.http_fd),
                              socket.socket(fileno=args.https_fd) if args.https_fd is not None else None)
    server = InspectorServer(store, host=args.host, trust_proxy=args.trust_proxy, listen_on=sockets,
                             recorder=checks.install(Recorder(store, trust_proxy=args.trust_proxy)))
    server.app.extensions["worker"] = (args.worker, args.workers)
    watcher: JournalWatcher | None = None
    try:
        server.start()
        watcher = JournalWatcher(store, records=False, on_change=(checks.catch_up,)).start()
        print(READY, flush=True)
        stop.wait()
    finally:
        server.stop()  # answers in flight are finished (and so stored) first
        if watcher is not None:
            watcher.stop()
        checks.close()
        store.close()


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Run one worker; ends the process (0 once stopped, 2 if it could not start)."""
    stop = threading.Event()
    _stop_when_told(stop)
    args = parse_arguments(argv)
    status = 0
    try:
        serve(args, stop)
    except (StoreError, ServerError) as exc:
        print(command_message("serve", f"worker {args.worker}: {exc}"), file=sys.stderr)
        status = 2
    except (OSError, sqlite3.Error) as exc:  # a descriptor that is not a socket; the journal's file
        print(command_message("serve", f"worker {args.worker}: {one_line(exc)}"), file=sys.stderr)
        status = 2
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)  # everything is closed: skip the interpreter's slow teardown (see cli.main)


if __name__ == "__main__":
    main()
