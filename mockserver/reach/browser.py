"""Find a browser and start it routed so that its requests to telemetry.refine.dev reach the mock.

refine's beacon goes to a hard-coded ``https://telemetry.refine.dev``, so a
Chromium-family browser is told to resolve that host to our HTTPS listener
(``--host-resolver-rules``) and to accept our certificate's key and only that
key (``--ignore-certificate-errors-spki-list``; never a blanket
``--ignore-certificate-errors``). Each launch gets a fresh temporary profile:
the pin flag is only honoured with ``--user-data-dir``, and a user's everyday
profile must never be touched. Firefox takes none of these flags: it is routed
through a private proxy and a profile that trusts the inspector's CA
(:mod:`mockserver.reach.firefox`). A browser given by the user is identified first
(:func:`identify_browser`); anything neither Chromium-family nor Firefox is refused
before it starts (:class:`UnsupportedBrowser`).

Qt-free: the GUI's "Open app in routed browser" action calls
:func:`launch_routed_browser`; the ``browser`` and ``verify`` commands use it too.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from mockserver.core.config import ENV_BROWSER
from mockserver.core.routing import QUIET_CHROMIUM_FLAGS, chromium_routing_flags

# The errors and the process live in browser_process; every caller keeps importing them from here.
from mockserver.reach.browser_process import BrowserError as BrowserError
from mockserver.reach.browser_process import BrowserNotFound as BrowserNotFound
from mockserver.reach.browser_process import BrowserProcess as BrowserProcess
from mockserver.reach.browser_process import UnsupportedBrowser as UnsupportedBrowser
from mockserver.reach.browser_process import fresh_profile, terminate_tree
from mockserver.reach.cdp import DevToolsConnection, DevToolsError, page_websocket_url
from mockserver.reach.firefox import CaSource, launch_firefox
from mockserver.reach.network import NetworkWatch
from mockserver.records.egress import OtherRequest
from mockserver.serving.probe import CHROMIUM_ROUTING

# Names on PATH, most specific first; Chromium-family ones are tried before Firefox.
PATH_NAMES = (
    "google-chrome", "google-chrome-stable", "chromium", "chromium-browser",
    "microsoft-edge", "microsoft-edge-stable", "chrome", "msedge", "brave-browser",
)

LINUX_LOCATIONS = (
    "/usr/bin/google-chrome", "/usr/bin/google-chrome-stable", "/opt/google/chrome/chrome",
    "/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/lib/chromium/chromium", "/snap/bin/chromium",
    "/usr/bin/microsoft-edge", "/usr/bin/microsoft-edge-stable", "/opt/microsoft/msedge/msedge",
    "/var/lib/flatpak/exports/bin/com.google.Chrome", "/var/lib/flatpak/exports/bin/org.chromium.Chromium",
)

MAC_APPS = (
    ("Google Chrome.app", "Google Chrome"),
    ("Chromium.app", "Chromium"),
    ("Microsoft Edge.app", "Microsoft Edge"),
    ("Google Chrome Canary.app", "Google Chrome Canary"),
    ("Brave Browser.app", "Brave Browser"),
)

WINDOWS_RELATIVE = (
    r"Google\Chrome\Application\chrome.exe",
    r"Microsoft\Edge\Application\msedge.exe",
    r"Chromium\Application\chrome.exe",
    r"Google\Chrome SxS\Application\chrome.exe",
    r"BraveSoftware\Brave-Browser\Application\brave.exe",
)

FIREFOX_PATH_NAMES = ("firefox", "firefox-esr")

FIREFOX_LINUX_LOCATIONS = (
    "/usr/bin/firefox", "/usr/bin/firefox-esr", "/usr/lib/firefox/firefox", "/usr/lib/firefox-esr/firefox-esr",
    "/opt/firefox/firefox", "/snap/bin/firefox", "/var/lib/flatpak/exports/bin/org.mozilla.firefox",
)

FIREFOX_MAC_APPS = (
    ("Firefox.app", "firefox"),
    ("Firefox Developer Edition.app", "firefox"),
    ("Firefox Nightly.app", "firefox"),
)

FIREFOX_WINDOWS_RELATIVE = (
    r"Mozilla Firefox\firefox.exe",
    r"Firefox Developer Edition\firefox.exe",
    r"Firefox Nightly\firefox.exe",
)

NOT_FOUND_HINT = (f"no Chrome, Chromium, Edge or Firefox found; install one, or pass --browser PATH "
                  f"(or set {ENV_BROWSER})")


# -- which browser it is --------------------------------------------------------

# Words in an executable's (or .app bundle's) name that settle it without running it.
CHROMIUM_NAME_WORDS = frozenset({"chrome", "chromium", "edge", "msedge", "brave"})
FIREFOX_NAME_WORDS = frozenset({"firefox"})
# First line of ``--version``: "Chromium 156.0…", "Google Chrome 131…", "Mozilla Firefox 128.5.0esr".
CHROMIUM_VERSION = re.compile(r"^(Chromium|Google Chrome|Microsoft Edge|Brave Browser|Opera|Vivaldi)\b")
FIREFOX_VERSION = re.compile(r"\bFirefox\b")
VERSION_TIMEOUT = 5.0
INSTEAD = ("route it through the proxy (serve --proxy-port N, then set the browser's HTTPS proxy to "
           "127.0.0.1:N; docs/routing.md, \"Through a proxy\") or use the hosts file and a trusted certificate "
           "(docs/routing.md, \"The hosts file and a trusted certificate\")")


@dataclass(frozen=True)
class BrowserFamily:
    """What an executable is: ``family`` is ``"chromium"``, ``"firefox"`` or ``"unknown"``;
    ``seen`` says what told us (its name, or its ``--version`` line), for messages."""

    family: str
    seen: str


def _name_words(executable: str) -> set[str]:
    """Lower-case words of the executable's name and of the ``.app`` bundle holding it."""
    parts = [Path(executable).name]
    parts += [part[:-4] for part in Path(executable).parts if part.endswith(".app")]
    text = " ".join(parts).lower().removesuffix(".exe")
    return set(re.findall(r"[a-z0-9]+", text))


