"""Ingestion throughput: ``serve`` (the full pipeline) against a naive mock, the stack's ceiling and more.

The targets (see :data:`LABELS`): the naive mock; the ceiling of today's stack (granian's
embedded server, the inspector's bridge, Flask answering a constant GIF); granian with a bare
ASGI callable (the stack alone); the former stack (cheroot + Flask, a reference); the full
pipeline (``serve``); and ``serve --workers 1`` and ``--workers 2`` when this checkout's
``serve`` has that option (:func:`serve_has_workers`). Every target runs as its own process,
fresh for each measurement, while the load generator runs in another. Rounds interleave the
targets (in a rotating order) so a noisy neighbour on the machine hurts them all alike; the
table reports medians over the rounds and ratios paired within a round.

CPU time per request is the server's process tree (:func:`bench.process.tree_usage`): the
parent and, for ``--workers``, every worker process below it.

For the pipeline rows the database is a real file in a temporary folder, and the
stored records are counted straight from SQLite before and after each run:
every answered request must be there (zero loss), and nothing may be there
that was never sent.
"""

from __future__ import annotations

import importlib.util
import os
import re
import sqlite3
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .load import WRK, LoadResult, run_python, run_wrk
from .mix import Request
from .process import stop_tree, tree_usage

ROOT = Path(__file__).resolve().parents[1]
TARGETS = ("naive", "ceiling", "asgi", "cheroot", "pipeline", "workers1", "workers2", "before")
LABELS = {
    "naive": "naive mock: Flask GIF on werkzeug's threaded server (no decoding, no storage)",
    "ceiling": "ceiling of today's stack: granian embedded + the inspector's bridge + Flask, constant GIF",
    "asgi": "the stack alone: granian embedded + a bare ASGI callable, constant GIF",
    "cheroot": "former stack (reference): cheroot + Flask, constant GIF",
    "pipeline": "full pipeline: `serve` (decode, enrich, check, SQLite commit before the answer)",
    "workers1": "`serve --workers 1`",
    "workers2": "`serve --workers 2`",
    "before": "the same `serve` from another checkout (`--before`)",
}
COMPARED = ("naive", "ceiling", "asgi", "cheroot", "before")  # the pipeline ÷ each of these
WORKERS = {"workers1": 1, "workers2": 2}  # serve --workers N
STORED = ("pipeline", "workers1", "workers2", "before")  # targets with a journal: loss is counted
BEFORE: dict[str, Path] = {}  # "tree": a checkout whose `serve` runs as the "before" target


@dataclass
class Run:
    """One measurement of one target."""

    target: str
    scheme: str
    round: int
    load: LoadResult
    stored_ok: int | None = None
    stored_invalid: int | None = None
    cpu_us: float | None = None  # the server's CPU time (user + system, its process tree) per answered request
    switches: float | None = None  # its threads' context switches per answered request

    @property
    def lost(self) -> int | None:
        """Answered requests with no record (must be 0); None for targets without a store."""
        if self.stored_ok is None or self.stored_invalid is None:
            return None
        return max(0, self.load.ok_2xx - self.stored_ok) + max(0, self.load.other - self.stored_invalid)

    @property
    def phantom(self) -> int | None:
        """Records for requests never sent (must be 0)."""
        if self.stored_ok is None or self.stored_invalid is None:
            return None
        return max(0, self.stored_ok + self.stored_invalid - self.load.sent)


@dataclass
class Server:
    """A running target process and where it listens."""

    proc: subprocess.Popen
    port: int
    db: Path | None = None
    log: Path | None = None
    extra: dict[str, int] = field(default_factory=dict)

    def stop(self) -> None:
        """Stop it (SIGTERM, then SIGKILL), and any worker process of it still there after that."""
        stop_tree(self.proc)


def _env(home: Path) -> dict[str, str]:
    return {**os.environ, "TELEMETRY_INSPECTOR_HOME": str(home), "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": str(ROOT)}


