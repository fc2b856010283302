"""Start-up never aborts: a display Qt cannot use ends in one line that names the fix, and exit 2.

Without the check Qt aborts (SIGABRT, exit 134) with a multi-line message. The window is started
for real (``python -m mockserver`` with no subcommand) in child processes with a broken display.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from inspector.platform_check import NO_DISPLAY, display_problem, library_problem, offscreen_note, qt_platforms
from tests.support.helpers import xvfb_display

ROOT = Path(__file__).resolve().parents[1]
SERVE = "use 'telemetry-inspector serve' without a screen"


def start_window(**env: str) -> subprocess.CompletedProcess[str]:
    """``python -m mockserver --db :memory:`` (the window) with ``env`` over a display-free environment."""
    base = {k: v for k, v in os.environ.items()
            if k not in ("DISPLAY", "WAYLAND_DISPLAY", "WAYLAND_SOCKET", "QT_QPA_PLATFORM", "XDG_SESSION_TYPE")}
    return subprocess.run([sys.executable, "-m", "mockserver", "--db", ":memory:"], cwd=ROOT,
                          env={**base, **env}, capture_output=True, text=True, timeout=120)


def display_without_server() -> str:
    """An X display number no server uses (other tests on this machine may run Xvfb)."""
    number = next(n for n in range(987, 1100)
                  if not Path(f"/tmp/.X11-unix/X{n}").exists() and not Path(f"/tmp/.X{n}-lock").exists())
    return f":{number}"


def test_a_display_with_no_x_server_is_one_line_and_exit_2():
    display = display_without_server()
    result = start_window(DISPLAY=display)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (f"telemetry-inspector: cannot open the X display {display} (no X server there, or it "
                             f"refused the connection); fix DISPLAY, or {SERVE}\n")


def test_no_display_at_all_is_one_line_and_exit_2():
    result = start_window()
    assert (result.returncode, result.stderr) == (2, f"telemetry-inspector: {NO_DISPLAY}\n")
    assert ("no display: DISPLAY and WAYLAND_DISPLAY are unset; "
                          f"{SERVE}, or run the window under Xvfb (xvfb-run -a telemetry-inspector)") == NO_DISPLAY


def test_a_library_the_loader_finds_but_cannot_load_is_named(tmp_path):
    fake = tmp_path / "libxcb-cursor.so.0"
    fake.write_text("not a shared library\n" * 200)  # found first on LD_LIBRARY_PATH, then refused
    result = start_window(DISPLAY=":987", LD_LIBRARY_PATH=str(tmp_path))
    assert result.returncode == 2
    assert result.stderr == (f"telemetry-inspector: Qt's X11 plugin cannot load {fake} (invalid ELF header); "
                             "remove that file or reinstall it: sudo apt-get install --reinstall libxcb-cursor0 "
                             f"(or {SERVE})\n")


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc to build a plugin with a missing library")
def test_a_missing_library_of_the_plugin_is_named(tmp_path):
    libs, plugins = tmp_path / "libs", tmp_path / "platforms"
    libs.mkdir()
    plugins.mkdir()
    (tmp_path / "empty.c").write_text("void telemetry_missing(void) {}\n")
    stub = libs / "libtelemetry-missing.so.1"
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(stub), "-Wl,-soname,libtelemetry-missing.so.1",
                    str(tmp_path / "empty.c")], check=True)
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(plugins / "libqxcb.so"), str(tmp_path / "empty.c"),
                    "-Wl,--no-as-needed", str(stub)], check=True)
    stub.unlink()  # the plugin needs it; now nothing provides it
    result = start_window(DISPLAY=":987", QT_QPA_PLATFORM_PLUGIN_PATH=str(plugins))
    assert result.returncode == 2
    assert result.stderr == ("telemetry-inspector: Qt's X11 plugin needs libtelemetry-missing.so.1, which is not "
                             "installed; install the package that provides libtelemetry-missing.so.1 "
                             f"(or {SERVE})\n")


@pytest.mark.parametrize("soname, package", [
    ("libxcb-cursor.so.0", "libxcb-cursor0"),
    ("libxkbcommon-x11.so.0", "libxkbcommon-x11-0"),
    ("libxcb-icccm.so.4", "libxcb-icccm4"),
    ("libxcb-keysyms.so.1", "libxcb-keysyms1"),
    ("libxcb-shape.so.0", "libxcb-shape0"),
])
def test_a_missing_known_library_names_its_debian_package(soname, package):
    error = f"{soname}: cannot open shared object file: No such file or directory"  # glibc's dlerror()
    assert library_problem("X11", error) == (f"Qt's X11 plugin needs {soname}, which is not "
                                             f"installed; sudo apt-get install {package} (or {SERVE})")


def test_a_real_x_server_passes(tmp_path):
    with xvfb_display() as display:
        assert display_problem({"DISPLAY": display}, "linux") is None
        assert display_problem({"DISPLAY": display, "WAYLAND_DISPLAY": "no-such-wayland"}, "linux") is None


def test_wayland_without_its_plugin_and_no_x_fallback(tmp_path):
    assert display_problem({"WAYLAND_DISPLAY": "wayland-0"}, "linux", plugin_dir=tmp_path) == (
        f"PySide6 has no Wayland plugin in {tmp_path}; set DISPLAY to use X11 (XWayland), "
        f"or {SERVE}")
    assert display_problem({"QT_QPA_PLATFORM": "wayland", "DISPLAY": ":0"}, "linux", plugin_dir=tmp_path) == (
        f"PySide6 has no Wayland plugin in {tmp_path}; set DISPLAY to use X11 (XWayland), "
        f"or {SERVE}")


def test_the_platforms_qt_tries():
    assert qt_platforms({}) == ["xcb"]
    assert qt_platforms({"DISPLAY": ":0", "WAYLAND_DISPLAY": "wayland-0"}) == ["wayland", "xcb"]
    assert qt_platforms({"QT_QPA_PLATFORM": "wayland;xcb:nograb", "WAYLAND_DISPLAY": "w"}) == ["wayland", "xcb"]
    assert qt_platforms({"QT_QPA_PLATFORM": "offscreen"}) == ["offscreen"]


def test_platforms_that_need_no_display_and_other_systems_are_left_to_qt():
    assert display_problem({"QT_QPA_PLATFORM": "offscreen"}, "linux") is None
    assert display_problem({"QT_QPA_PLATFORM": "vnc:size=800x600"}, "linux") is None
    assert display_problem({}, "darwin") is None
    assert display_problem({}, "win32") is None
    assert display_problem({}, "linux") == NO_DISPLAY


def test_offscreen_is_not_offered_as_a_way_to_see_the_window():
    assert offscreen_note({"QT_QPA_PLATFORM": "offscreen"}) == (
        "note: QT_QPA_PLATFORM=offscreen draws the window where nobody can see it; "
        f"unset it to see the window; {SERVE}, or run the window under Xvfb for screenshots")
    assert offscreen_note({"DISPLAY": ":0"}) is None and offscreen_note({"QT_QPA_PLATFORM": "xcb"}) is None
    assert "offscreen" not in NO_DISPLAY


def test_run_without_a_display_prints_one_line_and_opens_nothing(monkeypatch, capsys, tmp_path):
    from argparse import Namespace

    from inspector.app import run

    for name in ("DISPLAY", "WAYLAND_DISPLAY", "WAYLAND_SOCKET", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    args = Namespace(host="127.0.0.1", port=0, https_port=None, db=str(tmp_path / "x.sqlite3"), trust_proxy=False)
    assert run(args) == 2
    assert capsys.readouterr().err == f"telemetry-inspector: {NO_DISPLAY}\n"
    assert not (tmp_path / "x.sqlite3").exists()  # nothing was opened
