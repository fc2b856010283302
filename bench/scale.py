"""Scale: a database of 100,000 records, opened and listed the way a front end does it.

The database is built once per run from the load mix through the real
``capture()`` and the store's own row format (one big transaction, so building
takes seconds, not minutes). Each measurement is a fresh process
(``python3 -m bench.scale DB``) that reports, as JSON:

* ``open_s``: ``BeaconStore(path)`` (schema check, WAL, new session);
* ``summaries_s``: ``store.summaries()`` of all records (the at-a-glance rows a
  table shows; no record JSON is parsed);
* ``filter_*_s``: filtering those rows in Python (by kind and status; a
  free-text search across the columns, as a filter box does; a count by version);
* ``query_invalid_s``: ``store.query(status="invalid")``, full records (JSON parsed);
* ``counts_s``: ``store.counts()``;
* ``rss_mb`` (peak resident memory of the process) and ``rss_before_open_mb``
  (after imports, before the database is opened).

Then the real window opens the same database (``bench/window_probe.py``): time
to the table painted with every record, memory, and how long scrolling,
filtering and sorting hold the GUI thread.

Each is measured with the OS page cache warm and cold (the database's own
pages dropped with ``posix_fadvise(DONTNEED)`` first; nothing else is evicted).
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]


def build(path: Path, records: int = 100_000, progress=print) -> Path:
    """Write ``records`` captured records into a new database at ``path``."""
    from mockserver.core.capture import RawRequest, capture
    from mockserver.storage.rows import INSERT, record_row
    from mockserver.storage.store import BeaconStore

    from .mix import build_mix

    if path.exists():
        return path
    mix = build_mix(1000, seed=60)
    store = BeaconStore(path)
    start = datetime(2026, 11, 1, tzinfo=UTC)
    conn = store._conn  # bulk load: the store's own row format, one transaction
    conn.execute("BEGIN")
    for n in range(records):
        r = mix[n % len(mix)]
        parts = urlsplit(r.path)
        raw = RawRequest(r.method, parts.path, parts.query, {"Host": "telemetry.refine.dev", **r.headers}, r.body,
                         None, "https", f"127.0.0.{1 + n % 200}")
        beacon = capture(raw, received_at=start + timedelta(seconds=n * 1.7))
        beacon.session = store.session
        conn.execute(INSERT, record_row(beacon))
        if progress and n and n % 25_000 == 0:
            progress(f"  built {n:,} records")
    conn.execute("COMMIT")
    store.close()
    return path


def evict(path: Path) -> None:
    """Drop this database's pages from the OS page cache (only its own files): a cold open."""
    for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        if name.exists() and hasattr(os, "posix_fadvise"):
            fd = os.open(name, os.O_RDONLY)
            try:
                os.fsync(fd)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def measure(path: Path, cold: bool = False) -> dict:
    """Run in a fresh process: open, list, filter; times and memory."""
    if cold:
        evict(path)
    timings: dict[str, float] = {}

    def timed(name: str, fn):
        started = time.perf_counter()
        value = fn()
        timings[name] = time.perf_counter() - started
        return value

    from mockserver.storage.store import BeaconStore

    rss_before = _rss_mb()
    store = timed("open_s", lambda: BeaconStore(path))
    rows = timed("summaries_s", store.summaries)
    timed("filter_kind_status_s", lambda: [s for s in rows if s.kind == "beacon" and s.status == "ok"])
    needle = "localhost"
    timed("filter_text_s", lambda: [s for s in rows if any(needle in v for v in s if isinstance(v, str))])

    def by_version() -> dict:
        counts: dict = {}
        for s in rows:
            counts[s.version] = counts.get(s.version, 0) + 1
        return counts

    timed("filter_count_by_version_s", by_version)
    invalid = timed("query_invalid_s", lambda: store.query(status="invalid"))
    timed("counts_s", store.counts)
    result = {**timings, "records": len(rows), "invalid_records": len(invalid),
              "rss_before_open_mb": rss_before, "rss_mb": _peak_rss_mb()}
    store.close()
    return result


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(work: Path, rounds: int, records: int = 100_000, progress=print) -> dict:
    """Build once, then measure ``rounds`` fresh processes (warm page cache, then cold); medians."""
    db = build(work / f"scale-{records}.sqlite3", records, progress)
    runs: list[dict[str, Any]] = []
    cold_runs: list[dict[str, Any]] = []
    for _ in range(rounds):
        for cold, into in ((False, runs), (True, cold_runs)):
            args = [sys.executable, "-m", "bench.scale", str(db)] + (["--cold"] if cold else [])
            out = subprocess.run(args, cwd=ROOT, capture_output=True, text=True,
                                 env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300)
            if out.returncode:
                raise RuntimeError(out.stderr)
            into.append(json.loads(out.stdout))
    keys = [k for k in runs[0] if k not in ("records", "invalid_records")]
    summary = {k: statistics.median(r[k] for r in runs) for k in keys}
    summary["cold"] = {k: statistics.median(r[k] for r in cold_runs) for k in keys}
    summary["records"] = runs[0]["records"]
    summary["invalid_records"] = runs[0]["invalid_records"]
    summary["file_mb"] = db.stat().st_size / 2**20
    summary["rounds"] = runs
    summary["cold_rounds"] = cold_runs
    summary["window"] = window(db, work, rounds, progress)
    return summary


