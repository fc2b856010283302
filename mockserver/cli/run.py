"""``telemetry-inspector run -- CMD …``: a program with telemetry.refine.dev routed to an own mock.

The routing is :class:`mockserver.reach.noderun.RoutedNode`; this module runs the command,
prints each request on stderr as it arrives and, with ``--expect``, judges them.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from mockserver.cli.options import PROG, CommandParsers, seconds
from mockserver.core.text import plural
from mockserver.records.lines import format_line
from mockserver.records.verdict import Expectation, ExpectationError, FieldCheck, Verdict, judge, write_junit

DEFAULT_WITHIN = 1.0


def add_command(subparsers: CommandParsers) -> None:
    """Register ``run [--expect …] [--within S] -- CMD …``."""
    parser = subparsers.add_parser(
        "run", help="run a Node program (e.g. npx refine build) with telemetry.refine.dev routed to the mock",
        description="Run CMD with telemetry.refine.dev routed to an own mock (Node: a --require preload in "
                    "NODE_OPTIONS and NODE_EXTRA_CA_CERTS), show what it sent. Exit status: the verdict's when "
                    "--expect is given (0 pass, 1 fail), else the command's; 2 when it could not run.")
    parser.add_argument("--expect", metavar="none|any|N",
                        help="judge what the command sent: none (e.g. with REFINE_NO_TELEMETRY=true), any, or N")
    parser.add_argument("--within", type=seconds, default=DEFAULT_WITHIN, metavar="SECONDS",
                        help="after the command exits, wait until no request came for this long (default %(default)g)")
    parser.add_argument("--field", action="append", default=[], metavar="PATH=VALUE",
                        help="with --expect: each request's payload must have PATH equal to VALUE; repeatable")
    parser.add_argument("--junit", metavar="FILE", help="with --expect: also write a JUnit XML report")
    parser.add_argument("command", nargs=argparse.REMAINDER, metavar="-- CMD ...",
                        help="the program and its arguments, after --")
    parser.set_defaults(handler=cmd_run)


def cmd_run(args: argparse.Namespace) -> int:
    """``run``: the verdict's exit status with ``--expect``, else the command's."""
    from mockserver.cli.output import LinePrinter
    from mockserver.reach.noderun import RoutedNode, run_child, wait_quiet
    from mockserver.serving.probe import PROBE_WAIT, UNPROVEN
    from mockserver.serving.server import ServerError
    from mockserver.storage.store import StoreError

    prog = f"{PROG} run"
    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]

    def say(text: str) -> None:
        print(f"{prog}: {text}", file=sys.stderr, flush=True)

    if not command:
        say("no command given: telemetry-inspector run [--expect none] -- npx refine build")
        return 2
    try:
        expectation = Expectation.parse(args.expect) if args.expect else None
        fields = [FieldCheck.parse(text) for text in args.field]
    except ExpectationError as exc:
        say(str(exc))
        return 2
    if (fields or args.junit) and expectation is None:
        expectation = Expectation("any")
    started = time.monotonic()
    routed = RoutedNode()
    try:
        try:
            listening = routed.start()
        except (ServerError, StoreError) as exc:
            say(f"cannot start the mock: {exc}")
            return 2
        say(f"telemetry.refine.dev -> {listening.https_url} for {command[0]} "
            "(NODE_OPTIONS preload + NODE_EXTRA_CA_CERTS)")
        # stderr: the command's own output keeps stdout. Each request with what it carried, decoded.
        printer = LinePrinter(sys.stderr, False, verbose=True)
        unsubscribe = routed.store.subscribe(printer)
        try:
            status = run_child(command, routed.env(), say)
            if status is None:
                return 2
            wait_quiet(routed.store, args.within)
            proven = routed.route_proven(PROBE_WAIT if expectation is not None and not routed.store.count() else 0)
        finally:
            unsubscribe()
            printer.close()
        captured = routed.store.query()
    finally:
        routed.close()
    if status != 0:
        say(f"{command[0]} exited with status {status}")
    if expectation is None:
        say(f"{plural(len(captured), 'request')} to telemetry.refine.dev")
        return status
    verdict = judge(captured, expectation, fields)  # each request was shown, decoded, as it arrived
    if verdict.passed and not captured and not proven:
        reason = (f"{UNPROVEN} (no Node process of {command[0]} sent the routing preload's probe: NODE_OPTIONS "
                  "was dropped or replaced, the program is not Node (Bun and Deno are not routed), or it ended "
                  "at once)")
        say(reason)
        if args.junit:
            _write_junit(args.junit, command, expectation, None, started, error=reason, say=say)
        return 2
    say("route proven: the routing preload's probe reached this inspector" if proven
        else "route not proven: no probe arrived from the preload")
    say(verdict.summary())
    for advice in verdict.advice:
        say(f"how to opt out: {advice}")
    if args.junit and not _write_junit(args.junit, command, expectation, verdict, started, say=say):
        return 2
    return verdict.exit_code


def _write_junit(path: str, command: Sequence[str], expectation: Expectation, verdict: Verdict | None,
                 started: float, *, say: Callable[[str], None], error: str | None = None) -> bool:
    """Write ``run``'s JUnit report; False (after saying why) when it cannot be written."""
    output = "\n".join(format_line(b) for b in verdict.beacons) if verdict is not None else ""
    try:
        write_junit(Path(path).expanduser(), name=f"{' '.join(command)} (expect {expectation})",
                    verdict=verdict, seconds=time.monotonic() - started, output=output, error=error,
                    suite="telemetry-inspector run")
    except OSError as exc:
        say(f"cannot write --junit {path}: {exc.strerror or exc}")
        return False
    return True


