"""``telemetry-inspector browser``: the mock and a Chrome/Chromium/Edge routed to it, one line per request.

With ``--server URL`` the records come from a running inspector's journal instead of an own mock.
"""

from __future__ import annotations

import argparse
import sys
import threading

from mockserver.cli.options import PROG, CommandParsers, add_server_options
from mockserver.cli.serve import run_until_stopped, stop_capture
from mockserver.core.config import ENV_BROWSER


def add_command(subparsers: CommandParsers) -> None:
    """Register ``browser [URL] [--browser PATH] [--headless]``."""
    parser = subparsers.add_parser(
        "browser", help="start the mock and a browser routed to it; print what the app sends",
        description="Start the mock of telemetry.refine.dev and a Chrome/Chromium/Edge (fresh temporary "
                    "profile) whose requests to telemetry.refine.dev go to it. Ctrl-C closes both.")
    parser.add_argument("url", nargs="?", metavar="URL", help="page to open (default: an empty tab)")
    parser.add_argument("--browser", metavar="PATH",
                        help=f"Chrome/Chromium/Edge executable (default: env {ENV_BROWSER}, then the usual places)")
    parser.add_argument("--headless", action="store_true", help="no window (for scripts and CI)")
    parser.add_argument("--server", metavar="URL",
                        help="use a running inspector (its HTTP or HTTPS URL) instead of starting one")
    parser.add_argument("--token", metavar="TOKEN", default=None,
                        help="with --server: the journal token of an inspector listening beyond loopback "
                             "(default: env TELEMETRY_INSPECTOR_TOKEN, else this machine's token file "
                             "for a loopback URL)")
    parser.add_argument("--json", action="store_true", help="print one JSON record per line (NDJSON) on stdout")
    add_server_options(parser)
    parser.set_defaults(handler=cmd_browser)


def cmd_browser(args: argparse.Namespace) -> int:
    """``browser``: mock + routed browser; one line per captured request until Ctrl-C or the browser closes."""
    from mockserver.cli.output import LinePrinter, banner
    from mockserver.reach.browser import (
        BrowserError,
        BrowserNotFound,
        RoutedBrowser,
        find_browser,
        launch_routed_browser,
        prove_and_open,
    )
    from mockserver.reach.remote import RemoteError, RemoteInspector
    from mockserver.serving.probe import UNPROVEN
    from mockserver.serving.server import InspectorServer
    from mockserver.storage.store import BeaconStore, StoreEvent

    prog = f"{PROG} browser"
    info = sys.stderr if args.json else sys.stdout
    try:
        executable = find_browser(args.browser)
    except BrowserNotFound as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    lost = threading.Event()  # the remote journal answered an error: exit 2
    if args.server:
        try:
            remote = RemoteInspector.connect(args.server, token=args.token)
        except RemoteError as exc:
            print(f"{prog}: {exc}", file=sys.stderr)
            return 2
        https_port, pin, host = remote.https_port, remote.spki_pin, remote.host
        print(f"Using the inspector at {remote.base_url} (HTTPS {https_port}, SPKI pin {pin})", file=info, flush=True)
        server = store = None
    else:
        if args.https_port is None:
            print(f"{prog}: routing a browser needs the HTTPS listener (drop --no-https)", file=sys.stderr)
            return 2
        store = BeaconStore(args.db)
        server = InspectorServer(store, host=args.host, port=args.port, https_port=args.https_port,
                                 trust_proxy=args.trust_proxy)
        try:
            listening = server.start()
        except BaseException:
            store.close()
            raise
        ca = str(server.certificate.ca_cert) if server.certificate else None
        print(banner(listening, store, ca, token=server.journal_token, token_file=server.token_file)
              .rsplit("\n\n", 1)[0], file=info, flush=True)
        assert listening.https_port and listening.spki_pin
        https_port, pin = listening.https_port, listening.spki_pin
        host = "127.0.0.1" if listening.host in ("0.0.0.0", "::", "") else listening.host.strip("[]")
        remote = None
    printer = LinePrinter(sys.stdout, args.json)
    unsubscribe = store.subscribe(printer) if store is not None else (lambda: None)
    follower: threading.Thread | None = None
    browser: RoutedBrowser | None = None
    try:
        try:
            # An empty tab first: the route is proven there before the app can send anything.
            browser = launch_routed_browser(None, https_port, pin, host=host, browser=executable,
                                            headless=args.headless, remote_debugging=True)
        except (BrowserNotFound, BrowserError) as exc:
            print(f"{prog}: {exc}", file=sys.stderr)
            return 2
        wait_seen = remote.probe_seen if remote is not None else server.app.extensions["probes"].wait  # type: ignore[union-attr]  # server is set when remote is not
        since = remote.last_id() if remote is not None else None  # before the app can send anything
        route = prove_and_open(browser, wait_seen, args.url)
        if route.startswith(UNPROVEN):
            print(f"{prog}: {route}", file=sys.stderr, flush=True)
            return 2
        print(f"\nBrowser   {executable}{' (headless)' if args.headless else ''}, temporary profile\n"
              f"Route     {route}\n"
              f"Opened    {args.url or 'an empty tab'}\n\n"
              "Waiting for requests; Ctrl-C (or closing the browser) stops.", file=info, flush=True)
        if remote is not None:
            # A remote journal is read by polling; its records go through the same printer.
            def follow_journal(journal: RemoteInspector) -> None:
                try:
                    journal.follow(lambda beacon: printer(StoreEvent("appended", beacon=beacon)), stop, since)
                except RemoteError as exc:  # say so and stop, rather than go on showing nothing
                    print(f"{prog}: lost the inspector: {exc}", file=sys.stderr, flush=True)
                    lost.set()
                    stop.set()

            follower = threading.Thread(target=follow_journal, args=(remote,), name="journal-follower", daemon=True)
            follower.start()

        def watch_browser() -> None:
            browser.wait()
            stop.set()

        closed_by_user = threading.Thread(target=watch_browser, name="browser-watch", daemon=True)
        closed_by_user.start()
        run_until_stopped(stop)
    finally:
        stop.set()
        if browser is not None:
            browser.stop()
        if follower is not None:
            follower.join(timeout=5)
        if server is not None and store is not None:
            stop_capture(server, store, unsubscribe, printer, info)
        else:
            printer.close()
    return 2 if lost.is_set() else 0
