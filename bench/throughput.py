"""Ingestion throughput: ``serve`` (the full pipeline) against a naive mock and the stack's ceiling.

Every target runs as its own process, one at a time, fresh for each measurement,
while the load generator runs in another. Rounds interleave the targets (in a
rotating order) so a noisy neighbour on the machine hurts them all alike; the
table reports medians over the rounds.

For the pipeline the database is a real file in a temporary folder, and the
stored records are counted straight from SQLite before and after each run:
every answered request must be there (zero loss), and nothing may be there
that was never sent.
"""

from __future__ import annotations

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
from .process import stop_process

ROOT = Path(__file__).resolve().parents[1]
TARGETS = ("naive", "ceiling", "wsgi", "pipeline", "before")
LABELS = {
    "naive": "naive mock: Flask GIF on werkzeug threaded",
    "ceiling": "ceiling of the former stack: cheroot + Flask, constant GIF",
    "wsgi": "cheroot + bare WSGI, constant GIF",
    "pipeline": "full pipeline: `serve` (decode, enrich, check, SQLite commit)",
    "before": "the same `serve` from another checkout (`--before`)",
}
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
    cpu_us: float | None = None  # the server process's CPU time (user + system) per answered request
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
        stop_process(self.proc)


def _env(home: Path) -> dict[str, str]:
    return {**os.environ, "TELEMETRY_INSPECTOR_HOME": str(home), "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": str(ROOT)}


def start_target(kind: str, scheme: str, work: Path, tag: str) -> Server:
    """Start one target on free loopback ports; return once it listens."""
    home = work / "home"
    if kind in ("pipeline", "before"):
        tree = BEFORE["tree"] if kind == "before" else ROOT
        db = work / f"{tag}.sqlite3"
        log = work / f"{tag}.out"
        args = [sys.executable, "-m", "mockserver", "serve", "--port", "0", "--db", str(db)]
        args += ["--https-port", "0"] if scheme == "https" else ["--no-https"]
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


def process_usage(pid: int) -> tuple[float, int] | None:
    """(CPU seconds, context switches) of process ``pid`` and all its threads so far; None off Linux.

    CPU per request is steadier than requests per second on a shared machine:
    a neighbour's load slows a run down but adds little CPU time to it.
    """
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        seconds = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        switches = 0
        for task in os.listdir(f"/proc/{pid}/task"):
            try:
                for line in Path(f"/proc/{pid}/task/{task}/status").read_text().splitlines():
                    if "ctxt_switches:" in line:  # voluntary and nonvoluntary
                        switches += int(line.split()[1])
            except OSError:  # a thread that ended meanwhile
                continue
        return seconds, switches
    except (OSError, ValueError, IndexError):
        return None


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
        usage_before = process_usage(server.proc.pid)
        result = load(seconds)
        usage_after = process_usage(server.proc.pid)
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


def summarise(runs: list[Run]) -> dict:
    """Medians per target and scheme, ratios, loss totals."""
    out: dict = {}
    for scheme in sorted({r.scheme for r in runs}):
        table: dict[str, dict[str, Any]] = {}
        for kind in TARGETS:
            mine = [r for r in runs if r.scheme == scheme and r.target == kind]
            if not mine:
                continue
            table[kind] = {
                "median_rps": statistics.median(r.load.rps for r in mine),
                "rps": [round(r.load.rps) for r in mine],
                "median_p50_ms": statistics.median(r.load.latency_p50_ms for r in mine),
                "median_p99_ms": statistics.median(r.load.latency_p99_ms for r in mine),
                "median_cpu_us": _median_or_none([r.cpu_us for r in mine]),
                "median_switches": _median_or_none([r.switches for r in mine]),
                "socket_errors": sum(r.load.socket_errors for r in mine),
                "answered": sum(r.load.answered for r in mine),
                "answered_2xx": sum(r.load.ok_2xx for r in mine),
                "lost": sum(r.lost or 0 for r in mine) if mine[0].lost is not None else None,
                "phantom": sum(r.phantom or 0 for r in mine) if mine[0].phantom is not None else None,
                "stored": sum((r.stored_ok or 0) + (r.stored_invalid or 0) for r in mine)
                if mine[0].stored_ok is not None else None,
                "unanswered_in_flight": sum(r.load.sent - r.load.answered for r in mine),
            }
        pipe = table.get("pipeline", {}).get("median_rps")
        for kind in ("naive", "ceiling", "wsgi", "before"):
            if pipe and kind in table:
                table[kind]["pipeline_ratio"] = pipe / table[kind]["median_rps"]
                # the same ratio per round (paired), then the median: robust to drift between rounds
                paired = []
                for r in runs:
                    if r.scheme == scheme and r.target == "pipeline":
                        other = [o for o in runs if o.scheme == scheme and o.target == kind and o.round == r.round]
                        if other and other[0].load.rps:
                            paired.append(r.load.rps / other[0].load.rps)
                if paired:
                    table[kind]["pipeline_ratio_paired_median"] = statistics.median(paired)
                cpu_pipe, cpu_other = table["pipeline"]["median_cpu_us"], table[kind]["median_cpu_us"]
                if cpu_pipe and cpu_other:  # the same ratio from CPU time per request
                    table[kind]["pipeline_cpu_ratio"] = cpu_other / cpu_pipe
        out[scheme] = table
    return out


def as_dicts(runs: list[Run]) -> list[dict]:
    """Raw runs, for the JSON results file."""
    return [{**asdict(r), "rps": r.load.rps, "lost": r.lost, "phantom": r.phantom} for r in runs]
