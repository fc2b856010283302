"""Start-up: from process start to the port accepting connections, and to the first beacon answered.

Each measurement starts a fresh process with fixed free ports, polls ``connect()`` every
2 ms, then sends one beacon over HTTP and waits for its answer. Measured:

* ``serve`` as users run it (HTTP + HTTPS, certificate already made), without HTTPS, and on a
  first run (the local CA and certificate are made);
* the window: the real ``telemetry-inspector`` (no command) in a child process, its embedded
  mock on HTTP + HTTPS, with Qt offscreen, and also on a real X server (Xvfb, Qt's xcb) when
  ``Xvfb`` is installed (one X server for all rounds, started before the first);
* the naive mock (Flask on werkzeug) and a bare ``python3 -c pass``, for scale.

The target (issue 15) is the first beacon answered ≤ 1 s after process start for ``serve`` and
the window (:data:`TARGETED`). :func:`import_profile` lists the heaviest imports of each.
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
from typing import NamedTuple

from mockserver.core.payloads import beacon_payload, btoa_json

from .process import stop_process

ROOT = Path(__file__).resolve().parents[1]
BEACON = "/telemetry?payload=" + btoa_json(beacon_payload("4.58.0", resources=2))
SERVE = "serve (HTTP + HTTPS, certificate reused)"
WINDOW = "window, Qt offscreen (HTTP + HTTPS, certificate reused)"
WINDOW_XVFB = "window under Xvfb, Qt's xcb (HTTP + HTTPS, certificate reused)"
TARGETED = (SERVE, WINDOW, WINDOW_XVFB)  # the first beacon answered ≤ 1 s
# What each start-up imports, for import_profile: the command line, and for the window the window too.
IMPORTED = {"`serve`": ("mockserver.cli.main", "mockserver.cli.output", "mockserver.storage.store"),
            "the window": ("mockserver.cli.main", "inspector.app", "inspector.window")}


def free_port() -> int:
    """A TCP port free on loopback right now."""
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


def import_profile(modules: tuple[str, ...], top: int = 6, runs: int = 5) -> tuple[list[tuple[str, float]], set[str]]:
    """The heaviest top-level packages importing ``modules`` loads (median cumulative ms over ``-X importtime``
    runs, our own packages left out), and every top-level package it loads."""
    samples: dict[str, list[float]] = {}
    loaded: set[str] = set()
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-X", "importtime", "-c", "import " + ", ".join(modules)], cwd=ROOT,
                             capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT),
                                                                  "QT_QPA_PLATFORM": "offscreen"})
        for line in out.stderr.splitlines():
            found = re.match(r"import time:\s+\d+ \|\s+(\d+) \| *(\S+)$", line)
            if not found:
                continue
            loaded.add(found.group(2).split(".")[0])
            if "." not in found.group(2) and not found.group(2).startswith(("mockserver", "inspector", "site", "_")):
                samples.setdefault(found.group(2), []).append(int(found.group(1)) / 1000)
    medians = {name: statistics.median(v + [0.0] * (runs - len(v))) for name, v in samples.items()}
    return sorted(medians.items(), key=lambda r: -r[1])[:top], loaded


def start_xvfb() -> tuple[subprocess.Popen | None, str]:
    """An X server for the window (``Xvfb``, display chosen by it): (the process, ``:N``), or (None, why not)."""
    xvfb = shutil.which("Xvfb")
    if not xvfb:
        return None, "Xvfb is not installed"
    proc = subprocess.Popen([xvfb, "-displayfd", "1", "-nolisten", "tcp", "-screen", "0", "1400x900x24"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    display = proc.stdout.readline().strip() if proc.stdout else ""
    if not display.isdigit():
        stop_process(proc)
        return None, "Xvfb did not start"
    return proc, f":{display}"


class Launch(NamedTuple):
    """``python3 -m mockserver COMMAND OPTIONS`` with ``env`` added (``{port}``, ``{https}``: the free ports;
    ``FRESH``: a data folder of its own, so the CA and certificate are made)."""

    command: list[str]
    options: list[str]
    env: dict[str, str]


def _variants(xvfb_display: str | None) -> dict[str, Launch | str | None]:
    """Each measured process: None (``python3 -c pass``), "naive", or a :class:`Launch`."""
    both = ["--port", "{port}", "--https-port", "{https}"]
    variants: dict[str, Launch | str | None] = {
        "python3 -c pass": None,
        SERVE: Launch(["serve"], both, {}),
        "serve --no-https": Launch(["serve"], ["--port", "{port}", "--no-https"], {}),
        "serve, first run (makes the CA + certificate)": Launch(["serve"], [*both, "FRESH"], {}),
        WINDOW: Launch([], both, {"QT_QPA_PLATFORM": "offscreen"}),  # no command: the window
    }
    if xvfb_display:
        variants[WINDOW_XVFB] = Launch([], both, {"QT_QPA_PLATFORM": "xcb", "DISPLAY": xvfb_display})
    variants["naive mock (Flask on werkzeug)"] = "naive"
    return variants


def run(work: Path, rounds: int, progress=print) -> dict:
    """Medians over ``rounds`` of each variant, the import profiles, and what was left out and why."""
    home = work / "startup-home"
    xvfb, display = start_xvfb()
    skipped = {} if xvfb else {WINDOW_XVFB: display}
    variants = _variants(display if xvfb else None)
    results: dict[str, dict] = {name: {"accepting": [], "answered": []} for name in variants}
    try:
        for round_no in range(rounds):
            for name, spec in list(variants.items()):
                if spec is None:
                    results[name]["accepting"].append(_python_pass())
                    continue
                port, https = free_port(), free_port()
                env = {**os.environ, "PYTHONPATH": str(ROOT), "TELEMETRY_INSPECTOR_HOME": str(home)}
                if isinstance(spec, str):  # "naive"
                    args = [sys.executable, "-m", "bench.targets", "naive", "--home", str(home), "--port", str(port)]
                else:
                    command, options, extra_env = spec
                    env.update(extra_env)
                    opts = [x.format(port=port, https=https) for x in options if x != "FRESH"]
                    if "FRESH" in options:
                        fresh = work / f"startup-fresh-{round_no}"
                        shutil.rmtree(fresh, ignore_errors=True)
                        env["TELEMETRY_INSPECTOR_HOME"] = str(fresh)
                    db = work / f"startup-{round_no}-{len(results[name]['answered'])}-{port}.sqlite3"
                    args = [sys.executable, "-m", "mockserver", *command, *opts, "--db", str(db)]
                try:
                    accepting, answered = measure_once(args, port, env)
                except RuntimeError as exc:
                    if name != WINDOW_XVFB:
                        raise
                    skipped[name] = " ".join(str(exc).split())[:300]  # a display Qt cannot use here: say so, go on
                    del variants[name], results[name]
                    continue
                results[name]["accepting"].append(accepting)
                results[name]["answered"].append(answered)
            progress(f"  start-up round {round_no + 1}/{rounds} done")
    finally:
        if xvfb:
            stop_process(xvfb)
    summary = {}
    for name, r in results.items():
        summary[name] = {
            "median_accepting_s": statistics.median(r["accepting"]),
            "median_first_beacon_s": statistics.median(r["answered"]) if r["answered"] else None,
            "accepting_s": [round(x, 3) for x in r["accepting"]],
            "first_beacon_s": [round(x, 3) for x in r["answered"]],
        }
    imports, loaded = {}, set()
    for what, modules in IMPORTED.items():
        imports[what], names = import_profile(modules)
        loaded |= names
    return {"variants": summary, "skipped": skipped, "imports": imports, "cheroot_imported": "cheroot" in loaded}
