"""The window under load: request-to-row latency, how long the event loop is blocked, start-up to shown.

Runs ``bench/gui_probe.py`` (the real window and its embedded mock, Qt offscreen) as
its own process and drives it from this one with a paced keep-alive load generator:

* start-up: ``Popen`` to the probe's first paint (``SHOWN``), median of rounds (for reference: the
  target, the first beacon answered ≤ 1 s, is measured on the real window by ``startup.py``);
* idle: 2 beacons/s for a while; then 500/s; then 1,000/s (paced; the achieved
  rates are reported). Each beacon's ``projectId`` is its send time, so the
  probe measures send → row painted in the table;
* event loop: gaps between ticks of a 5 ms timer, per phase (max, and how many
  over 100 ms).

Targets (``report.py``): p95 ≤ 100 ms idle and ≤ 250 ms at 500/s; the event loop never
blocked > 100 ms at 1,000/s. The server here shares the process (and Python's GIL) with the
window, as in the app; on this 2-core machine the load generator shares the cores too.
"""

from __future__ import annotations

import http.client
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from mockserver.core.payloads import btoa_json

from .mix import BROWSERS

ROOT = Path(__file__).resolve().parents[1]
PHASES = (("idle", 2, 15.0), ("500/s", 500, 8.0), ("1000/s", 1000, 8.0))


def _paced(port: int, rate: float, seconds: float, clients: int = 4) -> tuple[int, float]:
    """Send ``rate`` beacons/s for ``seconds`` over keep-alive connections; (sent, achieved rate)."""
    sent = [0]
    lock = threading.Lock()
    start = time.monotonic()
    headers = {**BROWSERS[0], "Referer": "http://localhost:5173/", "Host": "telemetry.refine.dev"}
    clients = 1 if rate < 20 else clients

    def client(index: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        interval = clients / rate
        due = start + index * interval / clients
        n = 0
        while due < start + seconds:
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            payload = {"providers": {"data": True, "router": True}, "version": "4.58.0", "resourceCount": 2,
                       "projectId": f"{time.time():.6f}"}
            conn.request("GET", "/telemetry?payload=" + btoa_json(payload), headers=headers)
            conn.getresponse().read()
            n += 1
            due += interval
        conn.close()
        with lock:
            sent[0] += n

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sent[0], sent[0] / (time.monotonic() - start)


def _start_probe(work: Path) -> tuple[subprocess.Popen, float, int]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "QT_QPA_PLATFORM": "offscreen"}
    started = time.time()
    proc = subprocess.Popen([sys.executable, "-m", "bench.gui_probe", str(work)], cwd=ROOT, env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    shown = port = None
    for line in proc.stdout:  # type: ignore[union-attr]  # stdout=PIPE
        if line.startswith("SHOWN "):
            shown = float(line.split()[1]) - started
        elif line.startswith("PORT "):
            port = int(line.split()[1])
            break
    if shown is None or port is None:
        proc.kill()
        raise RuntimeError("the window did not start")
    return proc, shown, port


def _stop_probe(proc: subprocess.Popen) -> dict:
    assert proc.stdin and proc.stdout
    proc.stdin.write("STOP\n")
    proc.stdin.flush()
    for line in proc.stdout:
        if line.startswith("RESULT "):
            proc.wait(timeout=30)
            return json.loads(line[7:])
    proc.kill()
    raise RuntimeError("the window did not report")


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def run(work: Path, rounds: int, progress=print, phase_scale: float = 1.0) -> dict:
    """Start-up over ``rounds`` windows; latency and blocking in the last one, phase by phase
    (each phase and pause ``phase_scale`` times as long as in :data:`PHASES`)."""
    startups = []
    for _ in range(max(1, rounds - 1)):
        proc, shown, _ = _start_probe(work)
        _stop_probe(proc)
        startups.append(shown)
    proc, shown, port = _start_probe(work)
    startups.append(shown)
    progress(f"  window shown after {shown:.2f} s")
    time.sleep(1.0 * phase_scale)  # let the window settle
    windows = []
    for name, rate, seconds in PHASES:
        began = time.time()
        sent, achieved = _paced(port, rate, seconds * phase_scale)
        time.sleep(1.5 * phase_scale)  # the last rows reach the table
        windows.append((name, began, time.time(), sent, achieved))
        progress(f"  {name}: sent {sent} at {achieved:.0f}/s")
    result = _stop_probe(proc)
    phases = {}
    for name, began, ended, sent, achieved in windows:
        lat = [lat for at, lat in result["samples"] if began <= at <= ended]
        gaps = [gap for at, gap in result["gaps"] if began <= at <= ended]
        phases[name] = {"sent": sent, "achieved_rate": achieved, "rows_seen": len(lat),
                        "p50_ms": _pct(lat, 50) * 1000, "p95_ms": _pct(lat, 95) * 1000,
                        "max_ms": max(lat, default=float("nan")) * 1000,
                        "max_block_ms": max(gaps, default=0.0) * 1000,
                        "blocks_over_100ms": sum(g > 0.1 for g in gaps)}
    return {"startup_s": statistics.median(startups), "startup_runs": startups, "phases": phases,
            "rows": result["rows"]}
