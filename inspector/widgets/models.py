"""BeaconTableModel: the live table, a view over ``BeaconStore.summaries()``.

The store is the single source of truth; this model keeps only the
at-a-glance :class:`~mockserver.core.beacon.Summary` tuples (full records are read
with ``store.get(id)`` when one is selected).

Filtering and sorting live here rather than in a ``QSortFilterProxyModel``:
a proxy sorts by calling ``data()`` for every comparison, which from Python is
seconds for 100,000 rows. Here a sort is one ``list.sort`` with a key, a filter
is one pass per rule over precomputed lower-case search text, and a batch of new
rows is one ``beginInsertRows``. Which rows pass and in what order is decided by
the Qt-free records view (:mod:`mockserver.records.view`): the same rules pick
the records of "export shown" and of ``export --search``.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import date
from functools import lru_cache
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, Signal

from inspector.widgets import theme
from inspector.widgets.icons import status_icon
from inspector.widgets.plaintext import plain_tooltip
from mockserver.core.beacon import Summary
from mockserver.core.clock import parse_iso
from mockserver.records.redact import Redactor
from mockserver.records.view import (
    ARRIVAL_ORDER,
    RecordFilter,
    maskable_search_text,
    maskable_values,
    plain_search_text,
    sort_keys,
)
from mockserver.storage.store import BeaconStore

Index = QModelIndex | QPersistentModelIndex

RECORD_ID_ROLE = Qt.ItemDataRole.UserRole + 1
SUMMARY_ROLE = Qt.ItemDataRole.UserRole + 2

# Roles as plain ints: _value() runs for every role of every painted cell, and comparing enums costs more.
_DISPLAY = int(Qt.ItemDataRole.DisplayRole)
_TOOLTIP = int(Qt.ItemDataRole.ToolTipRole)
_FOREGROUND = int(Qt.ItemDataRole.ForegroundRole)
_DECORATION = int(Qt.ItemDataRole.DecorationRole)
_TEXT_ALIGNMENT = int(Qt.ItemDataRole.TextAlignmentRole)
_CENTRED = int(Qt.AlignmentFlag.AlignCenter)
_RIGHT = int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)


@lru_cache(maxsize=8192)
def _local_time(iso: str, today: date) -> tuple[str, str]:
    """(short display, full tooltip) of an ISO UTC timestamp, in local time."""
    try:
        moment = parse_iso(iso).astimezone()
    except ValueError:
        return iso, iso
    full = moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d} (local)  ·  {iso} UTC"
    if moment.date() == today:
        return moment.strftime("%H:%M:%S.") + f"{moment.microsecond // 1000:03d}", full
    return moment.strftime("%Y-%m-%d %H:%M:%S"), full


class Column:
    """Column numbers of the table (one place, so views and tests agree)."""

    ID, TIME, KIND, STATUS, HOSTNAME, VERSION, RESOURCES, PROVIDERS, BROWSER, OS, IP, SESSION, PROJECT_ID = range(13)


# (header, tooltip, Summary field); the order of each field is the records view's (SORT_KEYS)
_COLUMNS: list[tuple[str, str, str]] = [
    ("#", "Record number", "id"),
    ("Time", "When it arrived (local time)", "received_at"),
    ("Kind", "beacon = browser /telemetry; cli, project, superplate = refine's tools", "kind"),
    ("Status", "ok, or invalid with the first problem", "status"),
    ("App host", "The app's host, from the Origin / Referer header", "hostname"),
    ("refine", "@refinedev/core version from the payload", "version"),
    ("Res.", "resourceCount from the payload", "resource_count"),
    ("Providers", "Providers reported as true", "providers"),
    ("Browser", "Browser and version, from User-Agent", "browser"),
    ("OS", "OS and version, from User-Agent", "os"),
    ("IP", "Client address", "ip"),
    ("Session", "The capture session (one per start, or New session)", "session"),
    ("projectId", "options.projectId (sent, but not on the docs page)", "project_id"),
]
COLUMN_COUNT = len(_COLUMNS)
_FIELD_INDEX = {name: i for i, name in enumerate(Summary._fields)}
_BISECT_MAX = 256  # appended rows put in place one by one; more than this (and 1/8 of the rows): one re-sort
_NATURAL = tuple(n for n, column in enumerate(_COLUMNS) if column[2] in ARRIVAL_ORDER)  # record id order


class BeaconTableModel(QAbstractTableModel):
    """All records' summaries, filtered and sorted for the table view."""

    #: the numbers changed: (shown, total, ok, invalid)
    countsChanged = Signal(int, int, int, int)
    #: rows were appended in a batch (how many passed the filter)
    rowsAppended = Signal(int)

    def __init__(self, store: BeaconStore, parent: Any = None) -> None:
        super().__init__(parent)
        self.store = store
        self._rows: list[Summary] = []  # every record, id ascending
        # Search text (see mockserver.records.view), made when a text filter first needs it: per row, and the
        # maskable part per row as shown (real or redacted) with its cache by distinct values.
        self._hay: list[str] | None = None
        self._hay_partial: list[str] = []  # _hay while prepare_search_text makes it
        self._hay_maskable: list[str] | None = None
        self._maskable_texts: dict[tuple[str | None, ...], str] = {}
        self._shown: list[int] = []  # indices into _rows, in display order
        self._last_id = 0
        self.last_batch: list[Summary] = []  # the rows the last fetch_new added to those shown (real values)
        self._ok = 0
        self._invalid = 0
        self._filter = RecordFilter()  # what is shown: the records view's rules (free text through the redactor)
        self._sort_column = Column.ID
        self._sort_order = Qt.SortOrder.AscendingOrder
        self._keys: list[Any] | None = None  # sort keys aligned with _shown (None: arrival order)
        self._scheme = theme.scheme()
        self.clock: Callable[[], date] = date.today  # "today" decides between time-only and dated cells
        self._today = self.clock()
        # Redaction: rows are shown through the redactor (the store keeps the truth).
        self._redactor: Redactor | None = None
        self._masked: dict[int, Summary] = {}  # record id -> redacted row, made when first shown

    # -- loading ------------------------------------------------------------

    def reload(self, limit: int | None = None) -> bool:
        """Read the summaries from the store again (start, clear, delete): all of them, or the
        oldest ``limit``. True when more may remain: :meth:`fetch_new` reads them on."""
        rows = self.store.summaries(limit=limit)
        self.beginResetModel()
        self._rows = rows
        self._hay = None  # made on the first text filter: opening 100,000 rows need not wait for it
        self._hay_partial = []
        self._hay_maskable = None
        self._last_id = (rows[-1].id or 0) if rows else 0
        self._ok = sum(1 for s in rows if s.status == "ok")
        self._invalid = len(rows) - self._ok
        self._shown = self._order(self._accepted(range(len(rows))))
        self.endResetModel()
        self._emit_counts()
        return limit is not None and len(rows) == limit

    def fetch_new(self, limit: int | None = None) -> int:
        """Append records newer than the last one loaded (at most ``limit``); returns how many.

        Reads ``summaries(since=last id)`` rather than trusting event order, so
        no row is missed or doubled however the notifications interleave; the
        rest of a journal being opened in steps arrives the same way.
        """
        new = self.store.summaries(since=self._last_id, limit=limit)
        if not new:
            return 0
        start = len(self._rows)
        self._rows.extend(new)
        if self._hay is not None:
            self._hay.extend(plain_search_text(s) for s in new)
        if self._hay_maskable is not None:
            self._hay_maskable.extend(self._maskable_search_text(new))
        self._last_id = new[-1].id or self._last_id
        ok = sum(1 for s in new if s.status == "ok")
        self._ok += ok
        self._invalid += len(new) - ok
        accepted = self._accepted(range(start, len(self._rows)))
        rows = self._rows
        self.last_batch = [rows[i] for i in accepted]
        if accepted:
            self._insert(accepted)
        self._emit_counts()
        self.rowsAppended.emit(len(accepted))
        return len(new)

    def remove_ids(self, ids: Iterable[int]) -> int:
        """Drop the rows of these (deleted) records, without reading the store; returns how many went.

        Shown rows go in one beginRemoveRows per contiguous run, bottom first, so
        selections and the current row on the other rows stay where they are.
        """
        gone = set(ids)
        rows = self._rows
        keep = [i for i, s in enumerate(rows) if s.id not in gone]
        if len(keep) == len(rows):
            return 0
        positions = [p for p, i in enumerate(self._shown) if rows[i].id in gone]
        while positions:
            last = first = positions.pop()
            while positions and positions[-1] == first - 1:
                first = positions.pop()
            self.beginRemoveRows(QModelIndex(), first, last)
            del self._shown[first:last + 1]
            if self._keys is not None:
                del self._keys[first:last + 1]
            self.endRemoveRows()
        # The rows left are the same summaries under new indices: nothing the view shows changes.
        new_index = {old: new for new, old in enumerate(keep)}
        removed = [rows[i] for i in range(len(rows)) if i not in new_index]
        self._shown = [new_index[i] for i in self._shown]
        self._rows = [rows[i] for i in keep]
        if self._hay is not None:
            self._hay = [self._hay[i] for i in keep]
        partial = self._hay_partial
        self._hay_partial = [partial[i] for i in keep if i < len(partial)]
        if self._hay_maskable is not None:
            self._hay_maskable = [self._hay_maskable[i] for i in keep]
        for s in removed:
            self._masked.pop(s.id, None)  # type: ignore[arg-type]  # stored summaries have ids
        ok = sum(1 for s in removed if s.status == "ok")
        self._ok -= ok
        self._invalid -= len(removed) - ok
        self._emit_counts()
        return len(removed)

    def _insert(self, accepted: list[int]) -> None:
        """One beginInsertRows for the whole batch (then, if sorted by a value, one re-layout)."""
        if self.newest_on_top:
            self.beginInsertRows(QModelIndex(), 0, len(accepted) - 1)
            self._shown[0:0] = reversed(accepted)
            self.endInsertRows()
            return
        first = len(self._shown)
        self.beginInsertRows(QModelIndex(), first, first + len(accepted) - 1)
        self._shown.extend(accepted)
        self.endInsertRows()
        if self._keys is None:
            return
        if len(accepted) > max(_BISECT_MAX, first // 8):  # a big step of an opening journal
            self._relayout(self._order(self._shown), self._keys)
            return
        # Sorted by a value: move the new rows into place by binary insertion
        # (a full re-sort of 100,000 rows per batch would stall the GUI).
        shown, keys = self._shown[:first], self._keys[:first]
        for i, k in zip(accepted, self._sort_keys(accepted), strict=True):
            at = bisect_right(keys, k)
            keys.insert(at, k)
            shown.insert(at, i)
        self._relayout(shown, keys)

    # -- filtering and sorting ----------------------------------------------

    def set_filter(self, text: str | None = None, *, kind: str | None | bool = False,
                   status: str | None | bool = False, session: int | None | bool = False) -> None:
        """Change any of the filters (``False`` = leave as is; ``None`` = no filter)."""
        changes: dict[str, Any] = {}
        if text is not None:
            changes["text"] = text
        if kind is not False:
            changes["kind"] = kind or None
        if status is not False:
            changes["status"] = status or None
        if session is not False:
            changes["session"] = session
        self._filter = replace(self._filter, **changes)
        self.beginResetModel()
        self._shown = self._order(self._accepted(range(len(self._rows))))
        self.endResetModel()
        self._emit_counts()

    @property
    def record_filter(self) -> RecordFilter:
        """The filter the rows are shown by, as the records view's rules: the store can select the
        same records (free text matched through the redactor the table shows them with)."""
        return self._filter

    @property
    def filtered(self) -> bool:
        """True when any filter hides rows."""
        return self._filter.filtered

    # -- redaction ------------------------------------------------------------

    def set_redactor(self, redactor: Redactor | None) -> None:
        """Show every row through ``redactor`` (None: the real values); re-applies the filter."""
        if redactor is self._redactor:
            return
        self._redactor = redactor
        self._filter = replace(self._filter, redactor=redactor)
        self._masked = {}
        self._hay_maskable = None
        self._maskable_texts = {}
        self.beginResetModel()
        self._shown = self._order(self._accepted(range(len(self._rows))))
        self.endResetModel()
        self._emit_counts()

    @property
    def redactor(self) -> Redactor | None:
        """The redactor rows are shown through (None: redaction off)."""
        return self._redactor

    def view(self, s: Summary) -> Summary:
        """``s`` as displayed: redacted when redaction is on."""
        if self._redactor is None:
            return s
        masked = self._masked.get(s.id)  # type: ignore[arg-type]  # stored summaries have ids
        if masked is None:
            masked = self._masked[s.id] = self._redactor.redact_summary(s)  # type: ignore[index]  # has an id
        return masked

    def _maskable_search_text(self, rows: Iterable[Summary]) -> list[str]:
        """The maskable part of each row's search text, as displayed (pseudonyms when redacted)."""
        texts, redactor, out = self._maskable_texts, self._redactor, []
        for s in rows:
            values = maskable_values(s)
            text = texts.get(values)
            if text is None:
                shown = values if redactor is None else redactor.masked_columns(s)
                text = texts[values] = maskable_search_text(shown)
            out.append(text)
        return out

    def prepare_search_text(self, step: int) -> bool:
        """Make up to ``step`` more rows' search text ahead of the first text filter (the window
        does it a step per turn of the event loop once a journal is read); True when all is made."""
        if self._hay is not None:
            return True
        done = self._hay_partial
        done.extend(plain_search_text(s) for s in self._rows[len(done):len(done) + step])
        if len(done) < len(self._rows):
            return False
        self._hay, self._hay_partial = done, []
        return True

    def _search_text(self) -> tuple[list[str], list[str]]:
        """What the filter searches, in its two parts: the values as displayed."""
        if self._hay is None:
            self.prepare_search_text(len(self._rows))
        assert self._hay is not None  # made just above
        if self._hay_maskable is None:
            self._hay_maskable = self._maskable_search_text(self._rows)
        return self._hay, self._hay_maskable

    def _accepted(self, indices: range) -> list[int]:
        """Those of ``indices`` the filter keeps, by the records view's rules over the rows' search text."""
        flt = self._filter
        if not flt.filtered:
            return list(indices)
        return flt.keep(self._rows, indices, self._search_text() if flt.words else None)

    def _sort_keys(self, indices: list[int]) -> list[Any]:
        """The sort keys of rows ``indices`` for the current column and direction, in one pass."""
        return sort_keys(self._rows, indices, _COLUMNS[self._sort_column][2], redactor=self._redactor,
                         descending=self._sort_order == Qt.SortOrder.DescendingOrder)

    def _order(self, indices: Iterable[int]) -> list[int]:
        """``indices`` in display order; keeps ``_keys`` in step (None in arrival order)."""
        if self._sort_column in _NATURAL:
            self._keys = None
            return sorted(indices, reverse=self._sort_order == Qt.SortOrder.DescendingOrder)
        indices = list(indices)
        keys = self._sort_keys(indices)  # one pass: 100,000 rows, a click on a header stays short
        # Python's sort is stable: ties keep arrival order.
        order = sorted(range(len(keys)), key=keys.__getitem__)
        self._keys = [keys[n] for n in order]
        return [indices[n] for n in order]

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        """Sort by ``column`` (called by the header)."""
        if not 0 <= column < COLUMN_COUNT:
            return
        self._sort_column, self._sort_order = column, order
        shown = self._order(self._shown)
        self._relayout(shown, self._keys)

    @property
    def newest_on_top(self) -> bool:
        """True when the newest rows are inserted at the top (arrival order, descending)."""
        return self._sort_column in _NATURAL and self._sort_order == Qt.SortOrder.DescendingOrder

    def _relayout(self, shown: list[int], keys: list[Any] | None) -> None:
        """Reorder the shown rows keeping selections and the current row (persistent indexes)."""
        self.layoutAboutToBeChanged.emit()
        old = self.persistentIndexList()
        old_rows = [self._shown[i.row()] if 0 <= i.row() < len(self._shown) else None for i in old]
        self._shown, self._keys = shown, keys
        where = {row: n for n, row in enumerate(shown)}
        new = [self.index(where[r], i.column()) if r in where else QModelIndex()
               for r, i in zip(old_rows, old, strict=True)]
        self.changePersistentIndexList(old, new)
        self.layoutChanged.emit()

    # -- lookups ------------------------------------------------------------

    def summary(self, row: int) -> Summary:
        """The summary at ``row`` (real values; :meth:`view` gives what is displayed)."""
        return self._rows[self._shown[row]]

    def shown_summaries(self) -> list[Summary]:
        """The rows the table shows, in display order (real values)."""
        rows = self._rows
        return [rows[i] for i in self._shown]

    def newest_id(self) -> int | None:
        """The id of the newest record shown, wherever the sort puts it (None when none is shown)."""
        return self._rows[max(self._shown)].id if self._shown else None  # rows are kept in arrival order

    def record_id(self, row: int) -> int:
        """The record id shown at ``row``."""
        return self._rows[self._shown[row]].id  # type: ignore[return-value]  # stored rows have ids

    def row_of(self, record_id: int) -> int | None:
        """The row showing ``record_id`` (None when filtered out or unknown)."""
        for n, i in enumerate(self._shown):
            if self._rows[i].id == record_id:
                return n
        return None

    @property
    def total(self) -> int:
        """How many records are loaded (all sessions, before filtering)."""
        return len(self._rows)

    def counts(self) -> tuple[int, int, int, int]:
        """(shown, total, ok, invalid)."""
        return len(self._shown), len(self._rows), self._ok, self._invalid

    def _emit_counts(self) -> None:
        self.countsChanged.emit(*self.counts())

    def refresh_theme(self) -> None:
        """Pick status colours for the current palette and repaint."""
        self._scheme = theme.scheme()
        self._today = self.clock()
        if self._shown:
            self.dataChanged.emit(self.index(0, 0), self.index(len(self._shown) - 1, COLUMN_COUNT - 1))

    # -- Qt model API -------------------------------------------------------

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802, B008 - Qt's signature
        return 0 if parent.isValid() else len(self._shown)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802, B008 - Qt's signature
        return 0 if parent.isValid() else COLUMN_COUNT

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:  # noqa: N802 - Qt override
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < COLUMN_COUNT:
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return _COLUMNS[section][0]
        if role == Qt.ItemDataRole.ToolTipRole:
            return _COLUMNS[section][1]
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        row = index.row()
        if not index.isValid() or row >= len(self._shown):
            return None
        return self._value(self._rows[self._shown[row]], index.column(), role)

    def multiData(self, index: Index, roleDataSpan: Any) -> None:  # noqa: N802, N803 - Qt override
        """Every role the delegate asks for, in one call per cell (the same values as :meth:`data`).

        Qt's delegate asks for 7 roles for each cell it paints; the inherited
        ``multiData`` calls :meth:`data` once per role. Nothing here calls a Qt
        function that lets go of the GIL (constructors such as ``QModelIndex()``
        or ``createIndex`` do): under a burst of requests the embedded server's
        threads would take it at each, and the paint would wait for it back.
        """
        row = index.row()
        if not index.isValid() or row >= len(self._shown):
            for item in roleDataSpan:
                item.clearData()
            return
        s = self._rows[self._shown[row]]
        column = index.column()
        value = self._value
        for item in roleDataSpan:
            item.setData(value(s, column, item.role()))

    def _value(self, s: Summary, column: int, role: int) -> Any:
        """The value of ``role`` in ``column`` for the row ``s`` (real values: redacted here when on)."""
        if role == _DISPLAY:
            return self._display(s if self._redactor is None else self.view(s), column)
        if role == _TEXT_ALIGNMENT:
            if column == Column.SESSION:
                return _CENTRED
            return _RIGHT if column == Column.ID or column == Column.RESOURCES else None
        if column == Column.STATUS:
            if role == _FOREGROUND:
                return self._scheme.ok if s.status == "ok" else self._scheme.invalid
            if role == _DECORATION:
                return status_icon(s.status, self._scheme)
        if role == _TOOLTIP:
            return plain_tooltip(self._tooltip(s if self._redactor is None else self.view(s), column)) or None
        if role == RECORD_ID_ROLE:
            return s.id
        if role == SUMMARY_ROLE:
            return s if self._redactor is None else self.view(s)
        return None

    def _display(self, s: Summary, column: int) -> str:
        if column == Column.ID:
            return str(s.id)
        if column == Column.TIME:
            return _local_time(s.received_at, self._today)[0]
        if column == Column.SESSION:
            return str(s.session) if s.session is not None else ""
        value = s[_FIELD_INDEX[_COLUMNS[column][2]]]
        return "" if value is None else str(value)

    def _tooltip(self, s: Summary, column: int) -> str | None:
        if column == Column.TIME:
            return _local_time(s.received_at, self._today)[1]
        if column == Column.STATUS:
            return s.problem or "decoded without problems"
        if column == Column.KIND:
            return f"{s.method} {s.path}"
        value = self._display(s, column)
        return value or None