def start_target(kind: str, scheme: str, work: Path, tag: str) -> Server:
    """Start one target on free loopback ports; return once it listens."""
    home = work / "home"
    if kind in STORED:
        tree = BEFORE["tree"] if kind == "before" else ROOT
        db = work / f"{tag}.sqlite3"
        log = work / f"{tag}.out"
        args = [sys.executable, "-m", "mockserver", "serve", "--port", "0", "--db", str(db)]
        args += ["--https-port", "0"] if scheme == "https" else ["--no-https"]
        if kind in WORKERS:
            args += ["--workers", str(WORKERS[kind])]
        with open(log, "w") as out:
            proc: subprocess.Popen[str] = subprocess.Popen(
                args, cwd=tree, env={**_env(home), "PYTHONPATH": str(tree)}, stdout=out, stderr=subprocess.STDOUT,
                text=True)
        pattern = r"HTTPS +https://127\.0\.0\.1:(\d+)/" if scheme == "https" else r"HTTP +http://127\.0\.0\.1:(\d+)/"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            text = log.read_text()
            found = re.search(pattern, text)
            if found and "Ctrl-C stops" in text:
                return Server(proc, int(found.group(1)), db=db, log=log)
            if proc.poll() is not None:
                raise RuntimeError(f"serve exited: {text}")
            time.sleep(0.05)
        proc.kill()
        raise RuntimeError(f"serve did not start: {log.read_text()}")
    args = [sys.executable, "-m", "bench.targets", kind, "--home", str(home)]
    if scheme == "https":
        args.append("--https")
    proc = subprocess.Popen(args, cwd=ROOT, env=_env(home), stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline() if proc.stdout else ""
    found = re.match(r"LISTENING (\d+)", line)
    if not found:
        proc.kill()
        raise RuntimeError(f"{kind} did not start: {line!r}")
    return Server(proc, int(found.group(1)))


def serve_has_workers(tree: Path = ROOT) -> bool:
    """True when ``serve --help`` in the checkout ``tree`` lists ``--workers``."""
    out = subprocess.run([sys.executable, "-m", "mockserver", "serve", "--help"], cwd=tree, capture_output=True,
                         text=True, env={**os.environ, "PYTHONPATH": str(tree)}, timeout=60)
    return "--workers" in out.stdout


def available(targets: tuple[str, ...]) -> tuple[tuple[str, ...], dict[str, str]]:
    """The targets this machine and checkout can run, and why each other one is left out."""
    skipped: dict[str, str] = {}
    if any(kind in WORKERS for kind in targets) and not serve_has_workers():
        for kind in WORKERS:
            skipped[kind] = ("not measured: `python3 -m mockserver serve --help` does not list `--workers` "
                             "in this checkout")
    if "cheroot" in targets and importlib.util.find_spec("cheroot") is None:
        skipped["cheroot"] = "not measured: cheroot is not installed (it comes with `pip install -e '.[test]'`)"
    return tuple(kind for kind in targets if kind not in skipped), skipped


def stored_counts(db: Path) -> tuple[int, int]:
    """(ok, invalid) records in the database, read straight from SQLite."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        rows = dict(conn.execute("SELECT status, COUNT(*) FROM beacons GROUP BY status").fetchall())
    finally:
        conn.close()
    return rows.get("ok", 0), rows.get("invalid", 0)


def settled_counts(db: Path) -> tuple[int, int]:
    """Counts once requests still in flight have been committed (two equal reads 0.2 s apart)."""
    last = stored_counts(db)
    for _ in range(100):
        time.sleep(0.2)
        now = stored_counts(db)
        if now == last:
            return now
        last = now
    return last


def measure(kind: str, scheme: str, round_no: int, mix: list[Request], work: Path, *,
            seconds: float, warmup: float, connections: int, threads: int, use_wrk: bool) -> Run:
    """Start ``kind``, warm it up, load it for ``seconds``, count, stop."""
    server = start_target(kind, scheme, work, f"{kind}-{scheme}-{round_no}")
    url = f"{scheme}://127.0.0.1:{server.port}/"

    def load(duration: float) -> LoadResult:
        if use_wrk:
            return run_wrk(url, mix, seconds=duration, connections=connections, threads=threads, script_dir=work)
        return run_python(url, mix, seconds=duration, connections=connections)

    try:
        if warmup:
            load(warmup)
        before = settled_counts(server.db) if server.db else None
        usage_before = tree_usage(server.proc.pid)
        result = load(seconds)
        usage_after = tree_usage(server.proc.pid)
        run = Run(kind, scheme, round_no, result)
        if usage_before and usage_after and result.answered:
            run.cpu_us = 1e6 * (usage_after[0] - usage_before[0]) / result.answered
            run.switches = (usage_after[1] - usage_before[1]) / result.answered
        if server.db and before is not None:
            after = settled_counts(server.db)
            run.stored_ok, run.stored_invalid = after[0] - before[0], after[1] - before[1]
        if server.proc.poll() is not None:
            raise RuntimeError(f"{kind} ({scheme}) died during the run")
        return run
    finally:
        server.stop()


def run_all(mix: list[Request], work: Path, *, rounds: int, seconds: float, warmup: float, connections: int,
            threads: int, schemes: tuple[str, ...] = ("http", "https"), targets: tuple[str, ...] = TARGETS,
            use_wrk: bool | None = None, progress=print) -> list[Run]:
    """All targets × schemes × rounds, interleaved."""
    use_wrk = bool(WRK) if use_wrk is None else use_wrk
    runs = []
    for round_no in range(rounds):
        for scheme in schemes:
            order = list(targets[round_no % len(targets):]) + list(targets[:round_no % len(targets)])
            for kind in order:
                run = measure(kind, scheme, round_no, mix, work, seconds=seconds, warmup=warmup,
                              connections=connections, threads=threads, use_wrk=use_wrk)
                extra = "" if run.lost is None else f"  stored {run.stored_ok}+{run.stored_invalid} lost {run.lost}"
                progress(f"  round {round_no + 1}/{rounds} {scheme:5} {kind:8} {run.load.rps:8.0f} req/s "
                         f"(sent {run.load.sent}, 2xx {run.load.ok_2xx}, other {run.load.other}, "
                         f"socket errors {run.load.socket_errors}){extra}")
                runs.append(run)
    return runs


def _median_or_none(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def _row(mine: list[Run]) -> dict[str, Any]:
    """Medians and totals of one target's runs in one scheme."""
    stored = mine[0].stored_ok is not None
    return {
        "median_rps": statistics.median(r.load.rps for r in mine),
        "rps": [round(r.load.rps) for r in mine],
        "median_p50_ms": statistics.median(r.load.latency_p50_ms for r in mine),
        "median_p99_ms": statistics.median(r.load.latency_p99_ms for r in mine),
        "median_cpu_us": _median_or_none([r.cpu_us for r in mine]),
        "median_switches": _median_or_none([r.switches for r in mine]),
        "socket_errors": sum(r.load.socket_errors for r in mine),
        "answered": sum(r.load.answered for r in mine),
        "answered_2xx": sum(r.load.ok_2xx for r in mine),
        "lost": sum(r.lost or 0 for r in mine) if stored else None,
        "phantom": sum(r.phantom or 0 for r in mine) if stored else None,
        "stored": sum((r.stored_ok or 0) + (r.stored_invalid or 0) for r in mine) if stored else None,
        "unanswered_in_flight": sum(r.load.sent - r.load.answered for r in mine),
    }


def compare(runs: list[Run], table: dict[str, dict[str, Any]], scheme: str, top: str, bottom: str) -> dict:
    """``top`` ÷ ``bottom`` in ``scheme``: the ratio of the median req/s, the median of the ratios
    within each round (paired: robust to drift between rounds), and ``bottom``'s CPU time per
    request ÷ ``top``'s (above 1: ``top`` spends less per request). Empty when either is missing."""
    if top not in table or bottom not in table:
        return {}
    by_round = {r.round: r.load.rps for r in runs if r.scheme == scheme and r.target == bottom}
    paired = [r.load.rps / by_round[r.round] for r in runs
              if r.scheme == scheme and r.target == top and by_round.get(r.round)]
    out: dict[str, float] = {"ratio": table[top]["median_rps"] / table[bottom]["median_rps"]}
    if paired:
        out["paired_median"] = statistics.median(paired)
    cpu_top, cpu_bottom = table[top]["median_cpu_us"], table[bottom]["median_cpu_us"]
    if cpu_top and cpu_bottom:
        out["cpu_ratio"] = cpu_bottom / cpu_top
    return out


def summarise(runs: list[Run]) -> dict:
    """Per scheme: each target's medians and loss totals; ``pipeline_ratio*`` on each compared target
    (the pipeline ÷ it), ``vs_naive*`` on each ``--workers`` row, and ``workers_scaling`` (N = 2 ÷ N = 1)."""
    out: dict = {}
    for scheme in sorted({r.scheme for r in runs}):
        table: dict[str, dict[str, Any]] = {}
        for kind in TARGETS:
            mine = [r for r in runs if r.scheme == scheme and r.target == kind]
            if mine:
                table[kind] = _row(mine)
        for kind in COMPARED:
            ratio = compare(runs, table, scheme, "pipeline", kind)
            if ratio:
                table[kind]["pipeline_ratio"] = ratio["ratio"]
                table[kind]["pipeline_ratio_paired_median"] = ratio.get("paired_median")
                table[kind]["pipeline_cpu_ratio"] = ratio.get("cpu_ratio")
        for kind in WORKERS:
            ratio = compare(runs, table, scheme, kind, "naive")
            if ratio:
                table[kind]["vs_naive"] = ratio["ratio"]
                table[kind]["vs_naive_paired_median"] = ratio.get("paired_median")
                table[kind]["vs_naive_cpu_ratio"] = ratio.get("cpu_ratio")
        scaling = compare(runs, table, scheme, "workers2", "workers1")
        if scaling:
            table["workers_scaling"] = scaling
        out[scheme] = table
    return out


def as_dicts(runs: list[Run]) -> list[dict]:
    """Raw runs, for the JSON results file."""
    return [{**asdict(r), "rps": r.load.rps, "lost": r.lost, "phantom": r.phantom} for r in runs]