def _version_line(executable: str, timeout: float) -> str:
    """The first line ``executable --version`` prints, or why there is none (in parentheses)."""
    kwargs: dict[str, object] = {"start_new_session": True} if os.name == "posix" else {}
    try:
        process = subprocess.Popen([executable, "--version"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.DEVNULL, **kwargs)  # type: ignore[call-overload]  # the platform's group flag
    except OSError as exc:
        return f"(--version could not run: {exc.strerror or exc})"
    try:
        out, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        terminate_tree(process, 2.0)  # something that ignores --version must not stay running
        return f"(--version did not answer within {timeout:g} s)"
    lines = [line.strip() for line in out.decode("utf-8", "replace").splitlines() if line.strip()]
    if process.returncode != 0:
        return f"(--version failed with status {process.returncode})"
    return lines[0][:120] if lines else "(--version printed nothing)"


def identify_browser(executable: str, *, timeout: float = VERSION_TIMEOUT) -> BrowserFamily:
    """Which browser ``executable`` is, from its name or bundle, else from its ``--version`` line.

    A name with chrome, chromium, edge or brave in it is trusted without running anything (Chrome on
    Windows prints no version); so is one with firefox.
    """
    words = _name_words(executable)
    if words & CHROMIUM_NAME_WORDS:
        return BrowserFamily("chromium", Path(executable).name)
    if words & FIREFOX_NAME_WORDS:
        return BrowserFamily("firefox", Path(executable).name)
    line = _version_line(executable, timeout)
    if CHROMIUM_VERSION.search(line):
        return BrowserFamily("chromium", line)
    if FIREFOX_VERSION.search(line):
        return BrowserFamily("firefox", line)
    return BrowserFamily("unknown", line)


def refuse_unroutable(executable: str, label: str) -> BrowserFamily:
    """Which family ``executable`` is; :class:`UnsupportedBrowser` unless it is Chromium-family or Firefox.

    ``label`` names where it came from (``--browser kiosk``), for the one-line message.
    """
    found = identify_browser(executable)
    if found.family not in ("chromium", "firefox"):
        seen = found.seen if found.seen.startswith("(") else f"({found.seen})"  # a failure is already in parentheses
        raise UnsupportedBrowser(f"{label}: not Chrome, Chromium, Edge, Brave, Opera, Vivaldi or Firefox "
                                 f"{seen}; to inspect another browser, {INSTEAD}")
    return found


# -- finding a browser ------------------------------------------------------

def browser_candidates(system: str | None = None, env: Mapping[str, str] | None = None,
                       home: Path | None = None) -> list[str]:
    """Chromium-family install locations to try, in order, for ``system`` (``sys.platform`` style)."""
    return _locations(system, env, home, LINUX_LOCATIONS, MAC_APPS, WINDOWS_RELATIVE)


def firefox_candidates(system: str | None = None, env: Mapping[str, str] | None = None,
                       home: Path | None = None) -> list[str]:
    """Firefox install locations to try, in order, once no Chromium-family browser was found."""
    return _locations(system, env, home, FIREFOX_LINUX_LOCATIONS, FIREFOX_MAC_APPS, FIREFOX_WINDOWS_RELATIVE)


def _locations(system: str | None, env: Mapping[str, str] | None, home: Path | None, linux: Sequence[str],
               mac: Sequence[tuple[str, str]], windows: Sequence[str]) -> list[str]:
    system = system or sys.platform
    env = os.environ if env is None else env
    if system.startswith("win"):
        roots = [env.get(name) for name in ("PROGRAMFILES", "PROGRAMFILES(X86)", "LOCALAPPDATA", "PROGRAMW6432")]
        return [f"{root.rstrip(chr(92))}\\{rel}" for rel in windows for root in roots if root]
    if system == "darwin":
        home = home or Path.home()
        bases = ["/Applications", str(home / "Applications")]
        return [f"{base}/{app}/Contents/MacOS/{exe}" for app, exe in mac for base in bases]
    return list(linux)


def _is_executable(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


class FoundBrowser(NamedTuple):
    """The browser to start: its executable and its family (``"chromium"`` or ``"firefox"``)."""

    executable: str
    family: str


def _resolve_given(value: str, source: str) -> FoundBrowser:
    """A path or command name the user gave (``--browser`` or the environment), once it is known to be
    a Chromium-family browser or Firefox."""
    found = _locate_given(value, source)
    return FoundBrowser(found, refuse_unroutable(found, f"{source} {value}").family)


def _locate_given(value: str, source: str) -> str:
    """The executable for a path, ``.app`` bundle or command name the user gave."""
    expanded = os.path.expanduser(value.strip())
    if expanded.endswith(".app") and os.path.isdir(expanded):  # macOS bundle: use its executable
        macos = Path(expanded) / "Contents" / "MacOS"
        inside = sorted(p for p in macos.glob("*") if _is_executable(str(p))) if macos.is_dir() else []
        if inside:
            return str(inside[0])
    if os.sep in expanded or (os.altsep and os.altsep in expanded):
        if not os.path.exists(expanded):
            raise BrowserNotFound(f"{source} {value}: no such file")
        if not _is_executable(expanded):
            raise BrowserNotFound(f"{source} {value}: not an executable program")
        return expanded
    found = shutil.which(expanded)
    if not found:
        raise BrowserNotFound(f"{source} {value}: not found on PATH")
    return found


def find_browser(explicit: str | None = None, *, env: Mapping[str, str] | None = None,
                 system: str | None = None) -> str:
    """The browser executable to use (see :func:`locate_browser`)."""
    return locate_browser(explicit, env=env, system=system).executable


def locate_browser(explicit: str | None = None, *, env: Mapping[str, str] | None = None,
                   system: str | None = None) -> FoundBrowser:
    """The browser to use and its family: ``explicit`` (``--browser``), then ``$TELEMETRY_INSPECTOR_BROWSER``,
    then Chrome/Chromium/Edge on PATH, then their usual install locations, then the same for Firefox.

    Raises :class:`BrowserNotFound` with a one-line message; :class:`UnsupportedBrowser` (one of those)
    when the one given is neither Chromium-family nor Firefox.
    """
    env = os.environ if env is None else env
    if explicit:
        return _resolve_given(explicit, "--browser")
    if env.get(ENV_BROWSER):
        return _resolve_given(env[ENV_BROWSER], ENV_BROWSER)
    searches = (("chromium", PATH_NAMES, browser_candidates), ("firefox", FIREFOX_PATH_NAMES, firefox_candidates))
    for family, names, candidates in searches:
        for name in names:
            found = shutil.which(name, path=env.get("PATH"))
            if found:
                return FoundBrowser(found, family)
        for path in candidates(system, env):
            if _is_executable(path):
                return FoundBrowser(path, family)
    raise BrowserNotFound(NOT_FOUND_HINT)


# -- the command line ---------------------------------------------------------

def running_as_root() -> bool:
    """True for uid 0 on POSIX: Chromium refuses to start its sandbox there."""
    return hasattr(os, "geteuid") and os.geteuid() == 0


def in_ci(env: Mapping[str, str] | None = None) -> bool:
    """True under a CI runner (the ``CI`` variable most of them set)."""
    value = (os.environ if env is None else env).get("CI", "")
    return value.lower() not in ("", "0", "false", "no")


def routed_browser_args(https_port: int, spki_pin: str, *, profile_dir: str | Path, url: str | None = None,
                        host: str = "127.0.0.1", headless: bool = False, remote_debugging: bool = False,
                        as_root: bool | None = None, quiet: bool | None = None,
                        extra_args: Iterable[str] = ()) -> list[str]:
    """The flags (without the executable) for a browser routed to the mock.

    ``quiet`` (default: headless or CI) adds the closed-network flags;
    ``as_root`` (default: detected) adds ``--no-sandbox``.
    """
    as_root = running_as_root() if as_root is None else as_root
    quiet = (headless or in_ci()) if quiet is None else quiet
    args = [f"--user-data-dir={profile_dir}", *chromium_routing_flags(https_port, spki_pin, host),
            "--no-first-run", "--no-default-browser-check"]
    if headless:
        args += ["--headless", "--disable-gpu", "--mute-audio", "--hide-scrollbars"]
    if quiet:
        args += [flag for flag in QUIET_CHROMIUM_FLAGS if flag not in args]
    if as_root:
        args.append("--no-sandbox")  # Chromium will not start as root with its sandbox
    if remote_debugging:
        args.append("--remote-debugging-port=0")  # the port is read back from DevToolsActivePort
    args += list(extra_args)
    args.append(url or "about:blank")
    return args


# -- a running browser ---------------------------------------------------------

class RoutedBrowser(BrowserProcess):
    """A routed Chromium-family browser on its temporary profile, driven over DevTools."""

    family = "chromium"
    routing = CHROMIUM_ROUTING

    def __init__(self, executable: str, args: Sequence[str], profile_dir: Path, *, headless: bool,
                 env: Mapping[str, str] | None = None) -> None:
        super().__init__(executable, args, profile_dir, headless=headless, env=env)
        self.network: NetworkWatch | None = None

    def devtools_port(self, timeout: float = 20.0) -> int:
        """The DevTools port Chromium picked (needs ``remote_debugging=True``)."""
        marker = self.profile_dir / "DevToolsActivePort"
        return self.wait_for_port(lambda: int(marker.read_text().splitlines()[0]), "DevTools", timeout)

    def load(self, url: str, timeout: float = 30.0) -> float:
        """Navigate the first tab to ``url`` and wait for its load event; returns the seconds it took.

        Raises BrowserError when the navigation fails (``net::ERR_…``) or times out.
        """
        started = time.monotonic()
        try:
            ws_url = page_websocket_url(self.devtools_port(timeout), timeout)
            with DevToolsConnection(ws_url, timeout) as page:
                page.call("Page.enable")
                result = page.call("Page.navigate", {"url": url}, timeout)
                if result.get("errorText"):
                    raise BrowserError(f"could not load {url}: {result['errorText']}")
                page.wait_event("Page.loadEventFired", max(0.1, timeout - (time.monotonic() - started)))
        except TimeoutError:
            raise BrowserError(f"{url} did not finish loading within {timeout:g} s") from None
        except DevToolsError as exc:
            raise BrowserError(str(exc)) from exc
        return time.monotonic() - started

    def watch_network(self, *, own_hosts: frozenset[str] = frozenset(),
                      on_request: Callable[[OtherRequest], None] | None = None, timeout: float = 20.0) -> None:
        """Start listing the page's requests to other hosts (needs ``remote_debugging=True``).

        ``own_hosts`` (the app's) are left out; ``on_request`` hears each one as it finishes, on the
        watch's thread. Raises BrowserError when the page cannot be watched.
        """
        try:
            ws_url = page_websocket_url(self.devtools_port(timeout), timeout)
            self.network = NetworkWatch(ws_url, own_hosts=own_hosts, on_request=on_request, timeout=timeout).start()
        except TimeoutError:
            raise BrowserError("the browser's network events could not be watched: no answer") from None
        except DevToolsError as exc:
            raise BrowserError(f"the browser's network events could not be watched: {exc}") from exc

    def other_requests(self) -> list[OtherRequest]:
        """The page's requests to other hosts so far (empty unless :meth:`watch_network` ran)."""
        return self.network.requests() if self.network is not None else []

    def open(self, url: str, timeout: float = 30.0) -> None:
        """Navigate the first tab to ``url`` without waiting for it to load (raises BrowserError)."""
        try:
            with DevToolsConnection(page_websocket_url(self.devtools_port(timeout), timeout), timeout) as page:
                result = page.call("Page.navigate", {"url": url}, timeout)
        except TimeoutError:
            raise BrowserError(f"the browser did not start loading {url} within {timeout:g} s") from None
        except DevToolsError as exc:
            raise BrowserError(str(exc)) from exc
        if result.get("errorText"):
            raise BrowserError(f"could not load {url}: {result['errorText']}")

    def load_probe(self, nonce: str, timeout: float = 10.0) -> str:
        """Load the route probe ``nonce`` as an image in the first tab's page (needs ``remote_debugging=True``).

        Returns what the page saw: ``"load"`` or ``"error"``. Raises BrowserError.
        """
        from mockserver.serving.probe import probe_expression

        try:
            ws_url = page_websocket_url(self.devtools_port(timeout), timeout)
            with DevToolsConnection(ws_url, timeout) as page:
                result = page.call("Runtime.evaluate", {"expression": probe_expression(nonce), "awaitPromise": True,
                                                        "returnByValue": True}, timeout)
        except TimeoutError:
            return "timeout"
        except DevToolsError as exc:
            raise BrowserError(str(exc)) from exc
        if "exceptionDetails" in result:
            text = result["exceptionDetails"].get("text", "an exception")
            raise BrowserError(f"the page refused the probe script: {text}")
        return str(result.get("result", {}).get("value", "no answer"))

    def _clean_up(self) -> None:
        if self.network is not None:
            self.network.stop()
        super()._clean_up()


def launch_routed_browser(url: str | None, https_port: int, spki_pin: str, *, host: str = "127.0.0.1",
                          browser: str | FoundBrowser | None = None, headless: bool = False,
                          remote_debugging: bool = False, extra_args: Iterable[str] = (),
                          http_port: int | None = None, ca_pem: CaSource | None = None) -> BrowserProcess:
    """Find a browser and start it routed to the mock, on a fresh temporary profile.

    ``https_port``/``spki_pin`` are ``Listening.https_port``/``Listening.spki_pin`` of a started
    :class:`~mockserver.serving.server.InspectorServer`, ``host`` where it listens. ``browser``
    overrides the search (a path or command name), or is what :func:`locate_browser` found already
    (not identified again: a neutral-named wrapper is asked ``--version`` once). A Firefox also needs
    the inspector's HTTP port (``http_port``) and its CA certificate (``ca_pem()`` returns the PEM;
    asked only for Firefox). Returns the running :class:`RoutedBrowser` or
    :class:`~mockserver.reach.firefox.FirefoxBrowser`; call ``.stop()`` to close it. Raises
    :class:`BrowserNotFound` or :class:`BrowserError` (one-line messages).
    """
    found = browser if isinstance(browser, FoundBrowser) else locate_browser(browser)
    if found.family == "firefox":
        return launch_firefox(found.executable, url, https_port=https_port, http_port=http_port, ca_pem=ca_pem,
                              host=host, headless=headless, remote_debugging=remote_debugging,
                              extra_args=extra_args)
    profile = fresh_profile()
    args = routed_browser_args(https_port, spki_pin, profile_dir=profile, url=url, host=host,
                               headless=headless, remote_debugging=remote_debugging, extra_args=extra_args)
    return RoutedBrowser(found.executable, args, profile, headless=headless).start()


def check_url(url: str, timeout: float = 10.0) -> str | None:
    """Why ``url`` cannot be loaded (one line), or None when it answers.

    Checked before a browser is started so that an app that is not running is
    "could not run" (exit 2), never an empty capture that passes ``--expect none``.
    """
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "file":
        path = urllib.request.url2pathname(parts.path)
        return None if os.path.exists(path) else f"{url}: no such file"
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return f"not an http(s) or file URL: {url!r}"
    request = urllib.request.Request(url, headers={"User-Agent": "telemetry-inspector (URL check)"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read(1)
    except urllib.error.HTTPError as exc:
        return f"{url} answered HTTP {exc.code} {exc.reason}"
    except urllib.error.URLError as exc:
        reason = exc.reason
        text = getattr(reason, "strerror", None) or str(reason)
        return f"{url} is unreachable: {text}"
    except (OSError, ValueError) as exc:
        return f"{url} is unreachable: {exc}"
    return None


@dataclass(frozen=True)
class RouteCheck:
    """How proving the route through a browser went: ``line`` says it in one line.

    ``line`` starts with :data:`~mockserver.serving.probe.UNPROVEN` when the route is not proven;
    ``browser_closed``: the browser was gone before it could be proven (the user closed it),
    which is not a failure of the route.
    """

    proven: bool
    line: str
    browser_closed: bool = False


PROVEN_LINE = "proven: a probe loaded in the browser reached this inspector"


def prove_and_open(browser: BrowserProcess, wait_seen: Callable[[str, float], bool], url: str | None = None, *,
                   where: str = "the browser's empty tab", page_policy: bool = False) -> RouteCheck:
    """Prove the route with a probe in ``browser``'s first tab, then (only once proven) open ``url``.

    Used by the ``browser`` command and the window: a browser started on an empty tab is proven
    there before the app can send anything. ``wait_seen(nonce, seconds)`` asks the inspector;
    ``page_policy``: the tab holds a page whose Content-Security-Policy may block the probe.
    """
    from mockserver.reach.remote import RemoteError
    from mockserver.serving.probe import UNPROVEN, RouteNotProven

    try:
        browser.prove_route(wait_seen, where=where, page_policy=page_policy)
    except (RouteNotProven, RemoteError) as exc:
        if not browser.running():
            return RouteCheck(False, "not proven: the browser closed first", browser_closed=True)
        return RouteCheck(False, f"{UNPROVEN} ({exc})")
    if url:
        try:
            browser.open(url)
        except BrowserError as exc:
            if browser.running():
                return RouteCheck(False, f"{UNPROVEN} (the route was proven, but {exc})")
    return RouteCheck(True, PROVEN_LINE)
