"""``telemetry-inspector verify URL``: a page in a routed headless browser, judged (exit 0 pass, 1 fail, 2 error).

The check itself is :func:`mockserver.reach.verify.run_verify`; this module reads the
arguments and prints the result (human lines, ``--json``, ``--junit``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from mockserver.cli.options import BROWSER_HELP, CommandParsers, add_verdict_options, seconds
from mockserver.core.jsontext import dumps_strict
from mockserver.core.text import command_message

if TYPE_CHECKING:
    from mockserver.reach.verify import VerifyResult
    from mockserver.records.verdict import Verdict

DEFAULT_WITHIN = 5.0
DEFAULT_LOAD_TIMEOUT = 30.0


def add_command(subparsers: CommandParsers) -> None:
    """Register ``verify URL``."""
    parser = subparsers.add_parser(
        "verify", help="load a page in a routed headless browser and check what it sent (exit 0/1/2)",
        description="Load URL in headless Chrome/Chromium/Edge or Firefox routed to a mock of telemetry.refine.dev, "
                    "wait for the page to load and a quiet period, print every captured request decoded, and a "
                    "verdict. Exit 0 pass, 1 fail, 2 could not run.")
    parser.add_argument("url", metavar="URL", help="the app's page, e.g. http://localhost:5173/")
    add_verdict_options(parser, within=DEFAULT_WITHIN, quiet_after="the page loaded", expect_default="any")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object on stdout")
    parser.add_argument("--server", metavar="URL",
                        help="capture with a running inspector (its HTTP or HTTPS URL) instead of an own mock; "
                             "everything it receives meanwhile counts")
    parser.add_argument("--token", metavar="TOKEN", default=None,
                        help="with --server: the journal token of an inspector listening beyond loopback "
                             "(default: env TELEMETRY_INSPECTOR_TOKEN, else this machine's token file "
                             "for a loopback URL)")
    parser.add_argument("--browser", metavar="PATH", help=BROWSER_HELP)
    parser.add_argument("--load-timeout", type=seconds, default=DEFAULT_LOAD_TIMEOUT, metavar="SECONDS",
                        help="give up when the page has not loaded after this long (default %(default)g)")
    parser.set_defaults(handler=cmd_verify)


def _print_human(result: VerifyResult, out: TextIO, full_urls: bool = False) -> None:
    from mockserver.records.lines import format_line
    from mockserver.records.verdict import describe_beacon, requests_text

    verdict = result.verdict
    out.write(f"\n{requests_text(verdict.count, verdict.preflights)} to telemetry.refine.dev from {result.url}\n")
    for beacon in verdict.beacons:
        out.write(format_line(beacon) + "\n")
        for line in describe_beacon(beacon):
            out.write(line + "\n")
    listing = verdict.egress_lines(full_urls)
    out.write("".join(f"\n{line}" for line in listing) + ("\n" if listing else ""))
    out.write(f"\n{result.route_proof[0].upper()}{result.route_proof[1:]}\n" if result.route_proof else "\n")
    out.write(verdict.summary() + "\n")
    for advice in verdict.advice:
        out.write(f"How to opt out: {advice}\n")
    out.flush()


def cmd_verify(args: argparse.Namespace) -> int:
    """``verify``: exit 0 pass, 1 fail, 2 could not run."""
    from mockserver.reach.verify import CouldNotRun, run_verify
    from mockserver.records.lines import format_line
    from mockserver.records.verdict import Expectation, ExpectationError, FieldCheck, describe_beacon

    started = time.monotonic()
    test_name = f"{args.url} (expect {args.expect})"

    def progress(text: str) -> None:
        print(command_message("verify", text), file=sys.stderr, flush=True)

    def could_not_run(reason: str) -> int:
        print(command_message("verify", reason), file=sys.stderr, flush=True)
        if args.json:
            failure = {"verdict": "ERROR", "passed": False, "error": reason, "url": args.url}
            print(dumps_strict(failure, ensure_ascii=True), flush=True)
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
                            progress=progress, server_token=args.token, egress=args.egress,
                            on_beacon=lambda b: progress(f"captured {format_line(b)}"),
                            on_other=lambda r: progress(f"other host: {r.line(args.full_urls)}"))
    except CouldNotRun as exc:
        return could_not_run(str(exc))
    verdict = result.verdict
    if args.json:
        data = {"url": result.url, **verdict.to_dict(args.full_urls), "within": args.within,
                "load_seconds": round(result.load_seconds, 3), "seconds": round(result.seconds, 3),
                "browser": result.browser, "server": result.server, "notes": result.notes,
                "route_proven": bool(result.route_proof), "route_proof": result.route_proof}
        print(dumps_strict(data), flush=True)
    else:
        _print_human(result, sys.stdout, args.full_urls)
    if args.junit:
        lines = []
        for beacon in verdict.beacons:
            lines += [format_line(beacon), *describe_beacon(beacon)]
        error = _write_junit_safely(args.junit, test_name, verdict, result.seconds, output="\n".join(lines))
        if error:
            print(command_message("verify", error), file=sys.stderr)
            return 2
    return verdict.exit_code


def _writable(path: str) -> bool:
    target = Path(path).expanduser()
    parent = target.parent if str(target.parent) else Path(".")
    return parent.is_dir() and not target.is_dir()


def _write_junit_safely(path: str, name: str, verdict: Verdict | None, seconds: float, *,
                        error: str | None = None, output: str = "") -> str | None:
    from mockserver.records.verdict import write_junit

    try:
        write_junit(Path(path).expanduser(), name=name, verdict=verdict, seconds=seconds, error=error,
                    output=output, suite="telemetry-inspector verify")
    except OSError as exc:
        return f"cannot write --junit {path}: {exc.strerror or exc}"
    return None
