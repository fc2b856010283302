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

import csv
import io
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, TextIO

from mockserver.core.beacon import Beacon, Summary
from mockserver.core.jsontext import dumps_strict, escape_surrogates
from mockserver.formats import EXTENSIONS as EXTENSIONS
from mockserver.formats import FORMATS as FORMATS
from mockserver.formats.har_export import HAR_VERSION, har_creator, har_entry
from mockserver.formats.progress import ProgressCallback, report
from mockserver.records.redact import Redactor
from mockserver.records.view import RecordFilter
from mockserver.storage.files import replacing
from mockserver.storage.store import BeaconStore

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


def redacted_records(beacons: Iterable[Beacon], redactor: Redactor | None) -> Iterable[Beacon]:
    """``beacons`` masked by ``redactor`` (as they are when it is None), one at a time."""
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
        return write_records(redacted_records(beacons, redactor), fmt, handle, total=total, progress=progress)


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
