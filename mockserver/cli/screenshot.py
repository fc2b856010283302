"""``telemetry-inspector screenshot``: a PNG of the real main window, for docs and reports.

Qt-free on purpose (like every ``mockserver`` module): the renderer
(``inspector.screenshot``) is loaded only when the command runs, through the
GUI hook :mod:`mockserver.cli.gui`, and is given plain values.
"""

from __future__ import annotations

import argparse
import sys

from mockserver.cli.gui import picture_renderer
from mockserver.cli.options import CommandParsers, UsageError, add_db_option, add_shared_argument, record_id

VIEWS = ("details", "opt-out", "compare")


def shown_view(view: str | None, compare: tuple[int, int] | None) -> str:
    """The lower pane a picture shows: ``--compare`` means the compare view, else ``--view`` (details).

    Raises ValueError (one line) for ``--compare`` with another ``--view``.
    """
    if compare is not None and view not in (None, "compare"):
        raise ValueError(f"--compare shows the compare view, not --view {view}")
    return "compare" if compare is not None else view or "details"


def _id_pair(text: str) -> tuple[int, int]:
    """An argparse ``type``: ``3,6`` as two record ids."""
    parts = [p for p in text.replace(" ", "").split(",") if p]
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"--compare wants two record ids such as 3,6, got {text!r}")
    first, second = (record_id(p) for p in parts)
    return first, second


def add_command(subparsers: CommandParsers) -> None:
    """Register ``screenshot``."""
    parser = subparsers.add_parser(
        "screenshot", help="save a PNG of the window (offscreen; --demo gives the same picture every run)",
        description="Render the real main window offscreen (no display needed, no server started, the database "
                    "is not changed) and save it as PNG. --demo shows a fixed, realistic data set at a fixed time "
                    "(UTC), so the picture is identical run to run on one machine.")
    parser.add_argument("--out", required=True, metavar="FILE.png", help="the PNG to write")
    parser.add_argument("--size", default="1280x800", metavar="WxH", help="window size (default %(default)s)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--demo", action="store_true", help="fixed demo data and clock instead of a database")
    add_db_option(parser, source)
    parser.add_argument("--select", type=record_id, metavar="ID",
                        help="the record whose details are shown (default: demo #6, else the newest)")
    add_shared_argument(parser, parser, "--theme", choices=("light", "dark"), default="light",
                        help="colours (default light)")
    parser.add_argument("--redact", action="store_true",
                        help="mask IP addresses, hostnames, emails and projectIds with pseudonyms")
    parser.add_argument("--view", choices=VIEWS,
                        help="the lower pane: details (default), the opt-out check (demo: a FAIL), or compare")
    parser.add_argument("--compare", type=_id_pair, metavar="ID1,ID2",
                        help="compare these two records (implies --view compare; demo default 3,6)")
    parser.add_argument("--presentation", action="store_true", help="presentation mode (larger text)")
    parser.set_defaults(handler=cmd_screenshot)


def cmd_screenshot(args: argparse.Namespace) -> int:
    """``screenshot``: exit 0 when written, 2 for bad arguments, a missing database or an unknown record."""
    try:
        gui = picture_renderer()
    except ImportError as exc:
        raise UsageError(f"the window cannot be loaded here ({exc}); install pyside6-essentials") \
            from None
    try:
        view = shown_view(args.view, args.compare)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    try:
        size = gui.parse_size(args.size)
        out = gui.render(args.out, size=size, demo=args.demo, db=None if args.demo else args.db,
                         select=args.select, theme=args.theme, redact=args.redact, view=view,
                         compare=args.compare, presentation=args.presentation)
    except gui.ScreenshotError as exc:
        raise UsageError(str(exc)) from None
    source = "demo data" if args.demo else args.db
    extras = "".join(f", {x}" for x, on in (("redacted", args.redact), ("presentation mode", args.presentation))
                     if on)
    print(f"saved {out}: {size[0]}x{size[1]}, {source}, {args.theme} theme, {view}{extras}", file=sys.stderr)
    return 0