def window(db: Path, work: Path, rounds: int, progress=print) -> dict:
    """The real window over ``db`` (``bench/window_probe.py``), ``rounds`` fresh processes: medians."""
    runs = []
    for n in range(rounds):
        started = time.time()
        out = subprocess.run([sys.executable, "-m", "bench.window_probe", str(db), str(work), f"{started:.6f}"],
                             cwd=ROOT, capture_output=True, text=True, timeout=600,
                             env={**os.environ, "PYTHONPATH": str(ROOT), "QT_QPA_PLATFORM": "offscreen"})
        found = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
        if out.returncode or not found:
            raise RuntimeError(f"the window probe failed: {out.stderr[-2000:]}")
        runs.append(json.loads(found[0][len("RESULT "):]))
        progress(f"  window {n + 1}/{rounds}: painted after {runs[-1]['shown_s']:.2f} s, all "
                 f"{runs[-1]['rows']:,} rows after {runs[-1]['loaded_s']:.2f} s")

    def median(pick) -> float:
        return statistics.median(pick(r) for r in runs)

    scroll = sorted(x for r in runs for x in r["scroll_s"])
    return {
        "rows": runs[0]["rows"],
        "shown_s": median(lambda r: r["shown_s"]),
        "first_rows": runs[0]["first_rows"],
        "loaded_s": median(lambda r: r["loaded_s"]),
        "search_ready_s": median(lambda r: r["search_ready_s"]),
        "load_step_max_s": max(r["load_step_max_s"] for r in runs),
        "rss_mb": median(lambda r: r["rss_mb"]),
        "scroll_p50_s": statistics.median(scroll),
        "scroll_max_s": scroll[-1],
        "filter_s": {k: median(lambda r, k=k: r["filter_s"][k]) for k in runs[0]["filter_s"]},
        "filter_rows": runs[0]["filter_rows"],
        "clear_s": median(lambda r: r["clear_s"]),
        "sort_s": {k: median(lambda r, k=k: r["sort_s"][k]) for k in runs[0]["sort_s"]},
        "redact_s": median(lambda r: r["redact_s"]),
        "redacted_filter_s": median(lambda r: r["redacted_filter_s"]),
        "redacted_sort_s": {k: median(lambda r, k=k: r["redacted_sort_s"][k]) for k in runs[0]["redacted_sort_s"]},
        "runs": runs,
    }


if __name__ == "__main__":
    print(json.dumps(measure(Path(sys.argv[1]), cold="--cold" in sys.argv[2:])))
