"""Which records, in what order: the one set of filter and sort rules (no Qt here).

A :class:`RecordFilter` is a list of rules that must all hold: kind, status,
session, record ids, received since, and free text. Each rule answers for one
row (:meth:`Rule.accepts`), for a batch of rows (:meth:`Rule.keep`, what the
window's table runs over 100,000 rows) and, where SQLite can do it, as a SQL
condition (:meth:`Rule.sql`): the store builds its ``WHERE`` from these same
objects, and :meth:`RecordFilter.records` applies the rest to each page read.

Free text: the words of the text (split at whitespace, compared case-folded)
must each occur in the row's text as shown, in any column (kind, status,
method, path, refine version, resource count, providers, browser, OS, ``#id``,
time, host, IP, projectId, problem). With a redactor, host, IP, projectId and
problem are searched as the pseudonyms it shows, never as the real values.

Sorting: :data:`SORT_KEYS` gives each at-a-glance field its order (versions
by number, text case-folded, missing values last); :func:`sort_keys` makes the
keys of many rows in one pass.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any, Protocol

from mockserver.core.beacon import KINDS, STATUSES, Beacon, Summary
from mockserver.core.clock import parse_utc
from mockserver.records.redact import Redactor

PAGE = 500  # records read per query while streaming a selection

# (text of the plain part, text of the maskable part) of every row, as lists aligned with the rows
SearchTexts = tuple[Sequence[str], Sequence[str]]


class SelectionError(ValueError):
    """A filter or id list that cannot be used; the message is one line."""


class RecordSource(Protocol):
    """What a selection reads records from (a :class:`~mockserver.storage.store.BeaconStore`)."""

    def rows(self, where: Sequence[Rule] = (), *, limit: int | None = None) -> list[tuple[Summary, Beacon]]: ...

    def count(self, *, where: Sequence[Rule] = ()) -> int: ...

    def get(self, record_id: int) -> Beacon | None: ...


# -- free text ------------------------------------------------------------------
# A row's search text is kept in two parts: the columns redaction never changes, and those it
# does change (host, IP, projectId, problem), which repeat and so are made once per distinct
# combination. A word never holds whitespace, so it is found in the whole row exactly when it
# is found in one part.

MASKABLE_FIELDS = ("hostname", "ip", "project_id", "problem")  # the order of Redactor.masked_columns


def search_words(text: str) -> tuple[str, ...]:
    """The words a free-text filter looks for: split at whitespace, case-folded."""
    return tuple(text.casefold().split())


def plain_search_text(s: Summary) -> str:
    """The part of a row's search text that redaction never changes, case-folded."""
    parts = (s.kind, s.status, s.method, s.path, s.version, s.resource_count, s.providers, s.browser, s.os,
             f"#{s.id}", s.received_at)
    return "\n".join(p for p in parts if p).casefold()


def maskable_values(s: Summary) -> tuple[str | None, str | None, str | None, str | None]:
    """(hostname, ip, project_id, problem): the real values of the columns redaction masks."""
    return s.hostname, s.ip, s.project_id, s.problem


def maskable_search_text(shown: Sequence[str | None]) -> str:
    """The maskable part of the search text from those columns as shown (real or pseudonyms)."""
    return "\n".join(p for p in shown if p).casefold()


def row_search_text(s: Summary, redactor: Redactor | None = None) -> tuple[str, str]:
    """(plain part, maskable part) of one row's search text, the maskable part as ``redactor`` shows it."""
    shown = maskable_values(s) if redactor is None else redactor.masked_columns(s)
    return plain_search_text(s), maskable_search_text(shown)


# -- the rules ----------------------------------------------------------------------

class Rule:
    """One condition a record must meet."""

    def accepts(self, row: Summary) -> bool:
        """Whether the row meets the condition."""
        raise NotImplementedError

    def keep(self, rows: Sequence[Summary], indices: list[int], texts: SearchTexts | None = None) -> list[int]:
        """Those of ``indices`` whose ``rows`` meet the condition, in order (``texts``: see :class:`Text`)."""
        accepts = self.accepts
        return [i for i in indices if accepts(rows[i])]

    def sql(self) -> tuple[str, tuple[Any, ...]] | None:
        """The condition as SQL over the store's columns with its parameters (None: not expressible)."""
        return None


_EQUAL_COLUMNS = ("kind", "status", "session")
_FIELD_INDEX = {name: i for i, name in enumerate(Summary._fields)}


@dataclass(frozen=True)
class Equals(Rule):
    """``column`` (kind, status or session) has exactly ``value``."""

    column: str
    value: str | int

    def __post_init__(self) -> None:
        if self.column not in _EQUAL_COLUMNS:  # it goes into SQL text: only known column names
            raise ValueError(f"not a column to filter on: {self.column!r}")

    def accepts(self, row: Summary) -> bool:
        return bool(getattr(row, self.column) == self.value)

    def keep(self, rows: Sequence[Summary], indices: list[int], texts: SearchTexts | None = None) -> list[int]:
        at, value = _FIELD_INDEX[self.column], self.value  # a tuple index: the fastest read of a row
        return [i for i in indices if rows[i][at] == value]

    def sql(self) -> tuple[str, tuple[Any, ...]]:
        return f"{self.column} = ?", (self.value,)


