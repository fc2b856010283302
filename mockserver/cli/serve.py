"""``telemetry-inspector serve``: the mock headless, one line (or JSON record) per request.

The server, the journal and the printer are imported when the command runs, so building
the command line stays cheap; ``browser`` shares :func:`stop_on_signals`, :func:`run_until_stopped`
and :func:`stop_capture`.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, TextIO

from mockserver.cli.options import PROG, CommandParsers, UsageError, add_server_options, whole_number
from mockserver.core.config import is_loopback
from mockserver.core.text import command_message, plural

MAX_WORKERS = 64

if TYPE_CHECKING:
    from mockserver.cli.output import LinePrinter
    from mockserver.serving.server import InspectorServer
    from mockserver.storage.store import BeaconStore


def add_command(commands: CommandParsers) -> None:
    """Register ``serve [--json] [--verbose] [--workers N]``."""
    serve = commands.add_parser("serve", help="run the mock headless and print each request as it arrives",
                                description="Run the mock of telemetry.refine.dev without a window.")
    add_server_options(serve)
    serve.add_argument("--json", action="store_true", help="print one JSON record per line (NDJSON) on stdout")
    serve.add_argument("--verbose", "-v", action="store_true",
                       help="under each line, what the request carried: the decoded payload or body, problems, notes")
    serve.add_argument("--workers", type=whole_number(1, MAX_WORKERS, what="workers"), default=1, metavar="N",
                       help="serve with N processes sharing the ports and the journal, for a shared host or a CI "
                            "machine with many cores (default 1: this process alone); needs a --db file, and "
                            "not with --proxy-port; this process prints every worker's records, and duplicates "
                            "and preflights are matched across workers; if a worker dies the others are stopped "
                            "and serve exits 2")
    serve.set_defaults(handler=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    """``serve``: run the mock headless, one line (or JSON record) per request."""
    if args.workers > 1:
        return serve_with_workers(args)
    from mockserver.cli.output import LinePrinter, banner
    from mockserver.serving.server import InspectorServer, ServerError
    from mockserver.storage.store import BeaconStore

    store = BeaconStore(args.db)
    server = InspectorServer(store, host=args.host, port=args.port, https_port=args.https_port,
                             trust_proxy=args.trust_proxy, proxy_port=args.proxy_port)
    # Listen for records before the port opens: a request sent as soon as the
    # banner shows must get its line too.
    printer = LinePrinter(sys.stdout, args.json, verbose=args.verbose)
    unsubscribe = store.subscribe(printer)
    stop = threading.Event()
    stop_on_signals(stop)
    try:
        listening = server.start()
    except ServerError:
        unsubscribe()
        printer.close()
        store.close()
        raise
    info = announce(args, banner(listening, store, server.certificate, token=server.journal_token,
                                 token_file=server.token_file))
    try:
        run_until_stopped(stop)
    finally:
        stop_capture(server, store, unsubscribe, printer, info)
    return 0


def serve_with_workers(args: argparse.Namespace) -> int:
    """``serve --workers N`` (N > 1): the workers serve and record (:mod:`mockserver.serving.workers`); this
    process prints what they commit, learned from the journal. Exit 2 if a worker died."""
    from mockserver.cli.output import LinePrinter, banner
    from mockserver.serving.server import ServerError
    from mockserver.serving.workers import WorkerPool
    from mockserver.storage.store import BeaconStore
    from mockserver.storage.watch import JournalWatcher

    if args.db == ":memory:":
        raise UsageError(f"--workers {args.workers} needs a --db file, not :memory: (see {PROG} serve --help)")
    if args.proxy_port is not None:  # which connections the proxy brought is known in its own process only
        raise UsageError(f"--workers {args.workers} and --proxy-port cannot go together: the "
                         f"proxy needs the single-process serve (see {PROG} serve --help)")
    store = BeaconStore(args.db)  # first: schema, WAL and the session exist before any worker opens the file
    try:
        pool = WorkerPool(store, args.workers, host=args.host, port=args.port, https_port=args.https_port,
                          trust_proxy=args.trust_proxy)
    except BaseException:
        store.close()
        raise
    printer = LinePrinter(sys.stdout, args.json, verbose=args.verbose)
    unsubscribe = store.subscribe(printer)
    since = store.last_id()
    watcher = JournalWatcher(store, records=True, since=since).start()
    stop = threading.Event()
    stop_on_signals(stop)
    try:
        listening = pool.start(since, on_failure=stop.set)
    except ServerError:
        watcher.stop()
        unsubscribe()
        printer.close()
        store.close()
        raise
    info = announce(args, banner(listening, store, pool.certificate, token=pool.journal_token,
                                 token_file=pool.token_file, workers=pool.pids))
    try:
        run_until_stopped(stop)
    finally:
        pool.stop()
        watcher.stop()  # after the workers: its last read finds every record they stored
        stop_capture(None, store, unsubscribe, printer, info)
    return 2 if pool.failed is not None else 0


def stop_capture(server: InspectorServer | None, store: BeaconStore, unsubscribe: Callable[[], None],
                 printer: LinePrinter, info: TextIO) -> None:
    """Stop the mock (None: stopped already), print what is still queued, close the journal and say how much
    was captured."""
    if server is not None:
        server.stop()
    unsubscribe()
    printer.close()
    captured = store.count(session=store.session)
    store.close()
    print(f"stopped: {plural(captured, 'request')} captured in session {store.session}", file=info, flush=True)


def announce(args: argparse.Namespace, banner_text: str) -> TextIO:
    """Print the start banner where ``serve``'s messages go (stderr with ``--json``, stdout otherwise), after
    the one-line warning when ``--host`` lets other machines in; returns that stream."""
    if not is_loopback(args.host):
        print(command_message("serve", f"warning: listening on {args.host}: other machines can send requests "
                              "to this inspector; its journal answers only requests with the token below"),
              file=sys.stderr)
    info = sys.stderr if args.json else sys.stdout
    print(banner_text, file=info, flush=True)
    return info


def stop_on_signals(stop: threading.Event) -> None:
    """Make Ctrl-C and SIGTERM set ``stop`` from now on.

    Installed before anything says "waiting": a caller that stops us as soon as
    it reads that line must not kill the process before it can clean up.
    """
    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    if hasattr(signal, "SIGTERM"):
        signal.signal(signal.SIGTERM, on_signal)


def run_until_stopped(stop: threading.Event) -> None:
    """Block until Ctrl-C or SIGTERM (or ``stop`` is set)."""
    stop_on_signals(stop)
    while not stop.wait(0.5):
        pass
