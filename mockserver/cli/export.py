"""``telemetry-inspector export``: records as JSON, NDJSON, CSV or HAR, to a file (atomically) or stdout.

The writers are :mod:`mockserver.formats.export`, loaded when the command runs.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
from pathlib import Path

from mockserver.cli.options import CommandParsers, UsageError, add_db_option, whole_number
from mockserver.core.beacon import KINDS, STATUSES
from mockserver.core.text import plural
from mockserver.formats import EXTENSIONS, FORMATS


def add_command(subparsers: CommandParsers) -> None:
    """Register ``export``."""
    parser = subparsers.add_parser(
        "export", help="write records as JSON, NDJSON, CSV or HAR (optionally redacted)",
        description="Write all records, or those the filters pick, to a file (written atomically) or stdout. "
                    "Filters combine: a record must pass all of them.")
    parser.add_argument("--format", choices=FORMATS, metavar="FORMAT",
                        help=f"{'|'.join(FORMATS)} (default: from the --out file name, else json)")
    parser.add_argument("--out", required=True, metavar="FILE", help="the file to write, or - for stdout")
    add_db_option(parser)
    parser.add_argument("--redact", action="store_true",
                        help="mask IP addresses, hostnames, emails and projectIds with stable pseudonyms")
    parser.add_argument("--kind", choices=KINDS, metavar="KIND", help=f"only this kind ({', '.join(KINDS)})")
    parser.add_argument("--status", choices=STATUSES, metavar="STATUS", help=f"only {' or '.join(STATUSES)}")
    parser.add_argument("--session", type=whole_number(1, what="session"), metavar="N",
                        help="only records of session N")
    parser.add_argument("--since", metavar="WHEN",
                        help="only records received at or after WHEN (ISO 8601, e.g. 2026-11-26 or "
                             "2026-11-26T06:00Z; local time without a zone)")
    parser.add_argument("--ids", metavar="LIST", help="only these records, e.g. 1,2,3 or 4-9")
    parser.add_argument("--search", metavar="TEXT", default="",
                        help="only records whose columns hold every word of TEXT, as the window's filter "
                             "(case-insensitive; with --redact the pseudonyms are searched)")
    parser.set_defaults(handler=cmd_export)


def _format_for(args: argparse.Namespace) -> str:
    """``--format``, else the one the ``--out`` file name says, else JSON."""
    if args.format:
        return str(args.format)
    suffix = Path(args.out).suffix.lower()
    return next((fmt for fmt, ext in EXTENSIONS.items() if ext == suffix), "json")


def cmd_export(args: argparse.Namespace) -> int:
    """``export``: exit 0 when written (even with no matching record), 2 on bad input or write errors."""
    from mockserver.formats.export import ExportError, export_records, redacted_records, searching, write_records
    from mockserver.formats.progress import Cancelled, StderrProgress
    from mockserver.records.redact import Redactor
    from mockserver.records.view import RecordFilter, SelectionError
    from mockserver.storage.selection import open_existing_store, parse_ids, parse_since

    fmt = _format_for(args)
    try:
        selection = RecordFilter(kind=args.kind, status=args.status, session=args.session,
                                 since=parse_since(args.since) if args.since else None,
                                 ids=parse_ids(args.ids) if args.ids else None)
        store = open_existing_store(args.db)
    except SelectionError as exc:
        raise UsageError(str(exc)) from None
    progress = StderrProgress("exporting")
    try:
        missing = selection.missing_ids(store)
        if missing:
            shown = ", ".join(f"#{i}" for i in missing[:10]) + (" …" if len(missing) > 10 else "")
            raise UsageError(f"no record {shown} in {args.db}; nothing written")
        redactor = Redactor() if args.redact else None
        selection = searching(selection, args.search, redactor)
        total = selection.estimate(store)
        if args.out == "-":
            sys.stdout.flush()
            buffer = getattr(sys.stdout, "buffer", None)
            wrapper = (io.TextIOWrapper(buffer, encoding="utf-8", errors="backslashreplace", newline="",
                                        write_through=True) if buffer is not None else None)
            stdout = wrapper or sys.stdout
            try:
                count = write_records(redacted_records(selection.records(store), redactor), fmt, stdout, total=total,
                                      progress=progress)
                stdout.flush()
            finally:
                if wrapper is not None:
                    wrapper.detach()  # sys.stdout keeps its buffer
        else:
            count = export_records(selection.records(store), fmt, args.out, redactor=redactor, total=total,
                                   progress=progress)
    except ExportError as exc:
        raise UsageError(str(exc)) from None
    except Cancelled:  # pragma: no cover - the CLI's progress never cancels
        return 2
    except BrokenPipeError:  # `export --out - | head`: the reader had enough
        # Point stdout at /dev/null so the interpreter's final flush does not complain.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    finally:
        progress.finish()
        store.close()
    where = "stdout" if args.out == "-" else args.out
    redacted = ", redacted," if args.redact else ""
    print(f"exported {plural(count, 'record')}{redacted} as {fmt.upper()} to {where}", file=sys.stderr)
    return 0
