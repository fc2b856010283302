"""Test helpers: refine 4's usual payload, a journal API client, reading a child's output.

The payload is built and encoded by :mod:`mockserver.core.payloads` (``btoa_json`` /
``buffer_json`` are what ``@refinedev/core`` puts in the query), which
tests/test_real_beacons.py checks against what Node printed.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import ssl
import subprocess
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import Message
from pathlib import Path
from typing import Any

from mockserver.core.payloads import beacon_payload

REFINE_4_PAYLOAD = beacon_payload("4.58.0", resources=2)  # a minimal 4.x app: data and router

CHROME_UA = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
             "Chrome/156.0.0.0 Safari/537.36")
# What a page on refine's dev server sends along with a beacon.
BROWSER_HEADERS = {"User-Agent": CHROME_UA, "Referer": "http://localhost:5173/"}


def http(method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None,
         context: ssl.SSLContext | None = None, timeout: float = 10) -> tuple[int, Message, bytes]:
    """A real HTTP request; returns (status, headers, body) for any status.

    The headers are looked up whatever their case (``headers["Content-Type"]``, ``"X" in headers``),
    as HTTP means them: the server sends every name in lower case.
    """
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=context) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


class Journal:
    """The journal API of a running inspector, as tests use it (qutebrowser style)."""

    def __init__(self, base_url: str) -> None:
        self.base = base_url.rstrip("/") + "/__inspector"

    def get(self, path: str) -> Any:
        status, _, body = http("GET", self.base + path)
        assert status == 200, (status, body)
        return json.loads(body)

    def beacons(self, **filters: Any) -> list[dict[str, Any]]:
        query = "&".join(f"{k}={v}" for k, v in filters.items() if v is not None)
        return self.get("/beacons" + (f"?{query}" if query else ""))["beacons"]

    def wait_for(self, count: int, timeout: float = 10, **filters: Any) -> list[dict[str, Any]]:
        """Wait (server-side long poll) until ``count`` records exist; return them."""
        query = "&".join([f"count={count}", f"timeout={timeout}"] + [f"{k}={v}" for k, v in filters.items()])
        status, _, body = http("GET", f"{self.base}/wait?{query}", timeout=timeout + 10)
        assert status == 200, f"expected {count} record(s) within {timeout}s, journal says {body!r}"
        return self.beacons(**filters)

    def ensure_not_logged(self, delay: float = 1.0, **filters: Any) -> None:
        """Assert that no (matching) record arrives during ``delay`` seconds."""
        before = len(self.beacons(**filters))
        status, _, body = http("GET", f"{self.base}/wait?count={before + 1}&timeout={delay}"
                               + "".join(f"&{k}={v}" for k, v in filters.items()), timeout=delay + 10)
        assert status == 408, f"expected no new record for {delay}s, got {body!r}"


# -- reading a child process's output without hanging -------------------------

_readers: dict[object, queue.Queue] = {}  # keyed by the pipe itself (kept alive, so ids never repeat)


def read_line(stream, timeout: float = 30) -> str:
    """One line from a child's pipe, failing (not hanging) if none comes in time.

    A thread per pipe does the blocking reads (select() cannot see lines
    already sitting in the text wrapper's buffer).
    """
    lines = _readers.get(stream)
    if lines is None:
        lines = _readers[stream] = queue.Queue()

        def pump(into: queue.Queue[str]) -> None:
            for line in iter(stream.readline, ""):
                into.put(line)
            into.put("")  # end of stream

        threading.Thread(target=pump, args=(lines,), daemon=True).start()
    try:
        return lines.get(timeout=timeout)
    except queue.Empty:
        raise AssertionError(f"no output from the child within {timeout}s") from None


def read_rest(stream, timeout: float = 30) -> list[str]:
    """Every line left on a child's pipe, up to its end (the child has exited or is exiting)."""
    lines = []
    while line := read_line(stream, timeout):
        lines.append(line)
    return lines


def read_until(stream, pattern: str, timeout: float = 30) -> tuple[re.Match, list[str]]:
    """Lines from a child's pipe up to the first matching ``pattern``: (match, lines read)."""
    lines = []
    while line := read_line(stream, timeout):
        lines.append(line)
        found = re.search(pattern, line)
        if found:
            return found, lines
    raise AssertionError(f"{pattern!r} never printed; got {lines}")


def stand_in_browser(path: Path, version: str | None) -> Path:
    """A program at ``path`` that prints ``version`` for ``--version`` (fails there when None) and,
    run any other way, leaves ``<path>.started`` behind: a test asserts it was never launched."""
    answer = f"printf '%s\\n' '{version}'; exit 0" if version is not None else "exit 3"
    path.write_text("#!/bin/sh\n"
                    f'if [ "$1" = --version ]; then {answer}; fi\n'
                    f"touch '{path}.started'\n")
    path.chmod(0o755)
    return path


def was_started(program: Path) -> bool:
    """True once a :func:`stand_in_browser` was run as a browser (not just asked ``--version``)."""
    return Path(f"{program}.started").exists()


def unrouted_chromium(wrapper: Path, chromium: str) -> str:
    """Write a launcher at ``wrapper`` that drops the two routing flags, as a policy or script might."""
    wrapper.write_text("#!/bin/sh\n"
                       'for arg in "$@"; do shift; case "$arg" in\n'
                       "  --host-resolver-rules=*|--ignore-certificate-errors-spki-list=*) ;;\n"
                       '  *) set -- "$@" "$arg" ;;\n'
                       "esac; done\n"
                       f'exec {chromium} "$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper)


@contextmanager
def xvfb_display(size: str = "1024x768") -> Iterator[str]:
    """A real X server (Xvfb) with one screen of ``size``; yields its DISPLAY (":N").

    Skips the test where Xvfb is not installed (scripts/install-test-deps installs it).
    ``-displayfd``: Xvfb picks a free display and writes its number once it accepts
    connections, so nothing has to wait or guess.
    """
    import pytest

    if shutil.which("Xvfb") is None:
        pytest.skip("needs Xvfb (scripts/install-test-deps installs it)")
    read_end, write_end = os.pipe()
    xvfb = subprocess.Popen(["Xvfb", "-displayfd", str(write_end), "-screen", "0", f"{size}x24", "-nolisten", "tcp"],
                            pass_fds=(write_end,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write_end)
    try:
        with os.fdopen(read_end) as ready:
            number = ready.readline().strip()
        assert number.isdigit(), "Xvfb did not start"
        yield f":{number}"
    finally:
        xvfb.kill()
        xvfb.wait()


def own_address() -> str | None:
    """This machine's own non-loopback IPv4 address (the one its default route leaves from), or None.

    A UDP "connection" sends nothing: it only makes the kernel pick the source address.
    """
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("198.51.100.1", 9))  # TEST-NET-2: only routed, never sent to
            address = str(probe.getsockname()[0])
        except OSError:
            return None
    return None if address.startswith(("127.", "0.")) else address


@contextmanager
def refused_port(address: str) -> Iterator[int]:
    """A port on ``address`` that is bound but not listening: a connection to it is refused."""
    import socket

    with socket.socket() as spare:
        spare.bind((address, 0))
        yield int(spare.getsockname()[1])


@contextmanager
def killed_at_end(proc: subprocess.Popen[str]) -> Iterator[subprocess.Popen[str]]:
    """``proc``, killed on the way out if a failed check left it running."""
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def interrupt(proc: subprocess.Popen[str], lines: list[str]) -> tuple[str, str]:
    """Ctrl-C the command; (everything it printed on stdout, its stderr)."""
    proc.send_signal(signal.SIGINT)
    err = "".join(read_rest(proc.stderr))  # both pipes drained by reader threads: no deadlock on a full one
    proc.wait(timeout=30)
    return "".join(lines + read_rest(proc.stdout)), err
