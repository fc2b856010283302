"""``telemetry-inspector``: the GUI by default, and headless subcommands.

Every error a user can cause is one line on stderr and exit status 2.
The GUI is imported only when asked for, so every subcommand here runs
without Qt.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn, TextIO, TypeAlias

from mockserver import __version__
from mockserver.core.beacon import Beacon
from mockserver.core.config import (
    DEFAULT_HOST,
    DEFAULT_HTTPS_PORT,
    DEFAULT_PORT,
    DISPLAY_NAME,
    ENV_DB,
    ENV_HOME,
    default_db,
    is_loopback,
)
from mockserver.core.text import plural, printable
from mockserver.reach.routing import chromium_command_line, hosts_file_line
from mockserver.records.verdict import describe_beacon
from mockserver.serving.server import InspectorServer, Listening, ServerError
from mockserver.storage.store import BeaconStore, StoreError, StoreEvent

PROG = "telemetry-inspector"

# One feature per module: each exposes add_command(subparsers) and sets
# ``handler`` on its parser. A handler returns the exit status.
COMMAND_MODULES: list[str] = [
    "mockserver.reach.browser", "mockserver.reach.verify", "mockserver.reach.noderun", "mockserver.formats.export",
    "mockserver.formats.har", "mockserver.reach.compose", "mockserver.records.diff", "mockserver.cli.screenshot",
]


class UsageError(Exception):
    """Bad arguments: reported as one line, exit 2."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad argument is one clear line (and exit 2), not a usage dump."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: defaults of the options this parser shares with the top level (see add_shared_argument)
        self.shared_defaults: dict[str, Any] = {}

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message} (see --help)")


#: what ``add_subparsers`` gives each module's ``add_command`` (its parsers are ``_Parser``)
CommandParsers: TypeAlias = "argparse._SubParsersAction[_Parser]"


class _TopParser(_Parser):
    """The top level: options given before the command go to the command that takes them, or are refused.

    ``telemetry-inspector --db X export`` and ``export --db X`` mean the same; given in both places, the
    value after the command wins. An option the command does not take (``--port 0 export``) is one line
    naming the command, exit 2, instead of being silently ignored.
    """

    commands: CommandParsers

    # Ignored override: argparse's overloads; the CLI calls only this form.
    def parse_known_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                         namespace: argparse.Namespace | None = None) -> tuple[argparse.Namespace, list[str]]:
        parsed, extras = super().parse_known_args(args, namespace)
        command = getattr(parsed, "subcommand", None)
        target: _Parser = self.commands.choices[command] if command else self
        for dest in self.shared_defaults:
            if hasattr(parsed, dest) and dest not in target.shared_defaults:
                raise UsageError(f"{PROG}: {self._flag_for(dest, getattr(parsed, dest))} does not apply to "
                                 f"'{command}' (see {PROG} {command} --help)")
        for action in target._actions:
            value = getattr(parsed, action.dest, None)
            if action.dest in self.shared_defaults and action.choices and hasattr(parsed, action.dest) \
                    and value not in action.choices:  # given before the command: checked by the top level only
                raise UsageError(f"{PROG}: {self._flag_for(action.dest, value)} {value} does not apply to "
                                 f"'{command}' (choose {' or '.join(map(str, action.choices))})")
        self._check_exclusive(target, parsed, command)
        for dest, default in target.shared_defaults.items():
            if not hasattr(parsed, dest):
                setattr(parsed, dest, default)
        return parsed, extras

    def _flag_for(self, dest: str, value: Any) -> str:
        """The top-level flag that set ``dest`` to ``value`` (``--no-https`` for https_port None)."""
        actions = [a for a in self._actions if a.dest == dest and a.option_strings]
        flag = next((a for a in actions if a.nargs == 0 and a.const == value), actions[0])
        return flag.option_strings[0]

    def _check_exclusive(self, target: _Parser, parsed: argparse.Namespace, command: str | None) -> None:
        """argparse checks a command's exclusive options among those after it; this checks a shared one
        given before it too (``--db X screenshot --demo``)."""
        for group in target._mutually_exclusive_groups:
            given = [a for a in group._group_actions
                     if hasattr(parsed, a.dest) and getattr(parsed, a.dest) != a.default]
            if len(given) > 1 and any(a.dest in target.shared_defaults for a in given):
                raise UsageError(f"{PROG} {command}: {given[0].option_strings[0]} and "
                                 f"{given[1].option_strings[0]} cannot go together (see --help)")