@dataclass(frozen=True)
class AfterId(Rule):
    """The record id is greater than ``record_id`` (how a reader pages on and picks up new records)."""

    record_id: int

    def accepts(self, row: Summary) -> bool:
        return row.id is not None and row.id > self.record_id

    def sql(self) -> tuple[str, tuple[Any, ...]]:
        return "id > ?", (self.record_id,)


@dataclass(frozen=True)
class IdIn(Rule):
    """The record id is one of ``ids``."""

    ids: tuple[int, ...]
    _wanted: frozenset[int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_wanted", frozenset(self.ids))  # frozen: set once, here

    def accepts(self, row: Summary) -> bool:
        return row.id in self._wanted

    def keep(self, rows: Sequence[Summary], indices: list[int], texts: SearchTexts | None = None) -> list[int]:
        wanted = self._wanted
        return [i for i in indices if rows[i].id in wanted]

    def sql(self) -> tuple[str, tuple[Any, ...]]:
        return f"id IN ({','.join('?' * len(self.ids))})", tuple(self.ids)


@dataclass(frozen=True)
class ReceivedSince(Rule):
    """Received at or after ``moment`` (an aware datetime); a row whose time cannot be read is not."""

    moment: datetime

    def accepts(self, row: Summary) -> bool:
        try:
            return parse_utc(row.received_at) >= self.moment
        except ValueError:
            return False


@dataclass(frozen=True)
class Text(Rule):
    """Every one of ``words`` (case-folded) occurs in the row's text as shown through ``redactor``."""

    words: tuple[str, ...]
    redactor: Redactor | None = field(default=None, compare=False)

    def accepts(self, row: Summary) -> bool:
        plain, masked = row_search_text(row, self.redactor)
        return all(word in plain or word in masked for word in self.words)

    def keep(self, rows: Sequence[Summary], indices: list[int], texts: SearchTexts | None = None) -> list[int]:
        """``texts``: the rows' search texts made with this rule's redactor (row by row when None)."""
        if texts is None:
            accepts = self.accepts
            return [i for i in indices if accepts(rows[i])]
        plain, masked = texts
        for word in self.words:  # a pass per word: faster than all() over a generator per row
            indices = [i for i in indices if word in plain[i] or word in masked[i]]
        return indices


def where_sql(rules: Iterable[Rule]) -> tuple[str, list[Any]]:
    """`` WHERE …`` (or ``""``) and its parameters for the rules SQL can express; the others are left out."""
    clauses: list[str] = []
    params: list[Any] = []
    for rule in rules:
        condition = rule.sql()
        if condition is not None:
            clauses.append(condition[0])
            params.extend(condition[1])
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def column_rules(kind: str | None = None, status: str | None = None, session: int | None = None,
                 after_id: int | None = None) -> list[Rule]:
    """The rules of the store's keyword filters (None: no such rule)."""
    rules: list[Rule] = [Equals(column, value) for column, value in
                         (("kind", kind), ("status", status), ("session", session)) if value is not None]
    if after_id is not None:
        rules.append(AfterId(after_id))
    return rules


# -- a selection of records -------------------------------------------------------

@dataclass(frozen=True)
class RecordFilter:
    """Records to work on: every filter given must hold.

    ``text`` is the free-text filter, matched through ``redactor`` (the
    values as shown: pseudonyms when given, else the real values).
    """

    kind: str | None = None
    status: str | None = None
    session: int | None = None
    since: datetime | None = None  # received at or after
    ids: tuple[int, ...] | None = None
    text: str = ""
    redactor: Redactor | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.kind is not None and self.kind not in KINDS:
            raise SelectionError(f"kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if self.status is not None and self.status not in STATUSES:
            raise SelectionError(f"status must be one of {', '.join(STATUSES)}, got {self.status!r}")

    @property
    def words(self) -> tuple[str, ...]:
        """The free-text filter's words."""
        return search_words(self.text)

    @property
    def filtered(self) -> bool:
        """True when any filter is set."""
        return bool(self.rules())

    def rules(self) -> list[Rule]:
        """The filters as rules, cheapest first."""
        rules = column_rules(self.kind, self.status, self.session)
        if self.ids is not None:
            rules.append(IdIn(self.ids))
        if self.since is not None:
            rules.append(ReceivedSince(self.since))
        words = self.words
        if words:
            rules.append(Text(words, self.redactor))
        return rules

    def matches(self, row: Beacon | Summary) -> bool:
        """Whether one record (or its stored summary) passes every filter."""
        summary = row.summary() if isinstance(row, Beacon) else row
        return all(rule.accepts(summary) for rule in self.rules())

    def keep(self, rows: Sequence[Summary], indices: Iterable[int], texts: SearchTexts | None = None) -> list[int]:
        """Those of ``indices`` whose ``rows`` pass every filter, in order.

        ``texts``: the rows' search texts (see :data:`SearchTexts`), made with
        this filter's redactor; needed only for a free-text filter, made here when None.
        """
        kept = list(indices)
        for rule in self.rules():
            kept = rule.keep(rows, kept, texts)
        return kept

    def estimate(self, store: RecordSource) -> int:
        """How many records will come (exact unless ``since`` or ``text`` is set, then an upper bound)."""
        if self.ids is not None:
            return len(self.ids)
        return store.count(where=self.rules())

    def missing_ids(self, store: RecordSource) -> list[int]:
        """Ids asked for that the database does not hold."""
        if self.ids is None:
            return []
        return [i for i in self.ids if store.get(i) is None]

    def records(self, store: RecordSource) -> Iterator[Beacon]:
        """Matching records, oldest first, read a page at a time.

        SQLite applies the rules it can; the rest are checked on each record's
        stored summary, the same row the window's table shows.
        """
        rules = [r for r in self.rules() if not isinstance(r, IdIn)]
        in_sql = [r for r in rules if r.sql() is not None]
        after = [r for r in rules if r.sql() is None]

        def passing(page: list[tuple[Summary, Beacon]]) -> Iterator[Beacon]:
            for summary, beacon in page:
                if all(rule.accepts(summary) for rule in after):
                    yield beacon

        if self.ids is not None:
            ids = sorted(set(self.ids))
            for start in range(0, len(ids), PAGE):
                yield from passing(store.rows([*in_sql, IdIn(tuple(ids[start:start + PAGE]))]))
            return
        last = 0
        while True:
            page = store.rows([*in_sql, AfterId(last)], limit=PAGE)
            yield from passing(page)
            if len(page) < PAGE:
                return
            last = page[-1][0].id or last


# -- sorting ------------------------------------------------------------------------

def _same(value: Any) -> Any:
    return value


@lru_cache(maxsize=65_536)  # values repeat: each distinct one is keyed once
def version_key(text: str | None) -> tuple[Any, ...]:
    """Versions by their numbers (4.9.1 before 4.58.0); missing last."""
    if text is None:
        return (1,)
    parts = re.findall(r"\d+|[^\d.]+", text)
    return (0, *((0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts))


@lru_cache(maxsize=65_536)  # values repeat: each distinct one is keyed once
def number_key(text: str | None) -> tuple[int, float, str]:
    """Numbers by value, then other text, then missing."""
    if text is None:
        return (2, 0.0, "")
    try:
        return (0, float(text), "")
    except ValueError:
        return (1, 0.0, text)


@lru_cache(maxsize=65_536)  # values repeat: each distinct one is keyed once
def text_key(text: str | None) -> tuple[int, str]:
    """Text case-folded; missing last."""
    return (1, "") if text is None else (0, text.casefold())


def _session_key(value: int | None) -> int:
    return value or 0


#: the sort key of each at-a-glance field that can be sorted by
SORT_KEYS: dict[str, Callable[[Any], Any]] = {
    "id": _same, "received_at": _same, "kind": text_key, "status": text_key, "hostname": text_key,
    "version": version_key, "resource_count": number_key, "providers": text_key, "browser": text_key,
    "os": text_key, "ip": text_key, "session": _session_key, "project_id": text_key,
}
#: fields whose order is arrival order (the record id)
ARRIVAL_ORDER = frozenset({"id", "received_at"})


class Descending:
    """Wraps a sort key so that ascending comparisons sort it descending (for bisect)."""

    __slots__ = ("key",)

    def __init__(self, key: Any) -> None:
        self.key = key

    def __lt__(self, other: Descending) -> Any:  # whatever the keys' < gives: a sort calls this ~2 M times
        return other.key < self.key

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Descending) and bool(other.key == self.key)

    __hash__ = None  # type: ignore[assignment]  # compared by value, mutable: not hashable


def sort_keys(rows: Sequence[Summary], indices: Iterable[int], by: str, *, descending: bool = False,
              redactor: Redactor | None = None) -> list[Any]:
    """The sort keys of ``rows[i]`` for each of ``indices`` by field ``by``, in one pass.

    With a redactor, the masked fields sort by their pseudonyms, as shown.
    Ascending comparisons of the keys give the order (wrapped in
    :class:`Descending` when ``descending``).
    """
    key_of = SORT_KEYS[by]
    if redactor is not None and by in MASKABLE_FIELDS:
        masked, at = redactor.masked_columns, MASKABLE_FIELDS.index(by)
        keys = [key_of(masked(rows[i])[at]) for i in indices]
    else:
        at = _FIELD_INDEX[by]
        keys = [key_of(rows[i][at]) for i in indices]
    return [Descending(k) for k in keys] if descending else keys
