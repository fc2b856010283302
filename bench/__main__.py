"""``python3 -m bench``: the benchmarks of issues 6 and 15, side by side, medians and ratios.

    python3 -m bench                 # all: throughput, start-up, scale, gui (about 10 minutes on 2 cores)
    python3 -m bench --quick         # 2 rounds of 3 s, 20,000 records: a smoke run, not for the README
    python3 -m bench --tiny          # every section at the smallest sizes (the test that keeps it working)
    python3 -m bench --only scale    # one section (throughput, startup, scale, gui)

Sections: ingestion throughput (``throughput.py``: the full pipeline against the naive mock,
the ceiling of today's stack, the stack alone, the former stack, and ``serve --workers 1``
and ``2`` where ``serve`` has that option); start-up (``startup.py``: first beacon answered,
``serve`` and the window); scale (``scale.py``); the window under load (``gui.py``). The
targets and the Markdown are in ``report.py``.

Results go to ``bench/results/latest.md`` (the tables pasted into the README's
Benchmarks section) and ``bench/results/latest.json`` (every run); a ``--quick`` or
``--tiny`` run writes them to a temporary folder instead (unless ``--out`` is given),
so a smoke run never replaces the README's numbers. Everything
listens on 127.0.0.1 only; each server is its own process, separate from the
load generator (except ``gui``, where the mock lives in the window's process,
as in the app).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import gui, scale, startup, throughput
from .load import WRK, wrk_seconds
from .mix import build_mix, expected_share
from .report import gui_md, scale_md, startup_md, throughput_md

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    wrk = "wrk missing: Python load generator"
    if WRK:
        out = subprocess.run([WRK, "-v"], capture_output=True, text=True)
        wrk = (out.stdout + out.stderr).split("[")[0].strip() or "wrk"
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{os.cpu_count()} cores ({cpu}), Linux {platform.release()}, Python {platform.python_version()}, "
            f"{wrk}; load average {load:.1f} at start (the machine is shared)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="throughput,startup,scale,gui", help="comma-separated sections")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=5.0, help="load per throughput run")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--wrk-threads", type=int, default=1, help="wrk threads (the server shares the cores)")
    parser.add_argument("--python-load", action="store_true", help="use the Python load generator even if wrk exists")
    parser.add_argument("--schemes", default="http,https")
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--quick", action="store_true", help="2 rounds of 3 s, 20,000 records: a smoke run")
    parser.add_argument("--tiny", action="store_true",
                        help="1 round of 0.3 s, 300 records, short window phases: checks every section runs")
    parser.add_argument("--before", type=Path, metavar="CHECKOUT",
                        help="also load `serve` from this checkout (e.g. a git worktree of an older commit)")
    parser.add_argument("--out", type=Path, help=f"where the results go (default {RESULTS})")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (databases, logs)")
    args = parser.parse_args(argv)
    warmup, scale_rounds, phase_scale = 1.0, max(3, args.rounds // 2 + 1), 1.0
    if args.quick:
        args.rounds, args.seconds, args.records = 2, 3.0, 20_000
    if args.tiny:
        args.rounds, args.seconds, args.records = 1, 0.3, 300
        warmup, scale_rounds, phase_scale = 0.2, 1, 0.1
    if args.out is None:
        args.out = Path(tempfile.gettempdir()) / "telemetry-bench-smoke" if args.quick or args.tiny else RESULTS
    sections = set(args.only.split(","))
    work = Path(tempfile.mkdtemp(prefix="telemetry-bench-"))
    report: dict = {"machine": machine(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    run_args = argv or sys.argv[1:]
    md = [f"Machine: {report['machine']}. Run: `python3 -m bench{' ' + ' '.join(run_args) if run_args else ''}`, "
          f"{report['date']}.", ""]
    print(md[0], flush=True)
    try:
        from mockserver.serving.tls import ensure_certificate

        ensure_certificate(work / "home" / "tls")  # made once, outside every measurement
        if "throughput" in sections:
            mix = build_mix()
            use_wrk = bool(WRK) and not args.python_load
            tool = "wrk (Lua script replaying bench/mix.py)" if use_wrk else "Python keep-alive clients (bench/load.py)"
            print(f"throughput: {len(mix)}-request mix, {expected_share(mix):.0%} answered 2xx", flush=True)
            targets, skipped = throughput.available(tuple(t for t in throughput.TARGETS if t != "before"))
            for kind, reason in skipped.items():
                print(f"throughput: {kind} {reason}", flush=True)
            if args.before:
                throughput.BEFORE["tree"] = args.before.resolve()
                targets += ("before",)
            runs = throughput.run_all(mix, work, rounds=args.rounds, seconds=args.seconds,
                                      connections=args.connections, threads=args.wrk_threads,
                                      warmup=warmup, schemes=tuple(args.schemes.split(",")), targets=targets,
                                      use_wrk=use_wrk, progress=lambda s: print(s, flush=True))
            summary = throughput.summarise(runs)
            report["throughput"] = {"summary": summary, "skipped": skipped, "runs": throughput.as_dicts(runs)}
            md += ["### Ingestion throughput", "",
                   throughput_md(summary, wrk_seconds(args.seconds) if use_wrk else args.seconds, args.rounds,
                                 args.connections, args.wrk_threads, tool, skipped), ""]
        if "startup" in sections:
            print("start-up", flush=True)
            result = startup.run(work, args.rounds, progress=lambda s: print(s, flush=True))
            report["startup"] = result
            md += ["### Start-up", "", startup_md(result), ""]
        if "scale" in sections:
            print(f"scale: {args.records:,} records", flush=True)
            result = scale.run(work, scale_rounds, args.records, progress=lambda s: print(s, flush=True))
            report["scale"] = result
            md += ["### Scale", "", scale_md(result), ""]
        if "gui" in sections:
            print("gui", flush=True)
            try:
                result = gui.run(work, args.rounds, progress=lambda s: print(s, flush=True),
                                 phase_scale=phase_scale)
            except Exception as exc:  # noqa: BLE001 - the window is another team's work in progress: say so, go on
                report["gui"] = {"error": repr(exc)}
                md += ["### The window", "", f"TODO: not measured in this run: {exc!r}", ""]
            else:
                report["gui"] = result
                md += ["### The window", "", gui_md(result), ""]
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    load_end = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    md.append(f"Load average at the end: {load_end:.1f}.")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latest.md").write_text("\n".join(md) + "\n")
    (args.out / "latest.json").write_text(json.dumps(report, indent=1, default=str) + "\n")
    print("\n".join(md))
    print(f"\nwritten: {args.out / 'latest.md'}, {args.out / 'latest.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
