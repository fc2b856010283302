"""``telemetry-inspector import FILE.har``: the telemetry.refine.dev requests in a DevTools HAR file, recorded.

The reading and recording are :func:`mockserver.formats.har.import_har`; this module checks
the file before the journal is opened and prints the result.
"""

from __future__ import annotations

import argparse
import os
import sys

from mockserver.cli.options import CommandParsers, UsageError, add_db_option
from mockserver.core.config import REFINE_HOST
from mockserver.core.jsontext import dumps_strict
from mockserver.core.text import command_message, size_text
from mockserver.core.wire import MAX_HEADER_BYTES, MAX_HEADER_LINES, MAX_TARGET_BYTES
from mockserver.formats import MAX_HAR_ENTRY_CHARS


def add_command(subparsers: CommandParsers) -> None:
    """Register ``import``."""
    parser = subparsers.add_parser(
        "import", help="decode the telemetry.refine.dev requests in a HAR file saved from DevTools",
        description="Read a HAR file (DevTools > Network > Export HAR) and record every request to "
                    f"{REFINE_HOST} in it exactly as if the mock had received it, with its original time, "
                    "into a new session 'import: FILE' (none when nothing is imported). Requests to other "
                    "hosts are skipped and counted; so are those the live server would refuse before recording "
                    f"them: more than {MAX_HEADER_LINES} headers, a request target over {MAX_TARGET_BYTES:,} bytes, "
                    f"a request line and headers over {MAX_HEADER_BYTES // 1024} KiB. The whole file is checked "
                    f"first: a file that is not HAR, or has an entry over {size_text(MAX_HAR_ENTRY_CHARS)} of JSON, "
                    "is refused and nothing is stored.")
    parser.add_argument("file", metavar="FILE.har", help="the HAR file")
    add_db_option(parser)
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
    parser.set_defaults(handler=cmd_import)


def cmd_import(args: argparse.Namespace) -> int:
    """``import``: exit 0 when the file was read (even if it held no refine request), 2 when not HAR."""
    from mockserver.formats.har import HarError, HarFile, import_har
    from mockserver.formats.progress import StderrProgress
    from mockserver.storage.store import BeaconStore

    # Check the whole file before the database is opened: a wrong file changes nothing.
    if os.path.isfile(args.file) and os.path.getsize(args.file) > 20 * 1024 * 1024:
        print(f"reading {args.file} ({os.path.getsize(args.file) // (1024 * 1024)} MiB)…", file=sys.stderr)
    try:
        har = HarFile(args.file)
    except HarError as exc:
        raise UsageError(str(exc)) from None
    progress = StderrProgress("importing", "entries", min_total=500)
    try:
        store = BeaconStore(args.db, start_session=False)  # the import makes its own session, if it records any
        try:
            result = import_har(store, har, progress=progress)
        finally:
            store.close()
    except HarError as exc:  # the file changed after it was checked
        raise UsageError(str(exc)) from None
    finally:
        progress.finish()
        har.close()
    for warning in result.warnings[:20]:
        print(command_message("import", f"warning: {warning}"), file=sys.stderr)
    if len(result.warnings) > 20:
        print(command_message("import", f"warning: … and {len(result.warnings) - 20} more"), file=sys.stderr)
    if args.json:
        print(dumps_strict({"file": result.file, "session": result.session, "entries": result.entries,
                          "imported": result.imported, "invalid": result.invalid, "skipped": result.skipped,
                          "malformed": result.malformed, "refused": result.refused,
                          "refused_by": result.refused_by, "ids": result.ids,
                          "warnings": result.warnings, "database": args.db}, ensure_ascii=True))
    else:
        print(result.summary())
        if result.imported == 0:
            print(f"no request to {REFINE_HOST} in this file: was the page loaded with DevTools open "
                  "and the Network panel recording?")
    return 0
