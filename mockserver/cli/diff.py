"""``telemetry-inspector diff ID1 ID2``: field-level differences between two records; exit 0 same, 1 different.

The comparison is :func:`mockserver.records.diff.diff_records`, as in the window's compare view.
"""

from __future__ import annotations

import argparse
import sys

from mockserver.cli.options import CommandParsers, UsageError, add_db_option, record_id
from mockserver.core.jsontext import dumps_strict
from mockserver.core.text import plural, printable


def add_command(subparsers: CommandParsers) -> None:
    """Register ``diff``."""
    parser = subparsers.add_parser(
        "diff", help="field-level differences between two records (exit 0 same, 1 different, 2 error)",
        description="Compare two records: payload fields (providers.i18n, version, …), header-derived facts "
                    "(client.browser.version, …) and contact. Exit 0 when they are the same, 1 when they "
                    "differ, 2 on errors (like diff).")
    parser.add_argument("first", type=record_id, metavar="ID1", help="the record to compare from")
    parser.add_argument("second", type=record_id, metavar="ID2", help="the record to compare to")
    add_db_option(parser)
    parser.add_argument("--json", action="store_true", help="print {a, b, changes: [...]} as JSON")
    parser.set_defaults(handler=cmd_diff)


def cmd_diff(args: argparse.Namespace) -> int:
    """``diff``: print the differences; exit 0 same, 1 different."""
    from mockserver.records.diff import diff_records, format_changes
    from mockserver.records.view import SelectionError
    from mockserver.storage.selection import open_existing_store

    try:
        store = open_existing_store(args.db)
    except SelectionError as exc:
        raise UsageError(str(exc)) from None
    try:
        a, b = store.get(args.first), store.get(args.second)
    finally:
        store.close()
    missing = [f"#{i}" for i, r in ((args.first, a), (args.second, b)) if r is None]
    if missing:
        raise UsageError(f"no record {' or '.join(missing)} in {args.db}")
    assert a is not None and b is not None
    changes = diff_records(a, b)
    if args.json:
        print(dumps_strict({"a": a.id, "b": b.id, "changes": [c.to_dict() for c in changes]}))
    else:
        head = f"#{a.id} ({a.kind}, {a.received_at}) → #{b.id} ({b.kind}, {b.received_at}): "
        print(head + (plural(len(changes), "difference") if changes else "no differences in payload, "
                                                                      "header facts or contact"))
        for line in format_changes(changes):
            print(printable(line))
    sys.stdout.flush()
    return 1 if changes else 0
