"""``telemetry-inspector send``: the exact beacon @refinedev/core sends for given inputs, composed and sent.

Exit 0 when the target answered 2xx, 1 when refine would send nothing or the target refused it,
2 for bad arguments or no connection. The composer is :mod:`mockserver.reach.compose`.
"""

from __future__ import annotations

import argparse
import sys

from mockserver.cli.options import CommandParsers, UsageError, whole_number
from mockserver.core.checks import PROVIDERS
from mockserver.core.config import DEFAULT_URL, is_loopback
from mockserver.core.payloads import BROWSER, DEFAULT_PROVIDERS, DEFAULT_RESOURCES, DEFAULT_VERSION, ENCODINGS
from mockserver.core.text import command_message, printable


def _providers(text: str) -> list[str]:
    """An argparse ``type``: ``data,router`` as provider names, each one refine knows."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in PROVIDERS]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown provider {unknown[0]!r}; choose from {','.join(PROVIDERS)} (or '' for none)")
    return names


def add_command(subparsers: CommandParsers) -> None:
    """Register ``send``."""
    parser = subparsers.add_parser(
        "send", help="send the exact beacon @refinedev/core sends for given inputs (exit 0 sent, 1 refine "
                     "would send nothing, 2 error)",
        description="Compose the browser beacon @refinedev/core sends for these inputs, byte for byte "
                    "(key order, JSON.stringify, btoa/Buffer, no URL-encoding), and send it. "
                    "Exit 0 when the target answered 2xx, 1 when refine would send nothing (btoa refuses a "
                    "character above U+00FF) or the target refused it, 2 for bad arguments or no connection.")
    parser.add_argument("--to", default=DEFAULT_URL, metavar="BASE_URL",
                        help="base URL of the mock (default %(default)s, the local inspector); /telemetry is "
                             "appended")
    parser.add_argument("--version", dest="refine_version", default=DEFAULT_VERSION, metavar="V",
                        help="the @refinedev/core version to report (default %(default)s)")
    parser.add_argument("--providers", type=_providers, default=list(DEFAULT_PROVIDERS), metavar="LIST",
                        help="comma-separated providers that are on; the others are sent as false "
                             f"(default {','.join(DEFAULT_PROVIDERS)}; known: {','.join(PROVIDERS)})")
    parser.add_argument("--resources", type=whole_number(0, what="resource count"), default=DEFAULT_RESOURCES,
                        metavar="N",
                        help="resourceCount: the length of the resources prop (default %(default)s)")
    parser.add_argument("--project-id", metavar="ID", help="options.projectId (omitted when not given, as refine does)")
    parser.add_argument("--encoding", choices=ENCODINGS, default=BROWSER,
                        help="browser = btoa (Latin-1, refuses above U+00FF), node = Buffer (UTF-8) "
                             "(default %(default)s)")
    parser.add_argument("--referer", metavar="ORIGIN",
                        help="a Referer such as http://localhost:5173/ (the app's origin, as a browser sends it)")
    parser.add_argument("--dry-run", action="store_true", help="print the request, send nothing")
    parser.set_defaults(handler=cmd_send)


def cmd_send(args: argparse.Namespace) -> int:
    """``send``: compose, print, send; exit 0 / 1 / 2 as documented."""
    from mockserver.core.payloads import BtoaRefused
    from mockserver.reach.compose import SendError, check_base_url, compose_beacon, send

    try:
        request = compose_beacon(version=args.refine_version, providers=args.providers, resources=args.resources,
                                 project_id=args.project_id, encoding=args.encoding, referer=args.referer)
    except BtoaRefused as exc:
        print(f"not sent: {exc}", file=sys.stderr)
        return 1
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    try:
        scheme, host, _, _ = check_base_url(args.to)
    except SendError as exc:
        raise UsageError(str(exc)) from None

    print(f"payload  {printable(request.json_text)}")
    print(f"request  {request.method} {printable(request.url(args.to))}")
    if args.dry_run:
        return 0
    if not is_loopback(host):
        print(command_message("send", f"warning: sending to {host}, not this machine"), file=sys.stderr)
    try:
        result = send(request, args.to)
    except SendError as exc:
        print(command_message("send", str(exc)), file=sys.stderr)
        return 2
    detail = ""
    if result.status >= 400:
        detail = "  " + printable(result.body.decode("utf-8", "replace").strip().splitlines()[0]
                                  if result.body.strip() else "")
    print(f"answer   {result.status} {result.reason} {result.content_type}{detail}".rstrip())
    return 0 if 200 <= result.status < 300 else 1
