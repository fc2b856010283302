"""``telemetry-inspector browser``: the mock and a Chromium-family or Firefox browser routed to it, a line a request.

With ``--server URL`` the records come from a running inspector's journal instead of an own mock.
"""

from __future__ import annotations

import argparse
import sys
import threading
import urllib.parse
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple, TextIO

from mockserver.cli.options import BROWSER_HELP, CommandParsers, add_egress_options, add_server_options
from mockserver.cli.serve import run_until_stopped, stop_capture, stop_on_signals
from mockserver.core.text import command_message

if TYPE_CHECKING:
    from mockserver.cli.output import LinePrinter
    from mockserver.reach.browser import BrowserProcess
    from mockserver.reach.remote import RemoteInspector
    from mockserver.records.egress import OtherRequest
    from mockserver.serving.server import InspectorServer
    from mockserver.storage.store import BeaconStore



class _Route(NamedTuple):
    """Where the browser's telemetry.refine.dev goes: the mock's HTTPS port, its key's pin, its host;
    for a Firefox also its HTTP port and its CA certificate (``ca_pem()``, asked only then)."""

    https_port: int
    pin: str
    host: str
    http_port: int | None
    ca_pem: Callable[[], bytes]



def add_command(subparsers: CommandParsers) -> None:
    """Register ``browser [URL] [--browser PATH] [--headless]``."""
    parser = subparsers.add_parser(
        "browser", help="start the mock and a browser routed to it; print what the app sends",
        description="Start the mock of telemetry.refine.dev and a Chrome/Chromium/Edge or Firefox (fresh "
                    "temporary profile) whose requests to telemetry.refine.dev go to it. Ctrl-C closes both.")
    parser.add_argument("url", nargs="?", metavar="URL", help="page to open (default: an empty tab)")
    parser.add_argument("--browser", metavar="PATH", help=BROWSER_HELP)
    parser.add_argument("--headless", action="store_true", help="no window (for scripts and CI)")
    parser.add_argument("--server", metavar="URL",
                        help="use a running inspector (its HTTP or HTTPS URL) instead of starting one")
    parser.add_argument("--token", metavar="TOKEN", default=None,
                        help="with --server: the journal token of an inspector listening beyond loopback "
                             "(default: env TELEMETRY_INSPECTOR_TOKEN, else this machine's token file "
                             "for a loopback URL)")
    parser.add_argument("--json", action="store_true", help="print one JSON record per line (NDJSON) on stdout")
    add_egress_options(parser, policy=False)
    add_server_options(parser)
    parser.set_defaults(handler=cmd_browser)


def cmd_browser(args: argparse.Namespace) -> int:
    """``browser``: mock + routed browser; one line per captured request until Ctrl-C or the browser closes."""
    from mockserver.cli.output import LinePrinter
    from mockserver.reach.browser import (
        BrowserError,
        BrowserNotFound,
        launch_routed_browser,
        locate_browser,
        prove_and_open,
    )
    from mockserver.reach.remote import RemoteError

    info = sys.stderr if args.json else sys.stdout
    try:
        found = locate_browser(args.browser)
    except BrowserNotFound as exc:
        return _refuse(str(exc))
    executable = found.executable
    stop = threading.Event()
    stop_on_signals(stop)  # before the browser starts: a SIGTERM from now on closes it and its profile
    lost = threading.Event()  # the remote journal answered an error: exit 2
    server = store = remote = None
    if args.server:
        try:
            remote, route = _use_remote(args, info)
        except RemoteError as exc:
            return _refuse(str(exc))
    else:
        if args.https_port is None:
            return _refuse("routing a browser needs the HTTPS listener (drop --no-https)")
        server, store, route = _start_mock(args, info)
    printer = LinePrinter(sys.stdout, args.json)
    unsubscribe = store.subscribe(printer) if store is not None else (lambda: None)
    follower: threading.Thread | None = None
    browser: BrowserProcess | None = None
    try:
        try:
            # An empty tab first: the route is proven there before the app can send anything.
            browser = launch_routed_browser(None, route.https_port, route.pin, host=route.host, browser=found,
                                            headless=args.headless, remote_debugging=True,
                                            http_port=route.http_port, ca_pem=route.ca_pem)
        except (BrowserNotFound, BrowserError) as exc:
            return _refuse(str(exc))
        _watch_other_hosts(browser, args, info)
        wait_seen = remote.probe_seen if remote is not None else server.app.extensions["probes"].wait  # type: ignore[union-attr]  # server is set when remote is not
        since = remote.last_id() if remote is not None else None  # before the app can send anything
        proof = prove_and_open(browser, wait_seen, args.url)
        if not proof.proven and not proof.browser_closed:
            return _refuse(proof.line)
        print(f"\nBrowser   {executable}{' (headless)' if args.headless else ''}, temporary profile\n"
              f"Route     {proof.line}\n"
              f"Opened    {args.url or 'an empty tab'}\n\n"
              "Waiting for requests; Ctrl-C (or closing the browser) stops.", file=info, flush=True)
        if remote is not None:
            follower = _follow_journal(remote, printer, stop, lost, since)

        def watch_browser() -> None:
            browser.wait()
            stop.set()

        closed_by_user = threading.Thread(target=watch_browser, name="browser-watch", daemon=True)
        closed_by_user.start()
        run_until_stopped(stop)
    finally:
        stop.set()
        others = browser.other_requests() if browser is not None else []
        if browser is not None:
            browser.stop()
        if follower is not None:
            follower.join(timeout=5)
        if server is not None and store is not None:
            stop_capture(server, store, unsubscribe, printer, info)
        else:
            printer.close()
        _print_other_hosts(others, args.full_urls, info)
    return 2 if lost.is_set() else 0


