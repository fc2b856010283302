"""``telemetry-inspector verify URL``: load a page in a routed headless browser and judge what it sent.

QA's question "does opting out really send nothing?" as one command with an
exit status: 0 pass, 1 fail, 2 could not run (no browser, the URL does not
answer, bad arguments). The URL is checked before anything starts, so an app
that is not running can never "pass" ``--expect none`` by sending nothing.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from .beacon import Beacon
from .browser import (BrowserError, BrowserNotFound, RoutedBrowser, check_url, find_browser,
                      launch_routed_browser)
from .config import ENV_BROWSER
from .jsontext import dumps_strict
from .probe import UNPROVEN, RouteNotProven
from .remote import RemoteError, RemoteInspector
from .server import InspectorServer, ServerError
from .store import BeaconStore, StoreError
from .verdict import (
    Expectation, ExpectationError, FieldCheck, Verdict, describe_beacon, judge, requests_text, write_junit,
)
from .text import plural

DEFAULT_WITHIN = 5.0
DEFAULT_LOAD_TIMEOUT = 30.0
POLL_SECONDS = 0.2


class CouldNotRun(Exception):
    """The check could not be made (exit 2); the message is one line."""


@dataclass
class VerifyResult:
    """What a finished check found."""

    url: str
    verdict: Verdict
    load_seconds: float
    browser: str
    seconds: float
    server: str  # where the requests were captured
    notes: list[str] = field(default_factory=list)
    route_proof: str = ""  # how the route to the inspector was proven (it always is, or CouldNotRun)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not math.isfinite(value) or value < 0 or value > 3600:
        raise argparse.ArgumentTypeError(f"seconds must be between 0 and 3600, got {text}")
    return value


class _Source:
    """Where captured requests are read from: our own in-memory mock, or a running inspector."""

    def __init__(self, server_url: str | None, token: str | None = None) -> None:
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.store: BeaconStore | None = None
        self.server: InspectorServer | None = None
        self.remote: RemoteInspector | None = None
        if server_url:
            try:
                self.remote = RemoteInspector.connect(server_url, token=token)
            except RemoteError as exc:
                raise CouldNotRun(str(exc)) from exc
            self.https_port, self.spki_pin, self.host = (self.remote.https_port, self.remote.spki_pin,
                                                         self.remote.host)
            self.where = self.remote.base_url
            return
        # A private certificate per run: nothing of the user's is touched, and
        # parallel runs (CI jobs) never race on one certificate folder.
        self._tmp = tempfile.TemporaryDirectory(prefix="telemetry-inspector-verify-")
        try:
            self.store = BeaconStore(":memory:")
            self.server = InspectorServer(self.store, port=0, https_port=0, certificate_dir=Path(self._tmp.name))
            listening = self.server.start()
        except (StoreError, ServerError) as exc:
            self.close()
            raise CouldNotRun(f"cannot start the mock: {exc}") from exc
        assert listening.https_port and listening.spki_pin
        self.https_port, self.spki_pin, self.host = listening.https_port, listening.spki_pin, "127.0.0.1"
        self.where = f"{listening.https_url} (own mock, in memory)"

    def last_id(self) -> int:
        if self.remote is not None:
            try:
                return self.remote.last_id()
            except RemoteError as exc:
                raise CouldNotRun(f"cannot read the inspector's journal: {exc}") from exc
        assert self.store is not None
        return self.store.last_id()

    def since(self, last: int) -> list[Beacon]:
        if self.remote is not None:
            try:
                return self.remote.beacons(since=last)
            except RemoteError as exc:
                raise CouldNotRun(f"lost the inspector: {exc}") from exc
        assert self.store is not None
        return self.store.query(since=last)

    def probe_seen(self, nonce: str, timeout: float) -> bool:
        if self.remote is not None:
            try:
                return self.remote.probe_seen(nonce, timeout)
            except RemoteError as exc:
                raise CouldNotRun(f"{UNPROVEN} ({exc})") from exc
        assert self.server is not None
        return bool(self.server.app.extensions["probes"].wait(nonce, timeout))

    def close(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None
        if self.store is not None:
            self.store.close()
            self.store = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


def run_verify(url: str, *, expectation: Expectation, fields: Sequence[FieldCheck] = (),
               within: float = DEFAULT_WITHIN, server_url: str | None = None, browser: str | None = None,
               load_timeout: float = DEFAULT_LOAD_TIMEOUT, progress: Callable[[str], None] = lambda _: None,
               on_beacon: Callable[[Beacon], None] = lambda _: None,
               server_token: str | None = None) -> VerifyResult:
    """Load ``url`` in a headless routed browser, wait ``within`` seconds of quiet, judge what arrived.

    The quiet period restarts when a request arrives (capped at
    ``max(3 * within, within + 10)`` seconds after load), so a second beacon
    just after the first is still counted. ``server_token``: the journal token for
    ``server_url`` (see :func:`mockserver.remote.journal_token`). Raises :class:`CouldNotRun`.
    """
    started = time.monotonic()
    try:
        executable = find_browser(browser)
    except BrowserNotFound as exc:
        raise CouldNotRun(str(exc)) from exc
    reason = check_url(url)
    if reason:
        raise CouldNotRun(reason)
    source = _Source(server_url, server_token)
    routed = None
    try:
        progress(f"capturing at {source.where}")
        try:
            routed = launch_routed_browser("about:blank", source.https_port, source.spki_pin, host=source.host,
                                           browser=executable, headless=True, remote_debugging=True)
        except (BrowserNotFound, BrowserError) as exc:
            raise CouldNotRun(str(exc)) from exc
        progress(f"browser {executable} (headless, temporary profile)")
        _prove(routed, source, "the browser's empty tab", page_policy=False)
        last = source.last_id()  # only what arrives from here on counts
        progress(f"loading {url}")
        try:
            load_seconds = routed.load(url, load_timeout)
        except BrowserError as exc:
            raise CouldNotRun(str(exc)) from exc
        _prove(routed, source, f"the page {url}")
        route_proof = (f"route proven: probes loaded in the browser before and after the page loaded "
                       f"reached {source.where}")
        progress(route_proof)
        progress(f"page loaded in {load_seconds:.1f} s; waiting for {within:g} s without requests")
        loaded = last_activity = time.monotonic()
        cap = loaded + max(3 * within, within + 10)
        captured: list[Beacon] = []
        shown_left: int | None = None
        notes: list[str] = []
        while True:
            arrived = source.since(last)
            for beacon in arrived:
                last = max(last, beacon.id or last)
                captured.append(beacon)
                on_beacon(beacon)
            if arrived:
                last_activity = time.monotonic()
            now = time.monotonic()
            if now - last_activity >= within:
                break
            if now >= cap:
                notes.append(f"requests kept arriving; stopped watching {now - loaded:.0f} s after load")
                progress(notes[-1])
                break
            left = math.ceil(within - (now - last_activity))
            if left != shown_left:
                shown_left = left
                progress(f"{plural(len(captured), 'request')} so far; {left} s of quiet to go")
            time.sleep(POLL_SECONDS)
        # Anything committed during the last poll interval still counts.
        for beacon in source.since(last):
            captured.append(beacon)
            on_beacon(beacon)
        verdict = judge(captured, expectation, fields)
        return VerifyResult(url=url, verdict=verdict, load_seconds=load_seconds, browser=executable,
                            seconds=time.monotonic() - started, server=source.where, notes=notes,
                            route_proof=route_proof)
    finally:
        if routed is not None:
            routed.stop()
        source.close()


def _prove(routed: RoutedBrowser, source: _Source, where: str, *, page_policy: bool = True) -> None:
    """Raise CouldNotRun unless a probe loaded in ``routed``'s page reaches ``source``."""
    try:
        routed.prove_route(source.probe_seen, where=where, page_policy=page_policy)
    except RouteNotProven as exc:
        raise CouldNotRun(f"{UNPROVEN} ({exc})") from exc


