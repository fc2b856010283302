"""`python3 -m bench --quick` runs its every section: here at the smallest sizes (``--tiny``, about a
minute), so the smoke run cannot rot again (it once spun for 600 s on the window's search text)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_bench_tiny_runs_every_section(tmp_path):
    committed = (ROOT / "bench" / "results" / "latest.md").read_bytes()
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    run = subprocess.run([sys.executable, "-m", "bench", "--tiny", "--out", str(tmp_path)], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads((tmp_path / "latest.json").read_text())
    assert sorted(report) == ["date", "gui", "machine", "scale", "startup", "throughput"]
    assert "error" not in report["gui"], report["gui"]
    assert sorted(report["gui"]["phases"]) == ["1000/s", "500/s", "idle"]
    assert (report["scale"]["records"], report["scale"]["window"]["rows"]) == (300, 300)
    pipeline = report["throughput"]["summary"]
    assert sorted(pipeline) == ["http", "https"]
    for scheme in pipeline.values():
        assert (scheme["pipeline"]["lost"], scheme["pipeline"]["phantom"]) == (0, 0)
    markdown = (tmp_path / "latest.md").read_text()
    for heading in ("### Ingestion throughput", "### Start-up", "### Scale", "### The window"):
        assert heading in markdown
    assert (ROOT / "bench" / "results" / "latest.md").read_bytes() == committed  # the README's numbers stay
