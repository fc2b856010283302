"""Start a Firefox whose requests to telemetry.refine.dev reach the inspector, every other host untouched.

Firefox takes none of Chromium's routing flags. Each launch gets instead:

* a fresh temporary profile (0700, deleted on stop) whose ``user.js``
  (:mod:`mockserver.core.firefox_prefs`) silences Firefox's own background traffic and sends
  its HTTP(S) requests, loopback excepted, to
* a private :class:`~mockserver.serving.proxy.ScopedProxy` on loopback (a free port, stopped
  with the browser): ``CONNECT telemetry.refine.dev:443`` goes to the inspector's HTTPS
  listener, any other host is tunneled byte for byte and listed (:meth:`FirefoxBrowser.other_requests`);
* the inspector's CA in the profile's certificate store, imported with NSS's ``certutil``
  (a ``cert_override.txt`` is ignored by current Firefox), so the mock's certificate is trusted
  in that profile only; the CA is name-constrained to telemetry.refine.dev and localhost.

Pages are driven over WebDriver BiDi (:mod:`mockserver.reach.bidi`; ``--remote-debugging-port 0``,
the port read back from ``WebDriverBiDiServer.json`` in the profile).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from mockserver.core.firefox_prefs import FIREFOX_ENV, QUIET_FIREFOX_PREFS, proxy_prefs, user_js
from mockserver.reach.bidi import BidiError, BidiSession, session_url
from mockserver.reach.browser_process import BrowserError, BrowserProcess, fresh_profile, remove_tree
from mockserver.records.egress import OtherRequest, leaves_machine
from mockserver.serving.egress import Egress
from mockserver.serving.proxy import ScopedProxy

FIREFOX_ROUTING = "the profile's proxy settings and the inspector's CA imported with certutil"
CA_NICKNAME = "telemetry-inspector"
CERTUTIL_TIMEOUT = 30.0
CERTUTIL_MISSING = ("Firefox needs certutil (the NSS tools) to trust the inspector's certificate in its profile: "
                    "on Debian/Ubuntu apt install libnss3-tools, on macOS brew install nss, on Windows the NSS "
                    "tools' certutil.exe on PATH (not Windows' own certutil.exe, a different program)")

CaSource = Callable[[], bytes]
_LISTENING = re.compile(r"WebDriver BiDi listening on ws://127\.0\.0\.1:(\d+)")


def find_certutil(env: Mapping[str, str] | None = None, system: str | None = None) -> str:
    """NSS's ``certutil`` on PATH; BrowserError (:data:`CERTUTIL_MISSING`) when there is none.

    On Windows the system's own ``certutil.exe`` (in the Windows folder) is a different program and
    is passed over.
    """
    env = os.environ if env is None else env
    system = system or sys.platform
    found = shutil.which("certutil", path=env.get("PATH"))
    if found and system.startswith("win"):
        windows = env.get("SYSTEMROOT") or env.get("WINDIR") or r"C:\Windows"
        if os.path.normcase(found).startswith(os.path.normcase(os.path.join(windows, ""))):
            found = None
    if not found:
        raise BrowserError(CERTUTIL_MISSING)
    return found


def _certutil(certutil: str, *args: str) -> None:
    try:
        done = subprocess.run([certutil, *args], stdin=subprocess.DEVNULL, capture_output=True,
                              timeout=CERTUTIL_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        raise BrowserError(f"certutil did not finish within {CERTUTIL_TIMEOUT:g} s") from None
    except OSError as exc:
        raise BrowserError(f"cannot run {certutil}: {exc.strerror or exc}") from exc
    if done.returncode != 0:
        said = " ".join((done.stderr or done.stdout).decode("utf-8", "replace").split())[:300]
        raise BrowserError(f"certutil {args[0]} failed (status {done.returncode})" + (f": {said}" if said else ""))


def import_ca(profile: Path, ca_pem: bytes, certutil: str) -> None:
    """Make ``profile``'s certificate store and trust ``ca_pem`` there for websites (``-t C,,``)."""
    ca_file = profile.parent / "inspector-ca.pem"
    ca_file.write_bytes(ca_pem)
    database = f"sql:{profile}"
    _certutil(certutil, "-N", "-d", database, "--empty-password")
    _certutil(certutil, "-A", "-d", database, "-t", "C,,", "-n", CA_NICKNAME, "-i", str(ca_file))