def _watch_other_hosts(browser: BrowserProcess, args: argparse.Namespace, info: TextIO) -> None:
    """Print each request the page makes to another host as it finishes (on ``info``: stdout keeps
    to the records); a browser whose network cannot be watched is said so, and still used."""
    from mockserver.reach.browser import BrowserError

    def say(request: OtherRequest) -> None:
        print(f"Other     {request.line(args.full_urls)}", file=info, flush=True)

    own = {urllib.parse.urlsplit(args.url).hostname or ""} if args.url else set()
    try:
        browser.watch_network(own_hosts=frozenset(own), on_request=say)
    except BrowserError as exc:
        print(command_message("browser", f"other hosts will not be listed: {exc}"), file=sys.stderr, flush=True)


def _print_other_hosts(others: list[OtherRequest], full_urls: bool, info: TextIO) -> None:
    """The other hosts the page contacted, once more at the end, all together."""
    from mockserver.records.egress import egress_lines

    lines = egress_lines(others, full_urls)
    if lines:
        print("\n" + "\n".join(lines), file=info, flush=True)


def _refuse(reason: str) -> int:
    """Say why ``browser`` cannot go on (one line on stderr); exit status 2."""
    print(command_message("browser", reason), file=sys.stderr, flush=True)
    return 2


def _use_remote(args: argparse.Namespace, info: TextIO) -> tuple[RemoteInspector, _Route]:
    """The running inspector at ``--server``, and the route to it; RemoteError when it cannot be used."""
    from mockserver.reach.remote import RemoteInspector

    remote = RemoteInspector.connect(args.server, token=args.token)
    print(f"Using the inspector at {remote.base_url} (HTTPS {remote.https_port}, SPKI pin {remote.spki_pin})",
          file=info, flush=True)
    return remote, _Route(remote.https_port, remote.spki_pin, remote.host, remote.http_port, remote.ca_pem)


def _start_mock(args: argparse.Namespace, info: TextIO) -> tuple[InspectorServer, BeaconStore, _Route]:
    """Start an own mock with the server options in ``args`` and print its banner (without serve's routing hints)."""
    from mockserver.cli.output import banner
    from mockserver.serving.server import InspectorServer
    from mockserver.storage.store import BeaconStore

    store = BeaconStore(args.db)
    server = InspectorServer(store, host=args.host, port=args.port, https_port=args.https_port,
                             trust_proxy=args.trust_proxy, proxy_port=getattr(args, "proxy_port", None))
    try:
        listening = server.start()
    except BaseException:
        store.close()
        raise
    print(banner(listening, store, server.certificate, token=server.journal_token, token_file=server.token_file,
                 routing_help=False), file=info, flush=True)
    assert listening.https_port and listening.spki_pin and server.certificate
    host = "127.0.0.1" if listening.host in ("0.0.0.0", "::", "") else listening.host.strip("[]")
    return server, store, _Route(listening.https_port, listening.spki_pin, host, listening.port,
                                 server.certificate.ca_cert.read_bytes)


def _follow_journal(remote: RemoteInspector, printer: LinePrinter, stop: threading.Event, lost: threading.Event,
                    since: int | None) -> threading.Thread:
    """Poll the remote journal on a thread of its own; its records go through the same printer."""
    from mockserver.reach.remote import RemoteError
    from mockserver.storage.store import StoreEvent

    def follow() -> None:
        try:
            remote.follow(lambda beacon: printer(StoreEvent("appended", beacon=beacon)), stop, since)
        except RemoteError as exc:  # say so and stop, rather than go on showing nothing
            print(command_message("browser", f"lost the inspector: {exc}"), file=sys.stderr, flush=True)
            lost.set()
            stop.set()

    follower = threading.Thread(target=follow, name="journal-follower", daemon=True)
    follower.start()
    return follower
