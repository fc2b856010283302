"""Export records as JSON, NDJSON, CSV or HAR 1.2, optionally redacted.

JSON and NDJSON carry the one record form (``Beacon.to_dict``), so an
export can be read back by anything that reads the journal API. CSV has the
at-a-glance columns (``Beacon.summary()``) plus email, problems and notes.
HAR has each request as it arrived and what the mock answered.

Files are written to a temporary file beside the target and renamed into
place, so an interrupted export never leaves a half-written file (nor
clobbers an earlier one). The GUI calls :func:`export_records` /
:func:`export_store` with its own progress callback.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from mockserver.core.beacon import KINDS, STATUSES, Beacon, Summary
from mockserver.core.jsontext import dumps_strict, escape_surrogates
from mockserver.core.text import plural
from mockserver.formats.har import HAR_VERSION, har_creator, har_entry
from mockserver.formats.progress import ProgressCallback, StderrProgress, report
from mockserver.records.redact import Redactor
from mockserver.records.view import RecordFilter, SelectionError
from mockserver.storage.files import replacing
from mockserver.storage.selection import open_existing_store, parse_ids, parse_since
from mockserver.storage.store import BeaconStore

if TYPE_CHECKING:
    from mockserver.cli.main import CommandParsers

FORMATS = ("json", "ndjson", "csv", "har")
EXTENSIONS = {"json": ".json", "ndjson": ".ndjson", "csv": ".csv", "har": ".har"}

CSV_COLUMNS: tuple[str, ...] = (*Summary._fields, "email", "problems", "notes")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

# The process umask, read once: .part files are created 0600 and are given
# the mode a normally created file would have before the rename.
_UMASK = os.umask(0)
os.umask(_UMASK)


class ExportError(Exception):
    """The export could not be written (folder missing, no permission, disk full); one line."""


def _csv_cell(value: Any) -> str:
    """A CSV cell; text a spreadsheet would run as a formula gets a leading ``'``."""
    if value is None:
        return ""
    text = escape_surrogates(str(value))  # a lone surrogate as its JSON escape: every cell is UTF-8
    if text.startswith(_FORMULA_START):
        try:
            float(text)  # "-1" is a number, not a formula
        except ValueError:
            return "'" + text
    return text


def csv_row(beacon: Beacon) -> list[str]:
    """The CSV cells of one record, in :data:`CSV_COLUMNS` order."""
    email = (beacon.contact or {}).get("email")
    extra = [email if isinstance(email, str) else (dumps_strict(email) if email is not None else None),
             "; ".join(beacon.problems), "; ".join(beacon.notes)]
    return [_csv_cell(v) for v in (*beacon.summary(), *extra)]


def _indented(entry: dict[str, Any], prefix: str) -> str:
    text = dumps_strict(entry, indent=2)
    return "\n".join(prefix + line for line in text.splitlines())


def write_records(beacons: Iterable[Beacon], fmt: str, out: TextIO, *, total: int = 0,
                  progress: ProgressCallback | None = None) -> int:
    """Write ``beacons`` to ``out`` in ``fmt``; returns how many were written.

    Streams: one record at a time, whatever the size. ``total`` is only
    for ``progress(done, total)``.
    """
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    count = 0
    report(progress, 0, total)

    def advanced() -> None:
        nonlocal count
        count += 1
        if count % 100 == 0:
            report(progress, count, max(total, count))

    if fmt == "ndjson":
        for beacon in beacons:
            out.write(beacon.to_json() + "\n")
            advanced()
    elif fmt == "json":
        out.write("[")
        for beacon in beacons:
            out.write(("\n" if count == 0 else ",\n") + beacon.to_json())
            advanced()
        out.write("\n]\n" if count else "]\n")
    elif fmt == "csv":
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(CSV_COLUMNS)
        for beacon in beacons:
            writer.writerow(csv_row(beacon))
            advanced()
    else:  # har
        head = {"version": HAR_VERSION, "creator": har_creator(), "pages": []}
        out.write('{\n  "log": {\n' + ",\n".join(f"    {dumps_strict(k)}: {dumps_strict(v)}"
                                                for k, v in head.items()) + ',\n    "entries": [')
        for beacon in beacons:
            out.write(("\n" if count == 0 else ",\n") + _indented(har_entry(beacon), "      "))
            advanced()
        out.write(("\n    ]" if count else "]") + "\n  }\n}\n")
    report(progress, count, max(total, count))
    return count


