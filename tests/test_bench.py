"""`python3 -m bench --quick` runs its every section: here at the smallest sizes (``--tiny``, about a
minute), so the smoke run cannot rot again (it once spun for 600 s on the window's search text).
Beside it, the parts of the benchmark whose numbers must be right: the ceiling's routes are the
real server's, the process tree a server's CPU is summed over, and the paired ratios."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from bench import report, startup, throughput
from bench.load import LoadResult
from bench.process import process_tree, stop_tree, tree_usage
from bench.targets import REFINE_ROUTES
from mockserver.serving.app import create_app
from mockserver.storage.store import BeaconStore

ROOT = Path(__file__).resolve().parents[1]


def test_bench_tiny_runs_every_section(tmp_path):
    committed = (ROOT / "bench" / "results" / "latest.md").read_bytes()
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    run = subprocess.run([sys.executable, "-m", "bench", "--tiny", "--out", str(tmp_path)], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads((tmp_path / "latest.json").read_text())
    assert sorted(report) == ["date", "gui", "machine", "scale", "startup", "throughput"]
    assert "error" not in report["gui"], report["gui"]
    assert sorted(report["gui"]["phases"]) == ["1000/s", "500/s", "idle"]
    assert (report["scale"]["records"], report["scale"]["window"]["rows"]) == (300, 300)
    summary, skipped = report["throughput"]["summary"], report["throughput"]["skipped"]
    assert sorted(summary) == ["http", "https"]
    workers = [] if "workers1" in skipped else ["workers1", "workers2"]
    assert sorted(skipped) == ([] if workers else ["workers1", "workers2"])
    for scheme in summary.values():
        assert sorted(k for k in scheme if k in throughput.TARGETS) == sorted(
            ["asgi", "ceiling", "cheroot", "naive", "pipeline", *workers])
        for kind in ("pipeline", *workers):
            assert (scheme[kind]["lost"], scheme[kind]["phantom"]) == (0, 0)
    variants = report["startup"]["variants"]
    assert startup.SERVE in variants and startup.WINDOW in variants
    assert report["startup"]["cheroot_imported"] is False
    markdown = (tmp_path / "latest.md").read_text()
    for heading in ("### Ingestion throughput", "### Start-up", "### Scale", "### The window"):
        assert heading in markdown
    for label in ("ceiling of today's stack", "the stack alone", "former stack (reference)",
                  "the first beacon answered ≤ 1 s after process start, for `serve` and the window"):
        assert label in markdown
    if not workers:
        assert "does not list `--workers`" in markdown
    assert (ROOT / "bench" / "results" / "latest.md").read_bytes() == committed  # the README's numbers stay


def test_the_ceiling_runs_refine_routes_on_the_beacon_pool_as_the_server_does(tmp_path):
    store = BeaconStore(tmp_path / "routes.sqlite3")
    try:
        assert create_app(store).extensions["fast_routes"] == REFINE_ROUTES
    finally:
        store.close()


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has ended; who reaps it (in a container, maybe nobody) does not matter


def test_a_server_is_measured_over_its_whole_process_tree_and_stopped_with_it():
    # A parent whose child has a child of its own: all three are in the tree, and nothing else. SIGTERM
    # ends the parent only; stop_tree ends the two it leaves behind.
    code = ("import subprocess, sys, time; c = subprocess.Popen([sys.executable, '-c', "
            "'import subprocess, sys; print(subprocess.Popen([sys.executable, \"-c\", \"import time; time.sleep(60)\"])"
            ".pid, flush=True); import time; time.sleep(60)'], stdout=subprocess.PIPE, text=True); "
            "print(c.pid, c.stdout.readline().strip(), flush=True); time.sleep(60)")
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        child, grandchild = map(int, parent.stdout.readline().split())
        assert process_tree(parent.pid) == sorted([parent.pid, child, grandchild])
        assert process_tree(grandchild) == [grandchild]
        usage = tree_usage(parent.pid)
        assert usage is not None and usage[0] >= 0 and usage[1] > 0
    finally:
        stop_tree(parent)
    assert parent.returncode == -signal.SIGTERM
    deadline = time.monotonic() + 30  # a generous bound against a hang, not a speed check
    while (_running(child) or _running(grandchild)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (_running(child), _running(grandchild)) == (False, False)
    assert tree_usage(parent.pid) is None  # gone


def _run(target: str, round_no: int, rps: float, cpu: float) -> throughput.Run:
    load = LoadResult("python", 1.0, int(rps), int(rps), int(rps), 0, 0, 1.0, 2.0)
    stored = target in throughput.STORED
    return throughput.Run(target, "http", round_no, load, stored_ok=int(rps) if stored else None,
                          stored_invalid=0 if stored else None, cpu_us=cpu, switches=1.0)


def test_ratios_are_paired_within_rounds_and_by_cpu_time():
    # naive drifts between rounds; the pipeline is 3×, 2× and 4× it within the rounds: paired median 3×,
    # while the ratio of the medians (1,000 ÷ 500) is 2×.
    runs = [_run("naive", 0, 200, 800), _run("pipeline", 0, 600, 300),
            _run("naive", 1, 500, 800), _run("pipeline", 1, 1000, 400),
            _run("naive", 2, 1000, 900), _run("pipeline", 2, 4000, 200),
            _run("workers1", 0, 500, 400), _run("workers2", 0, 900, 500),
            _run("workers1", 1, 600, 400), _run("workers2", 1, 900, 500),
            _run("workers1", 2, 700, 400), _run("workers2", 2, 700, 500)]
    table = throughput.summarise(runs)["http"]
    naive = table["naive"]
    assert (naive["pipeline_ratio"], naive["pipeline_ratio_paired_median"]) == (1000 / 500, 3.0)
    assert naive["pipeline_cpu_ratio"] == 800 / 300
    assert table["workers_scaling"] == {"ratio": 900 / 600, "paired_median": 1.5, "cpu_ratio": 400 / 500}
    assert table["workers1"]["vs_naive_paired_median"] == 1.2  # 500/200, 600/500, 700/1000
    assert (table["pipeline"]["lost"], table["pipeline"]["phantom"]) == (0, 0)
    markdown = report.throughput_md({"http": table}, 5, 3, 16, 1, "wrk")
    assert "Target (HTTP): the full pipeline ≥ 2.5× the naive mock's req/s: 3.00× paired met; the aim of 3× reached" \
        in markdown
    assert "Scaling, N = 2 ÷ N = 1: 1.50× paired (ratio of the medians 1.50×; CPU per request N = 1 ÷ N = 2: 0.80×)" \
        in markdown
    assert "| `serve --workers 1` | 600 | 500, 600, 700 | 1.0 / 2.0 ms | 400 µs (1) | 1.20× (1.20×); 2.00× |" \
        in markdown