def whole_number(low: int, high: int | None = None, *, what: str, hint: str = "") -> Callable[[str], int]:
    """An argparse ``type`` taking a whole number in ``low``..``high`` (no upper bound when None).

    Errors read e.g. ``port must be 0-65535 (0 = any free port), got 70000``.
    """
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} is a whole number, got {text!r}") from None
        if value < low or (high is not None and value > high):
            allowed = f"{low}-{high}" if high is not None else f"{low} or more"
            raise argparse.ArgumentTypeError(f"{what} must be {allowed}{hint}, got {value}")
        return value

    return parse


_port = whole_number(0, 65535, what="port", hint=" (0 = any free port)")


def record_id(text: str) -> int:
    """An argparse ``type`` for a record id: ``12``, or ``#12`` as the table shows it."""
    value = text.strip().lstrip("#")
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"a record id is a whole number such as 12, got {text!r}")
    return int(value)


def add_shared_argument(parser: _Parser, container: argparse._ActionsContainer, *flags: str, default: Any,
                        **kwargs: Any) -> argparse.Action:
    """An option that may also come before the command (``--db X export``), added to ``container``
    (``parser`` or one of its groups).

    argparse lets a command's default overwrite a value parsed before the command, so the option
    defaults to SUPPRESS here and ``default`` is applied after parsing (by :class:`_TopParser`).
    Help texts must spell out the default themselves: ``%(default)s`` would read ``==SUPPRESS==``.
    """
    action = container.add_argument(*flags, default=argparse.SUPPRESS, **kwargs)
    parser.shared_defaults.setdefault(action.dest, default)
    return action


def add_server_options(parser: _Parser) -> None:
    """The options every command that runs the mock shares (``serve``, ``browser`` and the GUI)."""
    group = parser.add_argument_group("mock server")
    add_shared_argument(parser, group, "--host", default=DEFAULT_HOST,
                        help=f"address to listen on (default {DEFAULT_HOST}; anything else is reachable from the "
                             "network)")
    add_shared_argument(parser, group, "--port", type=_port, default=DEFAULT_PORT,
                        help=f"HTTP port (default {DEFAULT_PORT}; 0 = any free port)")
    add_shared_argument(parser, group, "--https-port", type=_port, default=DEFAULT_HTTPS_PORT,
                        help=f"HTTPS port for routed browsers (default {DEFAULT_HTTPS_PORT}; 0 = any free port)")
    add_shared_argument(parser, group, "--no-https", dest="https_port", action="store_const", const=None,
                        default=DEFAULT_HTTPS_PORT, help="do not start the HTTPS listener")
    add_shared_argument(parser, group, "--proxy-port", type=_port, default=None, metavar="PORT",
                        help="also run a loopback HTTP(S) proxy on PORT (0 = any free port; default off): "
                             "telemetry.refine.dev through it is recorded, every other host passes untouched")
    add_db_option(parser, group)
    add_shared_argument(parser, group, "--trust-proxy", action="store_true", default=False,
                        help="take the client IP from X-Forwarded-For (only behind your own proxy)")


def add_db_option(parser: _Parser, container: argparse._ActionsContainer | None = None) -> None:
    """``--db PATH`` with the app's default database, in ``container`` (default: ``parser`` itself)."""
    default = default_db()
    add_shared_argument(parser, container if container is not None else parser, "--db", default=default,
                        metavar="PATH",
                        help=f"SQLite database, or :memory: (default {default}; env {ENV_DB}, {ENV_HOME})")


