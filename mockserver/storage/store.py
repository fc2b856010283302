"""BeaconStore: the one source of truth, SQLite in WAL mode (standard library).

``append()`` commits before it returns, and the HTTP handler answers only
after ``append()``: an acknowledged request survives the process being
killed. Listeners are told after the commit, outside the write lock, so a
slow listener never holds up other writers.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mockserver.core.beacon import Beacon, Summary
from mockserver.core.clock import iso_utc, utc_now
from mockserver.core.config import is_data_dir
from mockserver.core.text import one_line
from mockserver.records.view import IdIn, Rule, column_rules, where_sql
from mockserver.storage.files import create_private_file, make_private_dir, restrict_to_owner
from mockserver.storage.rows import (
    INSERT,
    SCHEMA,
    SCHEMA_VERSION,
    SUMMARY_COLUMNS,
    SUMMARY_SOURCE,
    record_row,
    utf8_row,
)

log = logging.getLogger(__name__)

CHECK_AT_OPEN_BYTES = 32 * 2**20
CHECK_DELAY = 3.0  # seconds after opening before a large file's background check starts


def _quick_check(conn: sqlite3.Connection) -> str | None:
    """None when SQLite's quick_check passes, else its first finding (one line, short)."""
    rows = conn.execute("PRAGMA quick_check(3)").fetchall()
    if rows == [("ok",)]:
        return None
    first = " ".join(str(rows[0][0]).split()) if rows else "no answer"
    return first[:160]


class _Pending:
    """One append waiting in the group commit queue."""

    __slots__ = ("beacon", "annotate", "row", "stored", "done", "error", "then")

    def __init__(self, beacon: Beacon, annotate: Callable[[Beacon], None] | None,
                 then: Committed | None = None) -> None:
        self.beacon = beacon
        self.annotate = annotate
        self.then = then  # submit()'s callback; None for append(), whose caller waits
        self.row: tuple[Any, ...] | None = None
        self.stored = False
        self.done = False
        self.error: BaseException | None = None


def _load(record_id: int, text: str) -> Beacon:
    beacon = Beacon.from_json(text)
    beacon.id = record_id
    return beacon


_DELETE_CHUNK = 500  # ids per DELETE statement (SQLite's variable limit was 999 before 3.32)


class StoreError(Exception):
    """The database cannot be used (unwritable, corrupt, full); message is one line."""


@dataclass(frozen=True)
class StoreEvent:
    """What listeners hear: ``appended`` (with the record), ``deleted`` (with the ids that went),
    ``cleared`` (every record went), ``session``, or ``changed`` (another process wrote to the journal:
    read it again; see :mod:`mockserver.storage.watch`)."""

    type: str
    beacon: Beacon | None = None
    session: int | None = None
    ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class SessionInfo:
    """One server run (or a "New session" from the GUI)."""

    id: int
    started_at: str
    label: str
    count: int


Listener = Callable[[StoreEvent], None]
Committed = Callable[[Beacon, BaseException | None], None]  # submit()'s callback: the record, or why it is not stored