def firefox_args(profile: Path, url: str | None = None, *, headless: bool = False, remote_debugging: bool = False,
                 extra_args: Iterable[str] = ()) -> list[str]:
    """The arguments (without the executable) of a routed Firefox on ``profile``."""
    args = ["--profile", str(profile), "--no-remote"]  # its own instance, never the user's running one
    if headless:
        args.append("--headless")
    if remote_debugging:
        args += ["--remote-debugging-port", "0"]  # the port is read back from WebDriverBiDiServer.json
    args += list(extra_args)
    args.append(url or "about:blank")
    return args


class FirefoxBrowser(BrowserProcess):
    """A routed Firefox: its process and profile, its private proxy, and one BiDi session to drive it."""

    family = "firefox"
    routing = FIREFOX_ROUTING

    def __init__(self, executable: str, args: Iterable[str], profile_dir: Path, *, headless: bool,
                 proxy: ScopedProxy, env: Mapping[str, str] | None = None) -> None:
        super().__init__(executable, list(args), profile_dir, headless=headless, env=env)
        self.proxy = proxy
        self._session: BidiSession | None = None
        self._own_hosts: frozenset[str] = frozenset()
        self._driving_lock = threading.Lock()  # one BiDi command at a time (the window drives from jobs)

    def bidi_port(self, timeout: float = 20.0) -> int:
        """The WebDriver BiDi port Firefox picked (needs ``remote_debugging=True``): from
        ``WebDriverBiDiServer.json`` in the profile, else (older releases) its log line."""
        marker = self.profile_dir / "WebDriverBiDiServer.json"

        def read_port() -> int:
            try:
                return int(json.loads(marker.read_text("utf-8"))["ws_port"])
            except (OSError, ValueError, KeyError, TypeError):
                found = _LISTENING.search(self._log_path.read_text("utf-8", "replace"))
                if found is None:
                    raise ValueError("not yet") from None
                return int(found.group(1))

        return self.wait_for_port(read_port, "WebDriver BiDi", timeout)

    @contextmanager
    def _first_tab(self, timeout: float) -> Iterator[tuple[BidiSession, str]]:
        """The BiDi session (made on first use) and the first tab's context, one caller at a time."""
        with self._driving_lock:
            if self._session is None:
                self._session = BidiSession(session_url(self.bidi_port(timeout)), timeout)
            yield self._session, self._session.first_context(timeout)

    def load(self, url: str, timeout: float = 30.0) -> float:
        """Navigate the first tab to ``url`` and wait for its load event; returns the seconds it took.

        Raises BrowserError when the navigation fails (``NS_ERROR_…``) or times out.
        """
        started = time.monotonic()
        try:
            with self._first_tab(timeout) as (session, tab):
                session.navigate(tab, url, wait="complete", timeout=max(0.1, timeout - (time.monotonic() - started)))
        except TimeoutError:
            raise BrowserError(f"{url} did not finish loading within {timeout:g} s") from None
        return time.monotonic() - started

    def open(self, url: str, timeout: float = 30.0) -> None:
        """Navigate the first tab to ``url`` without waiting for it to load (raises BrowserError)."""
        try:
            with self._first_tab(timeout) as (session, tab):
                session.navigate(tab, url, wait="none", timeout=timeout)
        except TimeoutError:
            raise BrowserError(f"the browser did not start loading {url} within {timeout:g} s") from None

    def load_probe(self, nonce: str, timeout: float = 10.0) -> str:
        """Load the route probe ``nonce`` as an image in the first tab's page (needs ``remote_debugging=True``).

        Returns what the page saw: ``"load"``, ``"error"`` or ``"timeout"``. Raises BrowserError.
        """
        from mockserver.serving.probe import probe_expression

        try:
            with self._first_tab(timeout) as (session, tab):
                value = session.evaluate(tab, probe_expression(nonce), timeout)
        except TimeoutError:
            return "timeout"
        except BidiError as exc:
            if exc.code == "exception":
                raise BrowserError(f"the page refused the probe script: {exc.detail}") from exc
            raise
        return str(value) if value is not None else "no answer"

    def watch_network(self, *, own_hosts: frozenset[str] = frozenset(),
                      on_request: Callable[[OtherRequest], None] | None = None, timeout: float = 20.0) -> None:
        """List the app's own hosts apart; ``on_request`` hears each connection through the private
        proxy as it closes. The proxy sees everything from the start: nothing to connect to."""
        self._own_hosts = frozenset(host.lower() for host in own_hosts)
        if on_request is None:
            return

        def closed(entry: Egress) -> None:
            if leaves_machine(entry.host) and entry.host not in self._own_hosts:
                on_request(entry.as_other_request(browser=True))  # Firefox is its proxy's only client

        self.proxy.egress.listen(closed)

    def other_requests(self) -> list[OtherRequest]:
        """The hosts other than telemetry.refine.dev the browser reached through its proxy (loopback
        is never proxied, the app's own hosts are left out); Firefox's own services marked ``browser_own``."""
        return [r for r in self.proxy.egress.other_requests(browser=True) if r.host not in self._own_hosts]

    def _clean_up(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            session.close(end=False)  # the process is gone: nothing to end, only the socket to close
        self.proxy.egress.listen(None)
        self.proxy.stop()
        super()._clean_up()


def _read_ca(ca_pem: CaSource | None) -> bytes:
    if ca_pem is None:
        raise BrowserError("routing Firefox needs the inspector's CA certificate, and none was given")
    try:
        pem = ca_pem()
    except Exception as exc:  # a file or a remote inspector: whatever failed, say it in one line
        raise BrowserError(f"cannot get the inspector's CA certificate for Firefox: {exc}") from exc
    if b"-----BEGIN CERTIFICATE-----" not in pem:
        raise BrowserError("the inspector's CA certificate for Firefox is not a PEM certificate")
    return pem


def launch_firefox(executable: str, url: str | None, *, https_port: int, http_port: int | None,
                   ca_pem: CaSource | None, host: str = "127.0.0.1", headless: bool = False,
                   remote_debugging: bool = False, extra_args: Iterable[str] = ()) -> FirefoxBrowser:
    """Start ``executable`` (a Firefox) routed to the inspector at ``host`` (its HTTP and HTTPS ports).

    ``ca_pem`` gives the inspector's CA certificate (PEM bytes), asked once. Raises BrowserError
    (one line) when certutil is missing, the CA cannot be had, or Firefox cannot start.
    """
    certutil = find_certutil()
    if http_port is None:
        raise BrowserError("routing Firefox needs the inspector's HTTP port, and none was given")
    pem = _read_ca(ca_pem)
    target = host.strip("[]")
    proxy = ScopedProxy("127.0.0.1", 0, http_target=(target, http_port), https_target=(target, https_port))
    profile = fresh_profile()
    try:
        try:
            port = proxy.start()
        except OSError as exc:
            raise BrowserError(f"cannot start Firefox's proxy on loopback: {exc.strerror or exc}") from exc
        import_ca(profile, pem, certutil)
        (profile / "user.js").write_text(user_js({**QUIET_FIREFOX_PREFS, **proxy_prefs(port)}), "utf-8")
    except BaseException:
        proxy.stop()
        remove_tree(profile.parent)
        raise
    args = firefox_args(profile, url, headless=headless, remote_debugging=remote_debugging, extra_args=extra_args)
    return FirefoxBrowser(executable, args, profile, headless=headless, proxy=proxy,
                          env={**os.environ, **FIREFOX_ENV}).start()
