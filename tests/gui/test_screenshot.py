"""`telemetry-inspector screenshot`: the real window offscreen, reproducible with --demo, one-line errors."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtGui import QImage

from mockserver.records.demo import fill_demo
from mockserver.storage.store import BeaconStore

ROOT = Path(__file__).resolve().parents[2]


def shot(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the command in a fresh process (as users do), without a display."""
    environ = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    environ.update(env or {})
    return subprocess.run([sys.executable, "-m", "mockserver", "screenshot", *args], cwd=ROOT, env=environ,
                          capture_output=True, text=True, timeout=120)


def test_demo_screenshot_is_identical_run_to_run(tmp_path):
    first, second = tmp_path / "a.png", tmp_path / "b.png"
    run = shot("--demo", "--out", str(first))
    assert run.returncode == 0, run.stderr
    assert run.stderr == f"saved {first}: 1280x800, demo data, light theme, details\n"  # one line, no Qt noise
    assert shot("--demo", "--out", str(second), env={"TZ": "America/New_York"}).returncode == 0
    assert hashlib.sha256(first.read_bytes()).digest() == hashlib.sha256(second.read_bytes()).digest()
    image = QImage(str(first))
    assert (image.width(), image.height()) == (1280, 800)


def test_size_theme_redact_and_views(tmp_path):
    plain, redacted = tmp_path / "plain.png", tmp_path / "redacted.png"
    assert shot("--demo", "--size", "1024x700", "--theme", "dark", "--out", str(plain)).returncode == 0
    run = shot("--demo", "--size", "1024x700", "--theme", "dark", "--redact", "--view", "opt-out",
               "--out", str(redacted))
    assert run.returncode == 0, run.stderr
    a, b = QImage(str(plain)), QImage(str(redacted))
    assert (a.width(), a.height()) == (b.width(), b.height()) == (1024, 700)
    assert a != b
    assert a.pixelColor(5, 200).lightness() < 100  # dark


def test_db_screenshot_selects_a_record_and_leaves_the_database_alone(tmp_path):
    db = tmp_path / "mine.sqlite3"
    store = BeaconStore(db)
    fill_demo(store)
    store.close()
    before = db.read_bytes(), sorted(p.name for p in tmp_path.iterdir())
    out = tmp_path / "mine.png"
    run = shot("--db", str(db), "--select", "3", "--out", str(out))
    assert run.returncode == 0, run.stderr
    assert QImage(str(out)).width() == 1280
    assert (db.read_bytes(), sorted(p.name for p in tmp_path.iterdir() if p != out)) == before


@pytest.mark.parametrize("args, message", [
    (["--size", "1280"], "screenshot: --size wants WIDTHxHEIGHT such as 1280x800, got '1280'"),
    (["--size", "20x20"], "screenshot: --size 20x20 is outside 640x400 to 7680x4320"),
    (["--select", "99"], "screenshot: --select: no record #99 in the demo data (ids 1–10)"),
    (["--select", "x"], None),
    (["--db", "{tmp}/missing.sqlite3"], "screenshot: no database at {tmp}/missing.sqlite3 (see --db)"),
    (["--db", "{tmp}/notes.txt"], "screenshot: cannot read {tmp}/notes.txt as an inspector "
                                  "database: file is not a database"),
    (["--demo", "--db", "x.sqlite3"], None),
    (["--out", "{tmp}/no/such/folder.png"], "screenshot: cannot write "
                                            "{tmp}/no/such/folder.png: no folder {tmp}/no/such"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, message):
    (tmp_path / "notes.txt").write_text("not sqlite, " * 100)
    args = [a.format(tmp=tmp_path) for a in args]
    if "--db" not in args:
        args = ["--demo", *args]
    if "--out" not in args:
        args += ["--out", str(tmp_path / "x.png")]
    run = shot(*args)
    assert run.returncode == 2
    lines = run.stderr.splitlines()
    assert len(lines) == 1, run.stderr
    if message is not None:
        assert lines[0] == "telemetry-inspector " + message.format(tmp=tmp_path)
    assert not (tmp_path / "x.png").exists()


def shot_on_day(day: str, *args: str) -> subprocess.CompletedProcess[str]:
    """The command in a fresh process whose wall clock reads ``day`` (``date.today()`` asks ``time.time``)."""
    environ = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    code = ("import datetime, sys, time\n"
            "real = time.time\n"
            f"shift = datetime.datetime.fromisoformat('{day}T12:00:00+00:00').timestamp() - real()\n"
            "time.time = lambda: real() + shift\n"
            "from mockserver.cli.main import main\n"
            "sys.exit(main(sys.argv[1:]))\n")
    return subprocess.run([sys.executable, "-c", code, "screenshot", *args], cwd=ROOT, env=environ,
                          capture_output=True, text=True, timeout=120)


def test_demo_screenshot_depends_on_nothing_of_today(tmp_path):
    # The demo's own day, the day after, and a year on: once, only the first gave the committed picture.
    pictures = []
    for day in ("2026-11-26", "2026-11-27", "2027-11-26"):
        out = tmp_path / f"{day}.png"
        run = shot_on_day(day, "--demo", "--out", str(out))
        assert run.returncode == 0, run.stderr
        pictures.append(out.read_bytes())
    assert pictures[0] == pictures[1] == pictures[2]
    assert pictures[0] == (ROOT / "assets" / "screenshot-main.png").read_bytes()


@pytest.mark.parametrize("args, view", [(["--compare", "4,5"], "compare"), (["--view", "compare"], "compare"),
                                        (["--view", "opt-out"], "opt-out"), ([], "details")])
def test_the_saved_line_names_the_view_saved(tmp_path, args, view):
    out = tmp_path / "x.png"
    run = shot("--demo", *args, "--out", str(out))
    assert run.returncode == 0, run.stderr
    assert run.stderr == f"saved {out}: 1280x800, demo data, light theme, {view}\n"


def test_compare_with_another_view_is_refused(tmp_path):
    run = shot("--demo", "--view", "opt-out", "--compare", "4,5", "--out", str(tmp_path / "x.png"))
    assert (run.returncode, run.stderr) == (
        2, "telemetry-inspector screenshot: --compare shows the compare view, not --view opt-out\n")
    assert not (tmp_path / "x.png").exists()


def test_the_command_offers_exactly_the_views_the_renderer_draws():
    from inspector import screenshot as renderer
    from mockserver.cli import screenshot as command

    assert command.VIEWS == renderer.VIEWS == ("details", "opt-out", "compare")