@contextmanager
def atomic_text_file(path: str | Path) -> Iterator[TextIO]:
    """Write a text file all or nothing (see :func:`mockserver.storage.files.replacing`).

    The data goes to a 0600 ``.part`` file beside the target (removed on any
    failure, and swept on the next export if a killed one left it), which is
    renamed into place with the mode a new file, or the old one, has.
    """
    target = Path(path).expanduser()
    folder = target.parent
    if not folder.is_dir():
        raise ExportError(f"cannot write {target}: no folder {folder}")
    try:
        mode = (os.stat(target).st_mode & 0o777) if target.exists() else (0o666 & ~_UMASK)
        with replacing(target, mode=mode) as binary:
            # backslashreplace: a lone surrogate (JSON may carry "\ud800") is written as
            # the JSON escape it came from, instead of failing the export.
            handle = io.TextIOWrapper(binary, encoding="utf-8", errors="backslashreplace", newline="")
            try:
                yield handle
                handle.flush()
            finally:
                handle.detach()  # replacing() syncs and closes the file
    except OSError as exc:
        raise ExportError(f"cannot write {target}: {exc.strerror or exc}") from None


def _redacted(beacons: Iterable[Beacon], redactor: Redactor | None) -> Iterable[Beacon]:
    if redactor is None:
        return beacons
    return (redactor.redact(b) for b in beacons)


def export_records(beacons: Iterable[Beacon], fmt: str, path: str | Path, *, redactor: Redactor | None = None,
                   total: int = 0, progress: ProgressCallback | None = None) -> int:
    """Write ``beacons`` (redacted with ``redactor`` when given) to the file ``path``, atomically.

    Returns how many were written. Raises :class:`ExportError` when the file
    cannot be written and :class:`~mockserver.formats.progress.Cancelled` when
    ``progress`` returns ``False`` (then no file is left behind).
    """
    with atomic_text_file(path) as handle:
        return write_records(_redacted(beacons, redactor), fmt, handle, total=total, progress=progress)


def export_store(store: BeaconStore, fmt: str, path: str | Path, *, selection: RecordFilter | None = None,
                 search: str = "", redact: bool = False, progress: ProgressCallback | None = None) -> int:
    """Export the records of ``store`` that ``selection`` picks (all by default) to ``path``.

    ``search`` is a free-text filter (see :mod:`mockserver.records.view`), in
    addition to the selection's: it is matched against the values as written,
    so with ``redact`` against the pseudonyms, not the real hosts, IPs and projectIds.
    """
    redactor = Redactor() if redact else None
    selection = searching(selection or RecordFilter(), search, redactor)
    return export_records(selection.records(store), fmt, path, redactor=redactor,
                          total=selection.estimate(store), progress=progress)


def searching(selection: RecordFilter, search: str, redactor: Redactor | None) -> RecordFilter:
    """``selection`` narrowed by the free text ``search`` as ``redactor`` writes the records (None: real)."""
    if not search.split():
        return selection
    text = f"{selection.text} {search}" if selection.text else search
    return replace(selection, text=text, redactor=redactor)


# -- the command -----------------------------------------------------------------

def add_command(subparsers: CommandParsers) -> None:
    """Register ``export``."""
    from mockserver.cli.main import add_db_option, whole_number

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
    if args.format:
        return str(args.format)
    suffix = Path(args.out).suffix.lower()
    return next((fmt for fmt, ext in EXTENSIONS.items() if ext == suffix), "json")


def cmd_export(args: argparse.Namespace) -> int:
    """``export``: exit 0 when written (even with no matching record), 2 on bad input or write errors."""
    from mockserver.cli.main import UsageError
    from mockserver.formats.progress import Cancelled

    fmt = _format_for(args)
    try:
        selection = RecordFilter(kind=args.kind, status=args.status, session=args.session,
                                 since=parse_since(args.since) if args.since else None,
                                 ids=parse_ids(args.ids) if args.ids else None)
        store = open_existing_store(args.db)
    except SelectionError as exc:
        raise UsageError(f"export: {exc}") from None
    progress = StderrProgress("exporting")
    try:
        missing = selection.missing_ids(store)
        if missing:
            shown = ", ".join(f"#{i}" for i in missing[:10]) + (" …" if len(missing) > 10 else "")
            raise UsageError(f"export: no record {shown} in {args.db}; nothing written")
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
                count = write_records(_redacted(selection.records(store), redactor), fmt, stdout, total=total,
                                      progress=progress)
                stdout.flush()
            finally:
                if wrapper is not None:
                    wrapper.detach()  # sys.stdout keeps its buffer
        else:
            count = export_records(selection.records(store), fmt, args.out, redactor=redactor, total=total,
                                   progress=progress)
    except ExportError as exc:
        raise UsageError(f"export: {exc}") from None
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
