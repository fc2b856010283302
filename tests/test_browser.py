"""Finding and starting a routed Chrome/Chromium/Edge, and the ``browser`` command.

The real-browser tests load a tiny page that sends a refine-style beacon
(``new Image().src``) to https://telemetry.refine.dev and check that it reaches
the mock only through our routing flags and only with our key pinned.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import socket
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from mockserver.core.config import ENV_BROWSER
from mockserver.core.payloads import js_stringify
from mockserver.core.routing import QUIET_CHROMIUM_FLAGS
from mockserver.reach import browser as browser_module
from mockserver.reach.browser import (
    NOT_FOUND_HINT,
    BrowserError,
    BrowserFamily,
    BrowserNotFound,
    FoundBrowser,
    UnsupportedBrowser,
    browser_candidates,
    check_url,
    find_browser,
    firefox_candidates,
    identify_browser,
    launch_routed_browser,
    locate_browser,
    routed_browser_args,
)
from tests.support.helpers import (
    REFINE_4_PAYLOAD,
    interrupt,
    killed_at_end,
    read_until,
    stand_in_browser,
    was_started,
)

ROOT = Path(__file__).resolve().parents[1]
PIN = "68BsJgvCEQxDIns9kNNHYReU4gLU/1mm7h0Bd5eXlLA="


def make_executable(path: Path, text: str = "#!/bin/sh\nexit 0\n") -> Path:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


# -- finding a browser ---------------------------------------------------------

def test_candidates_cover_the_usual_places():
    linux = browser_candidates("linux")
    assert "/usr/bin/google-chrome" in linux and "/usr/bin/chromium" in linux
    assert "/opt/microsoft/msedge/msedge" in linux and "/snap/bin/chromium" in linux
    mac = browser_candidates("darwin", home=Path("/Users/qa"))
    assert "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome" in mac
    assert "/Applications/Microsoft Edge.app/Contents/MacOS/Microsoft Edge" in mac
    assert "/Users/qa/Applications/Chromium.app/Contents/MacOS/Chromium" in mac
    windows = browser_candidates("win32", {"PROGRAMFILES": r"C:\Program Files",
                                           "PROGRAMFILES(X86)": r"C:\Program Files (x86)",
                                           "LOCALAPPDATA": "C:\\Users\\qa\\AppData\\Local\\"})
    assert r"C:\Program Files\Google\Chrome\Application\chrome.exe" in windows
    assert r"C:\Program Files (x86)\Microsoft\Edge\Application\msedge.exe" in windows
    assert r"C:\Users\qa\AppData\Local\Google\Chrome\Application\chrome.exe" in windows
    assert not {"/usr/bin/firefox", "/usr/bin/firefox-esr"} & set(linux)  # Firefox only once no Chromium is found
    firefox = firefox_candidates("linux")
    assert firefox[:2] == ["/usr/bin/firefox", "/usr/bin/firefox-esr"] and "/snap/bin/firefox" in firefox
    assert "/Users/qa/Applications/Firefox.app/Contents/MacOS/firefox" in firefox_candidates("darwin",
                                                                                              home=Path("/Users/qa"))
    assert r"C:\Program Files\Mozilla Firefox\firefox.exe" in firefox_candidates(
        "win32", {"PROGRAMFILES": r"C:\Program Files"})


def test_explicit_browser_wins_and_is_checked(tmp_path, monkeypatch):
    chrome = make_executable(tmp_path / "my chrome")
    monkeypatch.setenv(ENV_BROWSER, "/somewhere/else")
    assert find_browser(str(chrome)) == str(chrome)
    with pytest.raises(BrowserNotFound, match=r"^--browser /no/chrome: no such file$"):
        find_browser("/no/chrome")
    plain = tmp_path / "plain.txt"
    plain.write_text("")
    with pytest.raises(BrowserNotFound, match="not an executable program"):
        find_browser(str(plain))
    with pytest.raises(BrowserNotFound, match="--browser no-such-chrome-anywhere: not found on PATH"):
        find_browser("no-such-chrome-anywhere")


def test_environment_override(tmp_path):
    chrome = make_executable(tmp_path / "chrome-from-env")
    assert find_browser(env={ENV_BROWSER: str(chrome), "PATH": ""}) == str(chrome)
    with pytest.raises(BrowserNotFound, match=f"^{ENV_BROWSER} /gone: no such file$"):
        find_browser(env={ENV_BROWSER: "/gone", "PATH": ""})


def test_path_then_install_locations_then_a_clear_message(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    edge = make_executable(bin_dir / "microsoft-edge")
    assert find_browser(env={"PATH": str(bin_dir)}) == str(edge)
    edge.unlink()
    installed = make_executable(tmp_path / "chromium-installed")
    monkeypatch.setattr(browser_module, "browser_candidates", lambda system=None, env=None: [str(installed)])
    assert find_browser(env={"PATH": str(bin_dir)}) == str(installed)
    monkeypatch.setattr(browser_module, "browser_candidates", lambda system=None, env=None: [])
    # No Chromium anywhere: Firefox on PATH, then in its install locations.
    firefox = make_executable(bin_dir / "firefox-esr")
    assert locate_browser(env={"PATH": str(bin_dir)}) == FoundBrowser(str(firefox), "firefox")
    firefox.unlink()
    installed_firefox = make_executable(tmp_path / "firefox-installed")
    monkeypatch.setattr(browser_module, "firefox_candidates", lambda system=None, env=None: [str(installed_firefox)])
    assert locate_browser(env={"PATH": str(bin_dir)}) == FoundBrowser(str(installed_firefox), "firefox")
    make_executable(bin_dir / "chromium")  # Chromium first whenever there is one
    assert locate_browser(env={"PATH": str(bin_dir)}) == FoundBrowser(str(bin_dir / "chromium"), "chromium")
    (bin_dir / "chromium").unlink()
    monkeypatch.setattr(browser_module, "firefox_candidates", lambda system=None, env=None: [])
    with pytest.raises(BrowserNotFound) as caught:
        find_browser(env={"PATH": str(bin_dir)})
    assert str(caught.value) == NOT_FOUND_HINT == ("no Chrome, Chromium, Edge or Firefox found; install one, or pass "
                                                   f"--browser PATH (or set {ENV_BROWSER})")


def test_a_mac_app_bundle_means_its_executable(tmp_path):
    macos = tmp_path / "Google Chrome.app" / "Contents" / "MacOS"
    macos.mkdir(parents=True)
    exe = make_executable(macos / "Google Chrome")
    assert find_browser(str(tmp_path / "Google Chrome.app")) == str(exe)


# -- which browser it is -----------------------------------------------------------

INSTEAD = ("route it through the proxy (serve --proxy-port N, then set the browser's HTTPS proxy to 127.0.0.1:N; "
           "docs/routing.md, \"Through a proxy\") or use the hosts file and a trusted certificate "
           "(docs/routing.md, \"The hosts file and a trusted certificate\")")


@pytest.mark.parametrize(("name", "version", "family", "seen"), [
    ("browser", "Chromium 156.0.8078.114 built on Debian GNU/Linux 12 (bookworm)", "chromium",
     "Chromium 156.0.8078.114 built on Debian GNU/Linux 12 (bookworm)"),
    ("browser", "Google Chrome 131.0.6778.85", "chromium", "Google Chrome 131.0.6778.85"),
    ("browser", "Microsoft Edge 131.0.2903.70", "chromium", "Microsoft Edge 131.0.2903.70"),
    ("browser", "Brave Browser 131.1.73.91", "chromium", "Brave Browser 131.1.73.91"),
    ("browser", "Opera 115.0.5322.68", "chromium", "Opera 115.0.5322.68"),
    ("browser", "Vivaldi 7.0.3495.18 stable", "chromium", "Vivaldi 7.0.3495.18 stable"),
    ("browser", "Mozilla Firefox 128.5.0esr", "firefox", "Mozilla Firefox 128.5.0esr"),
    ("browser", "Kiosk Shell 2.1", "unknown", "Kiosk Shell 2.1"),
    ("browser", "", "unknown", "(--version printed nothing)"),
    ("browser", None, "unknown", "(--version failed with status 3)"),
    ("google-chrome-stable", None, "chromium", "google-chrome-stable"),  # the name settles it, no --version
    ("msedge.exe", None, "chromium", "msedge.exe"),
    ("fake-chrome", "Mozilla Firefox 128.5.0esr", "chromium", "fake-chrome"),
    ("firefox-esr", None, "firefox", "firefox-esr"),
])
def test_the_family_comes_from_the_name_else_from_version(tmp_path, name, version, family, seen):
    program = stand_in_browser(tmp_path / name, version)
    assert identify_browser(str(program)) == BrowserFamily(family, seen)
    assert not was_started(program)


def test_a_bundle_name_settles_it(tmp_path):
    macos = tmp_path / "Brave Browser.app" / "Contents" / "MacOS"
    macos.mkdir(parents=True)
    program = stand_in_browser(macos / "launcher", None)
    assert identify_browser(str(program)) == BrowserFamily("chromium", "launcher")


def test_a_program_that_ignores_version_is_stopped(tmp_path):
    program = make_executable(tmp_path / "browser", f"#!/bin/sh\ntouch '{tmp_path}/ran'\nexec sleep 600\n")
    assert identify_browser(str(program), timeout=0.5) == BrowserFamily(
        "unknown", "(--version did not answer within 0.5 s)")
    assert (tmp_path / "ran").exists()


def test_the_real_chromium_is_chromium(chromium, tmp_path):
    assert identify_browser(chromium).family == "chromium"
    wrapper = make_executable(tmp_path / "system-browser", f'#!/bin/sh\nexec {chromium} "$@"\n')
    found = identify_browser(str(wrapper))  # a name that says nothing: its --version decides
    assert found.family == "chromium" and found.seen.startswith(("Chromium ", "Google Chrome ", "Microsoft Edge "))


def test_firefox_is_found_and_unknown_programs_are_refused_in_one_line(tmp_path, monkeypatch):
    firefox = stand_in_browser(tmp_path / "browser", "Mozilla Firefox 128.5.0esr")
    assert find_browser(str(firefox)) == str(firefox)  # its --version says Firefox: routed, not refused
    assert locate_browser(str(firefox)) == FoundBrowser(str(firefox), "firefox")
    kiosk = stand_in_browser(tmp_path / "kiosk", "Kiosk Shell 2.1")
    with pytest.raises(UnsupportedBrowser) as caught:
        find_browser(str(kiosk))
    assert str(caught.value) == (f"--browser {kiosk}: not Chrome, Chromium, Edge, Brave, Opera, Vivaldi or Firefox "
                                 f"(Kiosk Shell 2.1); to inspect another browser, {INSTEAD}")
    monkeypatch.setenv(ENV_BROWSER, str(kiosk))
    with pytest.raises(BrowserNotFound) as refused:  # what every caller already handles
        launch_routed_browser(None, 8788, PIN)
    assert str(refused.value) == (f"{ENV_BROWSER} {kiosk}: not Chrome, Chromium, Edge, Brave, Opera, Vivaldi or "
                                  f"Firefox (Kiosk Shell 2.1); to inspect another browser, {INSTEAD}")
    assert not was_started(firefox) and not was_started(kiosk)


# -- the flags ---------------------------------------------------------------

def test_routing_flags_pin_our_key_and_never_ignore_all_certificate_errors(tmp_path):
    args = routed_browser_args(8788, PIN, profile_dir=tmp_path, url="http://localhost:5173/",
                               as_root=False, quiet=False)
    assert args[0] == f"--user-data-dir={tmp_path}"
    assert "--host-resolver-rules=MAP telemetry.refine.dev 127.0.0.1:8788" in args
    assert f"--ignore-certificate-errors-spki-list={PIN}" in args
    assert "--ignore-certificate-errors" not in args
    assert not any(a.startswith("--ignore-certificate-errors=") for a in args)
    assert "--no-sandbox" not in args and "--headless" not in args
    assert args[-1] == "http://localhost:5173/"
    assert not set(QUIET_CHROMIUM_FLAGS) - {"--no-first-run"} & set(args)


def test_headless_root_and_quiet_flags(tmp_path):
    args = routed_browser_args(1, PIN, profile_dir=tmp_path, headless=True, as_root=True, remote_debugging=True,
                               extra_args=["--window-size=800,600"])
    assert {"--headless", "--disable-gpu", "--no-sandbox", "--remote-debugging-port=0"} <= set(args)
    assert set(QUIET_CHROMIUM_FLAGS) <= set(args)
    assert len(args) == len(set(args))
    assert args[-2:] == ["--window-size=800,600", "about:blank"]


def test_ci_makes_a_headed_browser_quiet_too(tmp_path, monkeypatch):
    monkeypatch.setenv("CI", "true")
    assert set(QUIET_CHROMIUM_FLAGS) <= set(routed_browser_args(1, PIN, profile_dir=tmp_path))
    monkeypatch.setenv("CI", "false")
    assert "--disable-sync" not in routed_browser_args(1, PIN, profile_dir=tmp_path)


# -- the URL check ------------------------------------------------------------

class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@contextlib.contextmanager
def serve_dir(directory: Path) -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(directory)))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def test_check_url(tmp_path):
    (tmp_path / "index.html").write_text("<p>hi</p>")
    with serve_dir(tmp_path) as base:
        assert check_url(base) is None
        assert check_url(base + "missing.html") == f"{base}missing.html answered HTTP 404 File not found"
    assert check_url(base).startswith(f"{base} is unreachable: ")
    assert check_url((tmp_path / "index.html").as_uri()) is None
    assert check_url("file:///no/such.html") == "file:///no/such.html: no such file"
    assert check_url("localhost:5173") == "not an http(s) or file URL: 'localhost:5173'"


# -- a real routed browser -------------------------------------------------------



BEACON_PAGE = """<!doctype html><title>beacon</title><script>
// What @refinedev/core does: btoa(JSON.stringify(payload)) into an <img>, no URL-encoding.
new Image().src = "https://telemetry.refine.dev/telemetry?payload=" + btoa(%s);
</script>"""


@pytest.fixture
def beacon_site(tmp_path) -> Iterator[str]:
    (tmp_path / "index.html").write_text(BEACON_PAGE % repr(js_stringify(REFINE_4_PAYLOAD)))
    with serve_dir(tmp_path) as base:
        yield base


def _processes_with(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if text.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
    return found


def test_routed_browser_delivers_the_beacon_and_cleans_up(chromium, live_server, journal, beacon_site):
    listening = live_server.listening
    routed = launch_routed_browser(beacon_site, listening.https_port, listening.spki_pin, headless=True)
    try:
        assert routed.running() and str(routed.profile_dir) in " ".join(routed.command)
        [record] = journal.wait_for(1, timeout=20)
    finally:
        routed.stop()
    assert record["payload"] == REFINE_4_PAYLOAD
    assert record["request"]["scheme"] == "https" and record["request"]["headers"]["Host"] == "telemetry.refine.dev"
    assert not routed.running()
    assert not routed.profile_dir.exists()
    if sys.platform.startswith("linux"):
        assert _processes_with(str(routed.profile_dir)) == []


def test_a_wrong_pin_gets_nothing_through(chromium, live_server, journal, beacon_site):
    # Proves the pin is what lets the beacon in (no blanket certificate override).
    wrong = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
    with launch_routed_browser(None, live_server.listening.https_port, wrong, headless=True,
                               remote_debugging=True) as routed:
        assert routed.load(beacon_site, timeout=30) < 30
        journal.ensure_not_logged(2.0)
    assert journal.beacons() == []


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_load_reports_a_failed_navigation(chromium, live_server):
    url = f"http://127.0.0.1:{closed_port()}/"
    with launch_routed_browser(None, live_server.listening.https_port, live_server.listening.spki_pin,
                               headless=True, remote_debugging=True) as routed:
        with pytest.raises(BrowserError, match=f"could not load {url}: net::ERR_CONNECTION_REFUSED"):
            routed.load(url, timeout=20)


def test_a_browser_that_dies_at_start_is_a_clear_error(tmp_path, live_server):
    fake = make_executable(tmp_path / "broken-chrome", "#!/bin/sh\necho 'cannot open display' >&2\nexit 3\n")
    with launch_routed_browser(None, 1, PIN, browser=str(fake), remote_debugging=True) as routed:
        with pytest.raises(BrowserError, match=r"exited at start \(status 3\): cannot open display"):
            routed.devtools_port(timeout=10)


# -- the `browser` command ----------------------------------------------------------

def browser_cli(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "mockserver", "browser", *args], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_browser_command_prints_beacons_and_ctrl_c_closes_both(chromium, beacon_site):
    with killed_at_end(browser_cli(beacon_site, "--headless", "--port", "0", "--https-port", "0",
                                   "--db", ":memory:")) as proc:
        _, lines = read_until(proc.stdout, r" beacon .*refine 4\.58\.0")
        https_line = next(line for line in lines if line.strip().startswith("HTTPS"))
        port = https_line.split("127.0.0.1:")[1].split("/")[0]
        assert _processes_with(f"127.0.0.1:{port}"), "the routed browser should be running"
        out, err = interrupt(proc, lines)
    assert proc.returncode == 0, err
    assert "stopped: 1 request captured" in out
    # browser routes its browser itself: serve's "start Chrome with these flags" help is not printed
    assert "Route a real app's beacons here" not in out and "Waiting for requests; Ctrl-C" in out
    assert _processes_with(f"MAP telemetry.refine.dev 127.0.0.1:{port}") == []


def test_browser_command_ends_when_the_browser_is_closed(tmp_path):
    quick = make_executable(tmp_path / "chrome-closes-at-once", "#!/bin/sh\nsleep 0.5\nexit 0\n")
    proc = browser_cli("--browser", str(quick), "--port", "0", "--https-port", "0", "--db", ":memory:")
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "stopped: 0 requests captured" in out


@pytest.mark.parametrize(("args", "message"), [
    (["--browser", "/no/such/chrome"], "telemetry-inspector browser: --browser /no/such/chrome: no such file"),
    (["--no-https", "--port", "0", "--browser", "{chrome}"],
     "telemetry-inspector browser: routing a browser needs the HTTPS listener (drop --no-https)"),
    (["--server", "http://127.0.0.1:9", "--browser", "{chrome}"],
     "telemetry-inspector browser: no inspector at http://127.0.0.1:9/__inspector/health"),
    (["--port", "0", "--https-port", "0", "--db", ":memory:", "--browser", "{kiosk}"],
     "telemetry-inspector browser: --browser {kiosk}: not Chrome, Chromium, Edge, Brave, Opera, Vivaldi or Firefox "
     f"(Kiosk Shell 2.1); to inspect another browser, {INSTEAD}"),
    (["--port", "0", "--https-port", "0", "--db", ":memory:", "--browser", sys.executable],
     f"telemetry-inspector browser: --browser {sys.executable}: not Chrome, Chromium, Edge, Brave, Opera, "
     f"Vivaldi or Firefox (Python {sys.version.split()[0]}); to inspect another browser, {INSTEAD}"),
])
def test_browser_command_errors_are_one_line_exit_2(args, message, tmp_path):
    chrome = stand_in_browser(tmp_path / "chrome", None)
    kiosk = stand_in_browser(tmp_path / "kiosk-browser", "Kiosk Shell 2.1")
    names = {"{chrome}": str(chrome), "{kiosk}": str(kiosk)}
    proc = browser_cli(*[names.get(arg, arg) for arg in args])
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 2
    line = err.strip().splitlines()[-1]
    expected = message.replace("{kiosk}", str(kiosk))
    assert line == expected if "--browser {" in message or sys.executable in message else line.startswith(expected), err
    assert "Traceback" not in err and not was_started(chrome) and not was_started(kiosk)


def test_browser_command_with_a_running_inspector(chromium, beacon_site, live_server):
    with killed_at_end(browser_cli(beacon_site, "--headless", "--server", live_server.listening.https_url)) as proc:
        _, lines = read_until(proc.stdout, r" beacon ")
        assert live_server.store.count() == 1
        out, err = interrupt(proc, lines)
    assert proc.returncode == 0, err


@pytest.mark.skipif(os.name != "posix", reason="POSIX shell stand-in")
def test_launch_uses_the_given_browser(tmp_path):
    record = tmp_path / "args.txt"
    fake = make_executable(tmp_path / "fake-chrome", f'#!/bin/sh\nprintf "%s\\n" "$@" > "{record}"\n')
    routed = launch_routed_browser("http://localhost:5173/", 8788, PIN, browser=str(fake))
    routed.wait(10)
    routed.stop()
    args = record.read_text().splitlines()
    assert args[-1] == "http://localhost:5173/"
    assert "--host-resolver-rules=MAP telemetry.refine.dev 127.0.0.1:8788" in args
    assert f"--ignore-certificate-errors-spki-list={PIN}" in args
    assert any(a.startswith("--user-data-dir=") for a in args)
