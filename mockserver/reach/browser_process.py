"""A browser this tool started: its process, its temporary profile, and what every family can do.

Chromium (:class:`mockserver.reach.browser.RoutedBrowser`, driven over DevTools) and Firefox
(:class:`mockserver.reach.firefox.FirefoxBrowser`, driven over WebDriver BiDi) share everything
here: the process in a group of its own, its log, waiting for its control port, the route
probe, and a stop that ends the whole group and deletes the profile. Each family adds how it
loads a page, runs the probe and lists the other hosts the page contacted.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Self

from mockserver.records.egress import OtherRequest


class BrowserNotFound(Exception):
    """No usable browser; the message is one line saying what to do."""


class BrowserError(Exception):
    """The browser could not be started or controlled; message is one line."""


class UnsupportedBrowser(BrowserNotFound):
    """The given program is not a browser this version can route (neither Chromium-family nor Firefox)."""


def fresh_profile() -> Path:
    """A new private (0700) folder for one launch, and the empty ``profile`` folder inside it.

    Returns the profile; its parent holds the browser's log and is removed with it on stop.
    """
    workdir = Path(tempfile.mkdtemp(prefix="telemetry-inspector-browser-"))  # 0700 by mkdtemp
    profile = workdir / "profile"
    profile.mkdir(mode=0o700)
    return profile


def remove_tree(folder: Path) -> None:
    """Delete ``folder``, retrying a moment: a browser's helpers may still be closing files in it."""
    for _ in range(10):
        shutil.rmtree(folder, ignore_errors=True)
        if not folder.exists():
            return
        time.sleep(0.1)


class BrowserProcess:
    """A browser process with its own temporary profile; :meth:`stop` ends it and removes the profile.

    ``family`` is ``"chromium"`` or ``"firefox"``; ``routing`` names how its telemetry is routed
    (for the route probe's messages). Subclasses implement :meth:`load`, :meth:`open`,
    :meth:`load_probe`, :meth:`watch_network` and :meth:`other_requests`.
    """

    family = ""
    routing = "the browser's routing"

    def __init__(self, executable: str, args: Sequence[str], profile_dir: Path, *, headless: bool,
                 env: Mapping[str, str] | None = None) -> None:
        self.executable = executable
        self.args = list(args)
        self.profile_dir = profile_dir
        self.headless = headless
        self.env = dict(env) if env is not None else None
        self.process: subprocess.Popen[bytes] | None = None
        self._log_path = profile_dir.parent / "browser.log"
        self._stopped = threading.Event()

    @property
    def command(self) -> list[str]:
        """The full command line."""
        return [self.executable, *self.args]

    @property
    def pid(self) -> int | None:
        """Process id of the browser, once started."""
        return self.process.pid if self.process else None

    def start(self) -> Self:
        """Start the process (raises BrowserError when it cannot be run)."""
        kwargs: dict[str, object] = {}
        if os.name == "posix":
            kwargs["start_new_session"] = True  # its own process group: stop() ends the helpers too
        else:
            kwargs["creationflags"] = getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)
        with open(self._log_path, "wb") as log:
            try:
                self.process = subprocess.Popen(self.command, stdin=subprocess.DEVNULL, stdout=log, env=self.env,
                                                stderr=subprocess.STDOUT, **kwargs)  # type: ignore[call-overload]  # the platform's group flag
            except OSError as exc:
                self._clean_up()
                raise BrowserError(f"cannot start {self.executable}: {exc.strerror or exc}") from exc
        return self

    def running(self) -> bool:
        """True while the browser process is alive."""
        return self.process is not None and self.process.poll() is None

    def wait(self, timeout: float | None = None) -> int | None:
        """Wait for the browser to exit (e.g. the user closed it); its status, or None on timeout."""
        if self.process is None:
            return None
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def log_tail(self, lines: int = 3) -> str:
        """The last lines the browser printed (to explain a failed start)."""
        try:
            text = self._log_path.read_text("utf-8", "replace")
        except OSError:
            return ""
        kept = [line.strip() for line in text.splitlines() if line.strip()]
        return " | ".join(kept[-lines:])

    def wait_for_port(self, read_port: Callable[[], int], what: str, timeout: float) -> int:
        """Poll ``read_port`` (it raises OSError or ValueError until the browser has written its port)
        while the browser runs; BrowserError when it exits first or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, ValueError, IndexError, KeyError, TypeError):
                return read_port()
            if not self.running():
                status = self.process.returncode if self.process else None
                tail = self.log_tail()
                raise BrowserError(f"the browser exited at start (status {status})" + (f": {tail}" if tail else ""))
            time.sleep(0.05)
        raise BrowserError(f"the browser did not open its {what} port within {timeout:g} s")

    def load(self, url: str, timeout: float = 30.0) -> float:
        """Navigate the first tab to ``url`` and wait for its load event; returns the seconds it took.

        Raises BrowserError when the navigation fails or times out.
        """
        raise NotImplementedError

    def open(self, url: str, timeout: float = 30.0) -> None:
        """Navigate the first tab to ``url`` without waiting for it to load (raises BrowserError)."""
        raise NotImplementedError

    def load_probe(self, nonce: str, timeout: float = 10.0) -> str:
        """Load the route probe ``nonce`` as an image in the first tab's page.

        Returns what the page saw: ``"load"``, ``"error"`` or ``"timeout"``. Raises BrowserError.
        """
        raise NotImplementedError

    def watch_network(self, *, own_hosts: frozenset[str] = frozenset(),
                      on_request: Callable[[OtherRequest], None] | None = None, timeout: float = 20.0) -> None:
        """Start listing the page's requests to other hosts for :meth:`other_requests`.

        ``own_hosts`` (the app's) are left out; ``on_request`` hears each one as it finishes (on a
        thread of the browser's watch; it must be quick). Raises BrowserError when it cannot be watched.
        """
        raise NotImplementedError

    def other_requests(self) -> list[OtherRequest]:
        """The hosts other than telemetry.refine.dev (and loopback) the page contacted so far."""
        raise NotImplementedError

    def prove_route(self, wait_seen: Callable[[str, float], bool], *, where: str, page_policy: bool = True) -> str:
        """Load a route probe in the first tab and wait (``wait_seen``) for the inspector to see it.

        Needs the control port (``remote_debugging=True``). Returns the nonce; raises
        :class:`~mockserver.serving.probe.RouteNotProven`.
        """
        from mockserver.serving.probe import PROBE_WAIT, prove_route

        return prove_route(lambda nonce: self.load_probe(nonce, PROBE_WAIT), wait_seen, where=where,
                           page_policy=page_policy, routing=self.routing)

    def stop(self, timeout: float = 10.0) -> None:
        """End the browser (and its helper processes) and delete its temporary profile."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        process = self.process
        if process is not None and process.poll() is None:
            terminate_tree(process, timeout)
        elif process is not None and os.name == "posix":
            # The main process is gone but helpers may linger in its group.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGTERM)
        self._clean_up()

    def _clean_up(self) -> None:
        """What goes with the browser: its profile (subclasses add their own, then call this)."""
        remove_tree(self.profile_dir.parent)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def terminate_tree(process: subprocess.Popen[bytes], timeout: float) -> None:
    """End ``process`` and its process group: SIGTERM, then SIGKILL after ``timeout`` (taskkill on Windows)."""
    if os.name == "posix":
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGTERM)
    else:
        process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        if os.name == "posix":
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
        else:  # the whole tree: a browser's helpers are separate processes
            subprocess.run(["taskkill", "/F", "/T", "/PID", str(process.pid)], capture_output=True, check=False)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout)
