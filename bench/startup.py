"""Start-up: from process start to the port accepting connections (and to the first beacon answered).

Each measurement starts a fresh process with fixed free ports and polls
``connect()`` every 2 ms. ``serve`` is measured as users run it (HTTP + HTTPS,
certificate already made), without HTTPS, and on a first run (the local CA and
certificate are made). The naive mock (Flask on werkzeug) and a bare
``python3 -c pass`` are measured alongside for scale.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from mockserver.core.payloads import beacon_payload, btoa_json

from .process import stop_process

ROOT = Path(__file__).resolve().parents[1]
BEACON = "/telemetry?payload=" + btoa_json(beacon_payload("4.58.0", resources=2))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_accepting(port: int, proc: subprocess.Popen, deadline: float) -> bool:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.002)
    return False


def measure_once(args: list[str], port: int, env: dict[str, str]) -> tuple[float, float]:
    """(seconds to accepting, seconds to the first beacon answered)."""
    started = time.monotonic()
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        if not _wait_accepting(port, proc, started + 30):
            err = proc.stderr.read().decode() if proc.poll() is not None and proc.stderr else ""
            raise RuntimeError(f"{' '.join(args)} never accepted connections: {err}")
        accepting = time.monotonic() - started
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{BEACON}", timeout=30) as resp:
            resp.read()
        answered = time.monotonic() - started
        return accepting, answered
    finally:
        stop_process(proc)


def _python_pass() -> float:
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return time.monotonic() - started


def import_profile(top: int = 6, runs: int = 5) -> list[tuple[str, float]]:
    """The heaviest packages ``mockserver.cli.main`` imports: median cumulative ms over ``-X importtime`` runs."""
    samples: dict[str, list[float]] = {}
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-X", "importtime", "-c", "import mockserver.cli.main"], cwd=ROOT,
                             capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
        for line in out.stderr.splitlines():
            found = re.match(r"import time:\s+\d+ \|\s+(\d+) \| *(\S+)$", line)
            if found and "." not in found.group(2) and not found.group(2).startswith(("mockserver", "site", "_")):
                samples.setdefault(found.group(2), []).append(int(found.group(1)) / 1000)
    medians = {name: statistics.median(v + [0.0] * (runs - len(v))) for name, v in samples.items()}
    return sorted(medians.items(), key=lambda r: -r[1])[:top]


def run(work: Path, rounds: int, progress=print) -> dict:
    """Medians over ``rounds`` of each variant."""
    home = work / "startup-home"
    variants = {
        "python3 -c pass": None,
        "serve (HTTP + HTTPS, certificate reused)": ["--https-port", "{https}"],
        "serve --no-https": ["--no-https"],
        "serve, first run (makes the CA + certificate)": ["--https-port", "{https}", "FRESH"],
        "naive mock (Flask on werkzeug)": "naive",
    }
    results: dict[str, dict] = {name: {"accepting": [], "answered": []} for name in variants}
    for round_no in range(rounds):
        for name, extra in variants.items():
            if extra is None:
                results[name]["accepting"].append(_python_pass())
                continue
            port, https = free_port(), free_port()
            env = {**os.environ, "PYTHONPATH": str(ROOT), "TELEMETRY_INSPECTOR_HOME": str(home)}
            if extra == "naive":
                args = [sys.executable, "-m", "bench.targets", "naive", "--home", str(home), "--port", str(port)]
            else:
                opts = [x.format(https=https) for x in extra if x != "FRESH"]
                if "FRESH" in extra:
                    fresh = work / f"startup-fresh-{round_no}"
                    shutil.rmtree(fresh, ignore_errors=True)
                    env["TELEMETRY_INSPECTOR_HOME"] = str(fresh)
                db = work / f"startup-{round_no}.sqlite3"
                args = [sys.executable, "-m", "mockserver", "serve", "--port", str(port), "--db", str(db), *opts]
            accepting, answered = measure_once(args, port, env)
            results[name]["accepting"].append(accepting)
            results[name]["answered"].append(answered)
        progress(f"  start-up round {round_no + 1}/{rounds} done")
    summary = {}
    for name, r in results.items():
        summary[name] = {
            "median_accepting_s": statistics.median(r["accepting"]),
            "median_first_beacon_s": statistics.median(r["answered"]) if r["answered"] else None,
            "accepting_s": [round(x, 3) for x in r["accepting"]],
        }
    return {"variants": summary, "imports": import_profile()}