class BeaconStore:
    """Durable, thread-safe journal of captured requests."""

    def __init__(self, path: str | Path = ":memory:", *, start_session: bool = True, shared: bool = False) -> None:
        """``shared``: other processes append to the same file (``serve --workers``); every commit is then a
        write transaction, so a record's ``annotate`` (see :meth:`append`) runs while no other process can
        commit."""
        self.path = str(path)
        self.shared = shared
        self.memory = self.path == ":memory:"
        self._write_lock = threading.Lock()
        self._queue_lock = threading.Lock()
        self._queue: list[_Pending] = []
        self._submitted = threading.Condition(self._queue_lock)  # wakes the committer thread
        self._committer: threading.Thread | None = None
        self._changed = threading.Condition()
        self._listeners: list[Listener] = []
        self._local = threading.local()
        self._closed = False
        self.damaged: str | None = None  # set when a background check finds the file damaged
        if not self.memory:
            self._make_private()
        self._conn = self._connect()
        try:
            self._init_schema()
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            raise StoreError(self._explain(exc)) from exc
        # Reading commands (export, diff, screenshot) pass start_session=False so
        # they leave no empty sessions behind; a first append still starts one.
        self.session: int | None = self.new_session() if start_session else None

    # -- connections ------------------------------------------------------

    def _make_private(self) -> None:
        """The database file, and so its -wal and -shm (SQLite gives them the
        database's mode), 0600 before SQLite opens it; a new folder 0700, as is
        the data folder; loose modes found on an existing journal are tightened."""
        path = Path(self.path).expanduser()
        parent = path.parent
        try:
            if not parent.is_dir() or is_data_dir(parent):  # a file in the way is reported here
                make_private_dir(parent)
        except OSError as exc:
            raise StoreError(f"cannot create the database folder {parent}: {one_line(exc)}") from exc
        try:
            if not create_private_file(path):
                for companion in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
                    restrict_to_owner(companion)
        except OSError:
            pass  # unwritable or not a file: sqlite's own error says so, in the usual words

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=10)
        except sqlite3.Error as exc:
            raise StoreError(self._explain(exc)) from exc
        conn.execute("PRAGMA busy_timeout = 10000")
        return conn

    def _explain(self, exc: BaseException) -> str:
        text = one_line(exc)
        if "not a database" in text or "malformed" in text:
            return f"{self.path} is not a usable inspector database ({text}); it was left untouched"
        if "readonly" in text or "unable to open" in text or "permission" in text.lower():
            return f"cannot write the database {self.path}: {text}"
        if "full" in text:
            return f"the disk holding {self.path} is full: {text}"
        return f"database {self.path}: {text}"

    def _init_schema(self) -> None:
        conn = self._conn
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if tables and "beacons" not in tables:
            raise sqlite3.DatabaseError("file is not a database: it has tables but none of the inspector's")
        if version > SCHEMA_VERSION:
            raise sqlite3.DatabaseError(f"made by a newer inspector (schema {version})")
        if not self.memory and tables:
            self._check_pages()
        if not self.memory:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode.lower() != "wal":
                log.warning("SQLite refused WAL mode (%s)", mode)
        # NORMAL in WAL: a commit is in the OS once it returns, so it survives
        # the process being killed; only a power cut can lose the last commits.
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.executescript(SCHEMA)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _check_pages(self) -> None:
        """``PRAGMA quick_check`` before anything is written, so a damaged file is left as it is.

        It reads every page: instant for a typical journal, but for a file over
        CHECK_AT_OPEN_BYTES (about 10,000 records) it would cost the open
        seconds with a cold disk cache, so there it runs on a background
        thread a few seconds after opening; if it finds damage, appends are
        refused from then on (StoreError: the HTTP answer is a 503) and the
        file gets no more writes.
        """
        try:
            size = Path(self.path).stat().st_size
        except OSError:
            size = 0
        if size <= CHECK_AT_OPEN_BYTES:
            problem = _quick_check(self._conn)
            if problem:
                raise sqlite3.DatabaseError(f"database disk image is malformed: {problem}")
            return

        def check_in_background() -> None:
            # Later, not at once: reading the whole file would compete with the
            # first listing of it (a cold open of 100,000 records: +0.3 s).
            time.sleep(CHECK_DELAY)
            if self._closed:
                return
            try:
                conn = self._connect()
                try:
                    problem = _quick_check(conn)
                finally:
                    conn.close()
            except (StoreError, sqlite3.Error) as exc:
                problem = one_line(exc)
            if problem:
                self.damaged = (f"{self.path} is damaged (database disk image is malformed: {problem}); "
                                "nothing more is written to it")
                log.error("%s", self.damaged)

        threading.Thread(target=check_in_background, name="store-check", daemon=True).start()

    @contextmanager
    def _reader(self) -> Iterator[sqlite3.Connection]:
        """A connection for reads: per thread on a file (WAL readers never block
        the writer); the single connection under the lock for ``:memory:``."""
        if self.memory:
            with self._write_lock:
                yield self._conn
            return
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        yield conn

    def _write(self, sql: str, params: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        try:
            return self._conn.execute(sql, params)
        except sqlite3.Error as exc:
            raise StoreError(self._explain(exc)) from exc

    # -- sessions ---------------------------------------------------------

    def new_session(self, label: str = "", *, make_current: bool = True) -> int:
        """Add a session and return its id. When current (the default), later
        appends carry it and listeners hear a ``session`` event; otherwise it is
        only a place to put records explicitly (HAR import into a live journal)."""
        with self._write_lock:
            cur = self._write("INSERT INTO sessions (started_at, label) VALUES (?, ?)", (iso_utc(utc_now()), label))
            session = cur.lastrowid
            assert session is not None  # set by every INSERT
            if make_current:
                self.session = session
        if make_current:
            self._notify(StoreEvent("session", session=session))
        return session

    def sessions(self) -> list[SessionInfo]:
        """All sessions, oldest first, with how many records each holds."""
        with self._reader() as conn:
            rows = conn.execute(
                "SELECT s.id, s.started_at, s.label, COUNT(b.id) FROM sessions s "
                "LEFT JOIN beacons b ON b.session = s.id GROUP BY s.id ORDER BY s.id"
            ).fetchall()
        return [SessionInfo(int(r[0]), r[1], r[2], int(r[3])) for r in rows]

    # -- writing ----------------------------------------------------------

    def append(self, beacon: Beacon, annotate: Callable[[Beacon], None] | None = None) -> Beacon:
        """Store ``beacon`` (assigning ``id`` and ``session``) and commit; return once committed.

        ``annotate`` runs under the write lock just before the insert, so
        checks that compare with earlier records (duplicates) see them all.

        Group commit: appends arriving while another commit is in progress
        queue up, and the next thread to get the write lock inserts the whole
        queue in one transaction. Every caller still returns only after the
        transaction holding its record has committed (or raises StoreError),
        so an acknowledged request is never lost; under load many records
        share one commit instead of paying one each (see the README's
        Benchmarks).
        """
        if self.damaged:
            raise StoreError(self.damaged)
        if self.session is None and beacon.session is None:
            self.new_session()
        item = _Pending(beacon, annotate)
        with self._queue_lock:
            self._queue.append(item)
        with self._write_lock:
            if not item.done:  # nobody committed it while we waited: commit the queue
                with self._queue_lock:
                    batch, self._queue = self._queue, []
                self._commit(batch)
            else:
                batch = []
        self._finish(batch)  # submitted records this thread committed along with its own
        if item.error is not None:
            raise item.error
        self._notify(StoreEvent("appended", beacon=beacon))
        return beacon

    def submit(self, beacon: Beacon, then: Committed, annotate: Callable[[Beacon], None] | None = None) -> None:
        """Queue ``beacon`` for the next group commit and return at once; ``then(beacon, error)`` runs once
        its transaction committed (``error`` None) or failed (a StoreError, or what ``annotate`` raised).

        The same group commit as :meth:`append`, for callers that must not block (the server's event
        loop): a committer thread, started on first use, commits whatever is queued, then calls each
        ``then`` and the listeners on its own thread. ``then`` must not block either.
        """
        if self.damaged:
            then(beacon, StoreError(self.damaged))
            return
        if self.session is None and beacon.session is None:
            self.new_session()
        with self._queue_lock:
            if self._closed:
                error = StoreError(f"database {self.path}: the journal is closed")
            else:
                error = None
                if self._committer is None:  # started before anything is queued for it: if it cannot
                    committer = threading.Thread(target=self._commit_submitted, name="store-committer",
                                                 daemon=True)
                    committer.start()  # start (no threads left), the caller hears it and nothing waits
                    self._committer = committer
                self._queue.append(_Pending(beacon, annotate, then))
                self._submitted.notify()
        if error is not None:
            then(beacon, error)

    def _commit_submitted(self) -> None:
        """The committer thread: commit the queue whenever it holds something, until the store closes."""
        while True:
            with self._queue_lock:
                while not self._queue and not self._closed:
                    self._submitted.wait()
                if not self._queue:  # closed, and nothing left
                    return
            with self._write_lock:
                with self._queue_lock:
                    batch, self._queue = self._queue, []
                if batch:
                    self._commit(batch)
            self._finish(batch)

    def _finish(self, batch: list[_Pending]) -> None:
        """After a commit: the callbacks of submitted records, and the listeners for the stored ones
        (an append()'s caller tells them itself)."""
        for item in batch:
            if item.then is None:
                continue
            if item.error is None:
                self._notify(StoreEvent("appended", beacon=item.beacon))
            try:
                item.then(item.beacon, item.error)
            except Exception:  # a caller's callback must never stop the committer
                log.exception("a submitted record's callback failed")

    def _insert(self, item: _Pending) -> None:
        """Annotate, serialise and INSERT one queued record (under the write lock)."""
        beacon = item.beacon
        if item.row is None:
            if beacon.session is None:
                beacon.session = self.session
            if item.annotate is not None:
                item.annotate(beacon)
            item.row = record_row(beacon)
        try:
            cur = self._conn.execute(INSERT, item.row)
        except UnicodeEncodeError:
            item.row = utf8_row(item.row)
            cur = self._conn.execute(INSERT, item.row)
        assert cur.lastrowid is not None  # set by every INSERT
        beacon.id = cur.lastrowid
        item.stored = True

    def _commit(self, batch: list[_Pending]) -> None:
        """Insert ``batch`` in one transaction (a single record: one autocommit INSERT,
        as before group commit, unless ``shared``). If the transaction fails, each record is retried on
        its own, so one record's failure is only its own. Sets ``done``/``error``."""
        conn = self._conn
        try:
            if len(batch) > 1 or self.shared:
                try:
                    conn.execute("BEGIN IMMEDIATE")
                    for item in batch:
                        self._insert(item)
                    conn.execute("COMMIT")
                    return
                except Exception:  # noqa: BLE001 - whatever failed, each record is retried on its own below
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    for item in batch:
                        item.stored = False
                        item.beacon.id = None
            for item in batch:
                try:
                    self._insert(item)
                except sqlite3.Error as exc:
                    item.beacon.id = None
                    item.error = StoreError(self._explain(exc))
                    item.error.__cause__ = exc
                except Exception as exc:  # noqa: BLE001 - annotate or serialisation: that record's caller hears it
                    item.beacon.id = None
                    item.error = exc
        except sqlite3.Error as exc:  # ROLLBACK itself failed (closed database)
            for item in batch:
                if not item.stored and item.error is None:
                    item.error = StoreError(self._explain(exc))
        finally:
            for item in batch:
                if not item.stored and item.error is None:  # interrupted: never claim it is stored
                    item.error = StoreError(f"database {self.path}: the record was not stored")
                item.done = True

    def clear(self) -> int:
        """Delete every record (sessions are kept). Returns how many went."""
        with self._write_lock:
            cur = self._write("DELETE FROM beacons")
            removed = cur.rowcount
        self._notify(StoreEvent("cleared"))
        return removed

    def delete(self, ids: list[int]) -> int:
        """Delete the given records. Returns how many went."""
        return len(self.delete_where(ids=ids))

    def delete_where(self, *, kind: str | None = None, status: str | None = None, session: int | None = None,
                     ids: list[int] | None = None) -> list[int]:
        """Delete the records matching every filter given (``ids``: only among those); returns their ids.

        Listeners hear one ``deleted`` event with exactly those ids (none when nothing matched).
        """
        rules = column_rules(kind, status, session)
        wanted = sorted(set(ids)) if ids is not None else None
        chunks: list[list[Rule]] = [rules] if wanted is None else [
            [*rules, IdIn(tuple(wanted[i:i + _DELETE_CHUNK]))] for i in range(0, len(wanted), _DELETE_CHUNK)]
        removed: list[int] = []
        with self._write_lock:  # the only writer: what is selected here is what goes
            for chunk_rules in chunks:
                where, params = where_sql(chunk_rules)
                removed += [row[0] for row in self._write(f"SELECT id FROM beacons{where}", tuple(params))]
            for start in range(0, len(removed), _DELETE_CHUNK):
                chunk = removed[start:start + _DELETE_CHUNK]
                self._write(f"DELETE FROM beacons WHERE id IN ({','.join('?' * len(chunk))})", tuple(chunk))
        if removed:
            self._notify(StoreEvent("deleted", ids=tuple(removed)))
        return removed

    # -- reading ----------------------------------------------------------
    # Every filter is a rule of mockserver.records.view: the keyword filters are turned into
    # rules, ``where`` gives more; the rules SQL cannot express (free text, a time) are left to
    # the caller (RecordFilter.records applies them to each page).

    def get(self, record_id: int) -> Beacon | None:
        """One record by id, or None."""
        with self._reader() as conn:
            row = conn.execute("SELECT id, record FROM beacons WHERE id = ?", (record_id,)).fetchone()
        return _load(*row) if row else None

    @staticmethod
    def _select_sql(columns: str, rules: Sequence[Rule], limit: int | None,
                    source: str = "beacons") -> tuple[str, list[Any]]:
        where, params = where_sql(rules)
        sql = f"SELECT {columns} FROM {source}{where} ORDER BY id"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return sql, params

    def query(self, *, kind: str | None = None, status: str | None = None, since: int | None = None,
              session: int | None = None, limit: int | None = None, where: Sequence[Rule] = ()) -> list[Beacon]:
        """Records matching the filters (``since``: ids after it), oldest first."""
        sql, params = self._select_sql("id, record", [*column_rules(kind, status, session, since), *where], limit)
        with self._reader() as conn:
            return [_load(*r) for r in conn.execute(sql, params).fetchall()]

    def rows(self, where: Sequence[Rule] = (), *, limit: int | None = None) -> list[tuple[Summary, Beacon]]:
        """Records matching ``where`` with their stored at-a-glance columns, oldest first."""
        sql, params = self._select_sql(f"id, {', '.join(SUMMARY_COLUMNS)}, record", where, limit)
        with self._reader() as conn:
            return [(Summary(r[0], *r[1:-1]), _load(r[0], r[-1])) for r in conn.execute(sql, params).fetchall()]

    def summaries(self, *, since: int | None = None, session: int | None = None,
                  limit: int | None = None) -> list[Summary]:
        """At-a-glance rows, oldest first, without parsing any record's JSON."""
        sql, params = self._select_sql(f"id, {', '.join(SUMMARY_COLUMNS)}",
                                       column_rules(session=session, after_id=since), limit, SUMMARY_SOURCE)
        # Most columns repeat (a handful of browsers, versions, hosts): one string
        # per distinct value, made row by row from the cursor, keeps 100,000 rows
        # in ~30 MB instead of ~115 MB at no cost in time (see the README's Benchmarks).
        shared: dict[Any, Any] = {}
        one = shared.setdefault
        with self._reader() as conn:
            return [Summary(i, se, at, one(k, k), one(st, st), one(m, m), one(pa, pa), one(h, h), one(v, v),
                            one(rc, rc), one(pr, pr), one(b, b), one(o, o), one(ip, ip), one(pj, pj), one(pb, pb))
                    for i, se, at, k, st, m, pa, h, v, rc, pr, b, o, ip, pj, pb in conn.execute(sql, params)]

    def count(self, *, kind: str | None = None, status: str | None = None, since: int | None = None,
              session: int | None = None, where: Sequence[Rule] = ()) -> int:
        """How many records match the filters (``since``: ids after it; rules SQL cannot express are left out)."""
        clause, params = where_sql([*column_rules(kind, status, session, since), *where])
        with self._reader() as conn:
            return int(conn.execute(f"SELECT COUNT(*) FROM beacons{clause}", params).fetchone()[0])

    def counts(self) -> dict[str, Any]:
        """``{"total", "ok", "invalid", "by_kind"}`` over all records."""
        with self._reader() as conn:
            by_status = dict(conn.execute("SELECT status, COUNT(*) FROM beacons GROUP BY status").fetchall())
            by_kind = dict(conn.execute("SELECT kind, COUNT(*) FROM beacons GROUP BY kind").fetchall())
        return {
            "total": sum(by_status.values()),
            "ok": by_status.get("ok", 0),
            "invalid": by_status.get("invalid", 0),
            "by_kind": by_kind,
        }

    def last_id(self) -> int:
        """The largest record id (0 when empty)."""
        with self._reader() as conn:
            return int(conn.execute("SELECT COALESCE(MAX(id), 0) FROM beacons").fetchone()[0])

    def wait_for_count(self, count: int, timeout: float, *, kind: str | None = None,
                       status: str | None = None, cancel: threading.Event | None = None) -> tuple[bool, int]:
        """Block until at least ``count`` records match, ``timeout`` passes or ``cancel`` is set.

        Returns (reached, current count).
        """
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                current = self.count(kind=kind, status=status)
                remaining = deadline - time.monotonic()
                if current >= count or remaining <= 0 or self._closed or (cancel and cancel.is_set()):
                    return current >= count, current
                # Short slices so a cancel (server stopping) is seen promptly.
                self._changed.wait(min(remaining, 0.5))

    # -- listeners --------------------------------------------------------

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(event)`` after each change; returns an unsubscribe function.

        Listeners run on the writer's thread and must not block: hand work to
        a queue (the SSE feed, the Qt bridge) instead.
        """
        with self._changed:
            self._listeners = [*self._listeners, listener]

        def unsubscribe() -> None:
            with self._changed:
                self._listeners = [x for x in self._listeners if x is not listener]

        return unsubscribe

    def announce(self, event: StoreEvent) -> None:
        """Tell listeners and waiters of a change this store did not make (another process's commit)."""
        self._notify(event)

    def _notify(self, event: StoreEvent) -> None:
        with self._changed:
            listeners = self._listeners
            self._changed.notify_all()
        for listener in listeners:
            try:
                listener(event)
            except Exception:  # a broken front end must never break capture
                log.exception("store listener failed")

    def close(self) -> None:
        """Commit what was submitted, wake waiters and close the connection."""
        with self._queue_lock:
            self._closed = True
            self._submitted.notify()
        if self._committer is not None:
            self._committer.join()
        with self._changed:
            self._changed.notify_all()
        with self._write_lock:
            self._conn.close()