# -- the command -------------------------------------------------------------------

def add_command(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``verify URL``."""
    parser = subparsers.add_parser(
        "verify", help="load a page in a routed headless browser and check what it sent (exit 0/1/2)",
        description="Load URL in headless Chrome/Chromium/Edge routed to a mock of telemetry.refine.dev, wait "
                    "for the page to load and a quiet period, print every captured request decoded, and a verdict. "
                    "Exit 0 pass, 1 fail, 2 could not run.")
    parser.add_argument("url", metavar="URL", help="the app's page, e.g. http://localhost:5173/")
    parser.add_argument("--expect", default="any", metavar="none|any|N",
                        help="none (the opt-out check), any (default: one or more) or exactly N requests")
    parser.add_argument("--within", type=_seconds, default=DEFAULT_WITHIN, metavar="SECONDS",
                        help="quiet period after the page loaded: stop once no request came for this long "
                             "(default %(default)g)")
    parser.add_argument("--field", action="append", default=[], metavar="PATH=VALUE",
                        help="each request's payload must have PATH (dotted, e.g. providers.auth) equal to VALUE "
                             "(JSON when it parses, else text); repeatable")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object on stdout")
    parser.add_argument("--junit", metavar="FILE", help="also write a JUnit XML report to FILE")
    parser.add_argument("--server", metavar="URL",
                        help="capture with a running inspector (its HTTP or HTTPS URL) instead of an own mock; "
                             "everything it receives meanwhile counts")
    parser.add_argument("--token", metavar="TOKEN", default=None,
                        help="with --server: the journal token of an inspector listening beyond loopback "
                             "(default: env TELEMETRY_INSPECTOR_TOKEN, else this machine's token file "
                             "for a loopback URL)")
    parser.add_argument("--browser", metavar="PATH",
                        help=f"Chrome/Chromium/Edge executable (default: env {ENV_BROWSER}, then the usual places)")
    parser.add_argument("--load-timeout", type=_seconds, default=DEFAULT_LOAD_TIMEOUT, metavar="SECONDS",
                        help="give up when the page has not loaded after this long (default %(default)g)")
    parser.set_defaults(handler=cmd_verify)


def _print_human(result: VerifyResult, out: TextIO) -> None:
    verdict = result.verdict
    out.write(f"\n{requests_text(verdict.count, verdict.preflights)} to telemetry.refine.dev from {result.url}\n")
    for beacon in verdict.beacons:
        out.write(_line(beacon) + "\n")
        for line in describe_beacon(beacon):
            out.write(line + "\n")
    out.write(f"\n{result.route_proof[0].upper()}{result.route_proof[1:]}\n" if result.route_proof else "\n")
    out.write(verdict.summary() + "\n")
    for advice in verdict.advice:
        out.write(f"How to opt out: {advice}\n")
    out.flush()


def _line(beacon: Beacon) -> str:
    from .cli import format_line

    return format_line(beacon)


def cmd_verify(args: argparse.Namespace) -> int:
    """``verify``: exit 0 pass, 1 fail, 2 could not run."""
    from .cli import PROG

    prog = f"{PROG} verify"
    started = time.monotonic()
    test_name = f"{args.url} (expect {args.expect})"

    def progress(text: str) -> None:
        print(f"{prog}: {text}", file=sys.stderr, flush=True)

    def could_not_run(reason: str) -> int:
        print(f"{prog}: {reason}", file=sys.stderr, flush=True)
        if args.json:
            print(dumps_strict({"verdict": "ERROR", "passed": False, "error": reason, "url": args.url}, ensure_ascii=True),
                  flush=True)
        if args.junit:
            _write_junit_safely(args.junit, test_name, None, time.monotonic() - started, error=reason)
        return 2

    try:
        expectation = Expectation.parse(args.expect)
        fields = [FieldCheck.parse(text) for text in args.field]
    except ExpectationError as exc:
        return could_not_run(str(exc))
    if args.junit and not _writable(args.junit):
        return could_not_run(f"--junit {args.junit}: cannot write there")
    try:
        result = run_verify(args.url, expectation=expectation, fields=fields, within=args.within,
                            server_url=args.server, browser=args.browser, load_timeout=args.load_timeout,
                            progress=progress, server_token=args.token,
                            on_beacon=lambda b: progress(f"captured {_line(b)}"))
    except CouldNotRun as exc:
        return could_not_run(str(exc))
    verdict = result.verdict
    if args.json:
        data = {"url": result.url, **verdict.to_dict(), "within": args.within,
                "load_seconds": round(result.load_seconds, 3), "seconds": round(result.seconds, 3),
                "browser": result.browser, "server": result.server, "notes": result.notes,
                "route_proven": bool(result.route_proof), "route_proof": result.route_proof}
        print(dumps_strict(data), flush=True)
    else:
        _print_human(result, sys.stdout)
    if args.junit:
        lines = []
        for beacon in verdict.beacons:
            lines += [_line(beacon), *describe_beacon(beacon)]
        error = _write_junit_safely(args.junit, test_name, verdict, result.seconds, output="\n".join(lines))
        if error:
            print(f"{prog}: {error}", file=sys.stderr)
            return 2
    return verdict.exit_code


def _writable(path: str) -> bool:
    target = Path(path).expanduser()
    parent = target.parent if str(target.parent) else Path(".")
    return parent.is_dir() and not target.is_dir()


def _write_junit_safely(path: str, name: str, verdict: Verdict | None, seconds: float, *,
                        error: str | None = None, output: str = "") -> str | None:
    try:
        write_junit(Path(path).expanduser(), name=name, verdict=verdict, seconds=seconds, error=error,
                    output=output, suite="telemetry-inspector verify")
    except OSError as exc:
        return f"cannot write --junit {path}: {exc.strerror or exc}"
    return None
