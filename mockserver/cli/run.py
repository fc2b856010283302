"""``telemetry-inspector run -- CMD …``: a program with telemetry.refine.dev routed to an own mock.

The routing is :class:`mockserver.reach.noderun.RoutedNode`; this module runs the command,
prints each request on stderr as it arrives, lists the other hosts it contacted (the preload's
report, the proxy's log) and, with ``--expect``, judges them (``--egress none``: those too).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from mockserver.cli.options import CommandParsers, add_shared_argument, add_verdict_options, port_number
from mockserver.core.text import command_message, plural

if TYPE_CHECKING:
    from mockserver.records.verdict import Expectation, Verdict

DEFAULT_WITHIN = 1.0


def add_command(subparsers: CommandParsers) -> None:
    """Register ``run [--expect …] [--within S] [--proxy-port N] [--egress …] -- CMD …``."""
    parser = subparsers.add_parser(
        "run", help="run a Node program (e.g. npx refine build) with telemetry.refine.dev routed to the mock",
        description="Run CMD with telemetry.refine.dev routed to an own mock (Node: a --require preload in "
                    "NODE_OPTIONS and NODE_EXTRA_CA_CERTS; with --proxy-port, anything that honours HTTPS_PROXY), "
                    "show what it sent and which other hosts it contacted. Exit status: the verdict's when "
                    "--expect is given (0 pass, 1 fail), else the command's; 2 when it could not run.")
    add_verdict_options(parser, within=DEFAULT_WITHIN, quiet_after="the command exits", expect_default=None)
    add_shared_argument(parser, parser, "--proxy-port", type=port_number, default=None, metavar="PORT",
                        help="also run the scoped proxy on PORT (0 = any free port) and point the command at it "
                             "(HTTPS_PROXY, HTTP_PROXY, NODE_USE_ENV_PROXY=1; loopback stays direct): curl, Python "
                             "and Node 24 are routed too, their CA in $TELEMETRY_INSPECTOR_CA_FILE")
    parser.add_argument("command", nargs=argparse.REMAINDER, metavar="-- CMD ...",
                        help="the program and its arguments, after --")
    parser.set_defaults(handler=cmd_run)


def cmd_run(args: argparse.Namespace) -> int:
    """``run``: the verdict's exit status with ``--expect``, else the command's."""
    from mockserver.cli.output import LinePrinter
    from mockserver.reach.noderun import RoutedNode, run_child, wait_quiet
    from mockserver.records.egress import egress_lines
    from mockserver.records.verdict import Expectation, ExpectationError, FieldCheck, judge
    from mockserver.serving.probe import PROBE_WAIT
    from mockserver.serving.server import ServerError
    from mockserver.storage.store import StoreError

    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]

    def say(text: str) -> None:
        print(command_message("run", text), file=sys.stderr, flush=True)

    if not command:
        say("no command given: telemetry-inspector run [--expect none] -- npx refine build")
        return 2
    try:
        expectation = Expectation.parse(args.expect) if args.expect else None
        fields = [FieldCheck.parse(text) for text in args.field]
    except ExpectationError as exc:
        say(str(exc))
        return 2
    if args.egress == "none" and expectation is None:
        say("--egress none is judged beside the telemetry verdict: add --expect none, any or N")
        return 2
    if (fields or args.junit) and expectation is None:
        expectation = Expectation("any")
    started = time.monotonic()
    routed = RoutedNode(proxy_port=args.proxy_port)
    try:
        try:
            listening = routed.start()
        except (ServerError, StoreError) as exc:
            say(f"cannot start the mock: {exc}")
            return 2
        say(f"telemetry.refine.dev -> {listening.https_url} for {command[0]} "
            "(NODE_OPTIONS preload + NODE_EXTRA_CA_CERTS)")
        if listening.proxy_url:
            say(f"proxy {listening.proxy_url} in HTTPS_PROXY and HTTP_PROXY (NO_PROXY: loopback); "
                "the mock's CA in $TELEMETRY_INSPECTOR_CA_FILE")
        # stderr: the command's own output keeps stdout. Each request with what it carried, decoded.
        printer = LinePrinter(sys.stderr, False, verbose=True)
        unsubscribe = routed.store.subscribe(printer)
        try:
            status = run_child(command, routed.env(), say)
            if status is None:
                return 2
            wait_quiet(routed.store, args.within)
            proof = routed.route_proof(PROBE_WAIT if expectation is not None and not routed.store.count() else 0)
        finally:
            unsubscribe()
            printer.close()
        captured = routed.store.query()
        report = routed.other_requests()
        intercepted = routed.intercepted
    finally:
        routed.close()
    if status != 0:
        say(f"{command[0]} exited with status {status}")
    for note in report.notes:
        say(note)
    if expectation is None:
        _show_egress(egress_lines(report.requests, args.full_urls), say)
        say(f"{plural(len(captured), 'request')} to telemetry.refine.dev")
        return status
    # Each request was shown, decoded, as it arrived; the other hosts go under the verdict.
    verdict = judge(captured, expectation, fields, others=report.requests, egress=args.egress)
    _show_egress(verdict.egress_lines(args.full_urls), say)
    if verdict.passed and not captured and proof is None:
        reason = _unproven(command[0], proxied=args.proxy_port is not None, intercepted=intercepted)
        say(reason)
        if args.junit:
            _write_junit(args.junit, command, expectation, None, started, error=reason, say=say)
        return 2
    say(f"route proven: {proof}" if proof else "route not proven: no probe arrived from the preload")
    say(verdict.summary())
    for advice in verdict.advice:
        say(f"how to opt out: {advice}")
    if args.junit and not _write_junit(args.junit, command, expectation, verdict, started, say=say):
        return 2
    return verdict.exit_code


def _show_egress(lines: list[str], say: Callable[[str], None]) -> None:
    """The other hosts' listing on stderr: its title as a message, each request indented under it."""
    if lines:
        say(lines[0])
        for line in lines[1:]:
            print(line, file=sys.stderr, flush=True)


def _unproven(program: str, *, proxied: bool, intercepted: int) -> str:
    """Why "nothing was sent" cannot be claimed: no Node process was routed, nothing used the proxy."""
    from mockserver.serving.probe import UNPROVEN

    why = (f"no Node process of {program} sent the routing preload's probe: NODE_OPTIONS was dropped or "
           "replaced, the program is not Node (Bun and Deno are not routed), or it ended at once")
    if intercepted:
        why += (f"; the proxy tunneled {plural(intercepted, 'connection')} to telemetry.refine.dev but no "
                "request came through: the program does not trust the mock's CA ($TELEMETRY_INSPECTOR_CA_FILE)")
    elif proxied:
        why += "; nothing went through the proxy either (the program does not honour HTTPS_PROXY)"
    return f"{UNPROVEN} ({why})"


def _write_junit(path: str, command: Sequence[str], expectation: Expectation, verdict: Verdict | None,
                 started: float, *, say: Callable[[str], None], error: str | None = None) -> bool:
    """Write ``run``'s JUnit report; False (after saying why) when it cannot be written."""
    from mockserver.records.lines import format_line
    from mockserver.records.verdict import write_junit

    output = "\n".join(format_line(b) for b in verdict.beacons) if verdict is not None else ""
    try:
        write_junit(Path(path).expanduser(), name=f"{' '.join(command)} (expect {expectation})",
                    verdict=verdict, seconds=time.monotonic() - started, output=output, error=error,
                    suite="telemetry-inspector run")
    except OSError as exc:
        say(f"cannot write --junit {path}: {exc.strerror or exc}")
        return False
    return True