def build_parser() -> _TopParser:
    """The full command line, shared by ``main`` and the docs."""
    parser = _TopParser(
        prog=PROG,
        description=f"{DISPLAY_NAME}: a local mock of telemetry.refine.dev that shows what a refine app sends. "
                    "Without a command, opens the window.",
        epilog="Options may come before or after the command; after it, they win. Before a command, only "
               "those it takes are accepted: the mock server options go with serve and browser, --db also "
               "with export, import, diff and screenshot, --theme light|dark with screenshot.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    add_server_options(parser)
    add_shared_argument(parser, parser, "--theme", choices=("system", "light", "dark"), default=None,
                        help="window colours (default: as last chosen, else the system's)")
    # dest "subcommand": run's CMD ... is args.command
    commands = parser.add_subparsers(dest="subcommand", metavar="COMMAND", parser_class=_Parser)
    parser.commands = commands

    serve = commands.add_parser("serve", help="run the mock headless and print each request as it arrives",
                                description="Run the mock of telemetry.refine.dev without a window.")
    add_server_options(serve)
    serve.add_argument("--json", action="store_true", help="print one JSON record per line (NDJSON) on stdout")
    serve.add_argument("--verbose", "-v", action="store_true",
                       help="under each line, what the request carried: the decoded payload or body, problems, notes")
    serve.set_defaults(handler=cmd_serve)
    for module in COMMAND_MODULES:
        importlib.import_module(module).add_command(commands)
    return parser


# -- serve ----------------------------------------------------------------

def open_store(path: str, *, start_session: bool = True) -> BeaconStore:
    """Open the journal; StoreError carries a one-line reason. ``start_session=False``: make no session now."""
    return BeaconStore(path, start_session=start_session)


def format_line(beacon: Beacon) -> str:
    """One human line per captured request (all values made terminal-safe)."""
    s = beacon.summary()
    when = datetime.fromisoformat(s.received_at.replace("Z", "+00:00")).astimezone().strftime("%H:%M:%S")
    head = f"{when}  #{s.id:<5} {s.kind:<10} {s.status.upper() if s.status != 'ok' else 'ok':<7} {s.method} {s.path}"
    if s.status != "ok":
        return printable(f"{head}  {'; '.join(beacon.problems)}")
    facts = []
    if s.hostname:
        facts.append(s.hostname)
    if s.version:
        facts.append(f"refine {s.version}")
    if s.resource_count is not None:
        facts.append(plural(s.resource_count, "resource"))
    if s.providers:
        facts.append(f"providers: {s.providers}")
    if s.project_id:
        facts.append(f"projectId {s.project_id}")
    if beacon.contact and beacon.contact.get("email"):
        facts.append(f"email {beacon.contact['email']}")
    browser = " on ".join(x for x in (s.browser, s.os) if x)
    if browser:
        facts.append(browser)
    if s.ip:
        facts.append(s.ip)
    dupes = [n for n in beacon.notes if n.startswith("duplicate")]
    if dupes:
        facts.append("DUPLICATE")
    return printable(f"{head}  {' · '.join(facts)}")


class LinePrinter:
    """Prints records from a queue on its own thread: request threads never wait on the terminal."""

    def __init__(self, out: TextIO, as_json: bool, *, verbose: bool = False) -> None:
        self.out = out
        self.as_json = as_json
        self.verbose = verbose  # each line followed by what the request carried, decoded and indented
        self._queue: queue.SimpleQueue[Beacon | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="line-printer", daemon=True)
        self._thread.start()

    def __call__(self, event: StoreEvent) -> None:
        if event.type == "appended" and event.beacon is not None:
            self._queue.put(event.beacon)

    # Under load, waking this thread and flushing once per record cost more than
    # decoding the record (see the README's Benchmarks): a burst is gathered for
    # a moment and written with one write; a lone request still prints at once
    # to the eye.
    COALESCE = 0.05

    def _run(self) -> None:
        stopping = False
        while not stopping:
            beacons = [self._queue.get()]
            if beacons[0] is not None:
                time.sleep(self.COALESCE)
            while True:
                try:
                    beacons.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            if any(b is None for b in beacons):
                stopping = True
                beacons = beacons[:next(i for i, b in enumerate(beacons) if b is None)]
            lines = [self._text(b) for b in beacons if b is not None]
            try:
                self._write("".join(lines))
            except ValueError:  # one unprintable line must not take the others with it
                for line in lines:
                    try:
                        self._write(line)
                    except (BrokenPipeError, ValueError):
                        pass
            except BrokenPipeError:  # reader went away; capture goes on
                pass

    def _text(self, beacon: Beacon) -> str:
        if self.as_json:
            return beacon.to_json() + "\n"
        if self.verbose:
            return "\n".join([format_line(beacon), *describe_beacon(beacon)]) + "\n"
        return format_line(beacon) + "\n"

    def _write(self, text: str) -> None:
        if text:
            self.out.write(text)
            self.out.flush()

    def close(self) -> None:
        """Print what is queued, then stop."""
        self._queue.put(None)
        self._thread.join(timeout=5)


def banner(listening: Listening, store: BeaconStore, certificate_ca: str | None, *,
           token: str | None = None, token_file: Path | None = None) -> str:
    """The start banner: URLs, pin, routing flags, and the journal token when the journal wants one."""
    lines = [f"{DISPLAY_NAME} {__version__}: mock of telemetry.refine.dev",
             f"  HTTP      {listening.http_url}/telemetry"]
    if listening.https_url and listening.spki_pin:
        lines += [
            f"  HTTPS     {listening.https_url}/telemetry"
            "  (certificate for telemetry.refine.dev, localhost, 127.0.0.1)",
            f"  SPKI pin  {listening.spki_pin}",
            f"  CA file   {certificate_ca}  (NODE_EXTRA_CA_CERTS, or trust it for hosts-file routing)",
        ]
    if listening.proxy_url:
        lines += [f"  Proxy     {listening.proxy_url}  (HTTPS_PROXY or curl -x: telemetry.refine.dev recorded, "
                  "other hosts passed through)"]
    lines += [f"  Journal   {listening.http_url}/__inspector/beacons"]
    if token:
        lines += [f"  Token     {token}  (the journal wants 'Authorization: Bearer <token>'; kept in {token_file})"]
    lines += [f"  Database  {store.path}  (session {store.session})"]
    if listening.https_port and listening.spki_pin:
        host = "127.0.0.1" if listening.host in ("0.0.0.0", "::", "") else listening.host
        lines += ["", "Route a real app's beacons here: start Chrome/Chromium/Edge with",
                  "  " + chromium_command_line(listening.https_port, listening.spki_pin, host),
                  f"or add '{hosts_file_line(host)}' to the hosts file (needs HTTPS on port 443 and a trusted CA)."]
    lines += ["", "Waiting for requests; Ctrl-C stops."]
    return "\n".join(lines)


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


def cmd_serve(args: argparse.Namespace) -> int:
    """``serve``: run the mock headless, one line (or JSON record) per request."""
    store = open_store(args.db)
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
    info = sys.stderr if args.json else sys.stdout
    if not is_loopback(args.host):
        print(f"warning: listening on {args.host}: other machines can send requests to this inspector; "
              "its journal answers only requests with the token below", file=sys.stderr)
    ca = str(server.certificate.ca_cert) if server.certificate else None
    print(banner(listening, store, ca, token=server.journal_token, token_file=server.token_file), file=info, flush=True)
    try:
        run_until_stopped(stop)
    finally:
        stop_capture(server, store, unsubscribe, printer, info)
    return 0


def stop_capture(server: InspectorServer, store: BeaconStore, unsubscribe: Callable[[], None],
                 printer: LinePrinter, info: TextIO) -> None:
    """Stop the mock, print what is still queued, close the journal and say how much was captured."""
    server.stop()
    unsubscribe()
    printer.close()
    captured = store.count(session=store.session)
    store.close()
    print(f"stopped: {plural(captured, 'request')} captured in session {store.session}", file=info, flush=True)


def cmd_gui(args: argparse.Namespace) -> int:
    """No command: open the window (Qt is imported only here)."""
    gui = importlib.import_module("inspector.app")
    run: Callable[[argparse.Namespace], int] = gui.run
    return run(args)


# Commands that have closed everything they opened (server, journal, printer, browser profile) by the
# time their handler returns. After them the console script leaves at once: tearing down the
# interpreter (Flask, cryptography, the User-Agent tables) took 0.3-0.6 s after "stopped" on Ctrl-C.
# The window is not among them: Qt and QSettings finish their work in the normal exit.
LEAVE_AT_ONCE = frozenset({"serve", "browser"})


def main(argv: Sequence[str] | None = None, *, leave_at_once: bool = False) -> int:
    """Run the command line; returns the exit status.

    ``leave_at_once`` (the console script's) ends the process as soon as a
    command in :data:`LEAVE_AT_ONCE` returns, its output flushed.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        handler = getattr(args, "handler", cmd_gui)
        status = handler(args)
        if leave_at_once and getattr(args, "subcommand", None) in LEAVE_AT_ONCE:
            _leave(status)
        return status
    except UsageError as exc:
        print(exc, file=sys.stderr)
        return 2
    except (StoreError, ServerError) as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _leave(status: int) -> NoReturn:
    """End the process now, with ``status``, once what was printed is out."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can be said
            pass
    logging.shutdown()
    os._exit(status)


def console() -> NoReturn:
    """The ``telemetry-inspector`` console script and ``python -m mockserver``."""
    sys.exit(main(leave_at_once=True))


if __name__ == "__main__":
    console()
