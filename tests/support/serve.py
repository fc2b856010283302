"""``python -m mockserver serve`` as a child process whose output tests read by content (qutebrowser style).

:class:`ServeProcess` starts ``serve`` on free ports, reads its stdout and
stderr on threads as lines arrive, parses each ``--json`` stdout line into a
record, and offers :meth:`~ServeProcess.wait_for` and
:meth:`~ServeProcess.ensure_not_logged` that match records by their fields::

    serve.wait_for(kind="beacon", status="invalid")
    serve.wait_for(path="/cli", **{"payload.version": "4.58.0"})
    serve.ensure_not_logged(0.5, payload__projectId="p-2")

The ``serve_process`` fixture starts one per call and stops them after the
test; when the test fails, each process's output is attached to the report.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bench.process import stop_process

ROOT = Path(__file__).resolve().parents[2]
REPORT_LINES = 300  # of a process's output, in a failure message or report
BANNER_END = "Waiting for requests; Ctrl-C stops."
# Short names for the request's fields; any other key is a (dotted) path into the record.
ALIASES = {"path": "request.path", "method": "request.method", "query": "request.query",
           "scheme": "request.scheme", "headers": "request.headers", "body": "request.body"}
_MISSING = object()


@dataclass
class Line:
    """One line a child printed: its stream, text (without the newline) and, for a JSON record, the record."""

    stream: str
    text: str
    record: dict[str, Any] | None = None
    waited_for: bool = False


def field_value(record: dict[str, Any], key: str) -> Any:
    """The value at ``key`` in ``record``: a short name (``path``), a dotted path
    (``payload.version``, ``request.headers.User-Agent``) or ``__`` for the dots."""
    key = ALIASES.get(key, key)
    value: Any = record
    for part in key.replace("__", ".").split("."):
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


def matches(record: dict[str, Any], fields: dict[str, Any]) -> bool:
    """Whether every field of ``record`` named in ``fields`` is as expected.

    An expected value is compared with ``==``; a compiled pattern searches a
    string value; a callable is asked (``version=lambda v: v.startswith("4.")``).
    """
    for key, expected in fields.items():
        value = field_value(record, key)
        if value is _MISSING:
            return False
        if isinstance(expected, re.Pattern):
            if not (isinstance(value, str) and expected.search(value)):
                return False
        elif callable(expected):
            if not expected(value):
                return False
        elif value != expected:
            return False
    return True


@dataclass
class Banner:
    """What ``serve`` printed at start: its URLs and ports, the pin and the journal URL."""

    lines: list[str]
    http_url: str
    port: int
    https_url: str | None = None
    https_port: int | None = None
    spki_pin: str | None = None

    @classmethod
    def parse(cls, lines: list[str]) -> Banner:
        text = "\n".join(lines)
        found = re.search(r"HTTP +(http://[^/\s]+:(\d+))/telemetry", text)
        assert found, f"no HTTP URL in the banner: {text}"
        secure = re.search(r"HTTPS +(https://[^/\s]+:(\d+))/telemetry", text)
        pin = re.search(r"SPKI pin +(\S+)", text)
        return cls(lines, found.group(1), int(found.group(2)),
                   secure.group(1) if secure else None, int(secure.group(2)) if secure else None,
                   pin.group(1) if pin else None)


class ServeProcess:
    """``serve`` as a user runs it, on free ports, in a private home folder.

    ``args`` go after ``serve`` (``--db`` defaults to ``:memory:``, HTTPS is off
    unless ``https=True``); ``argv`` replaces the whole command line after
    ``python -m mockserver`` (for option-order tests). With ``as_json`` (the
    default) records come as NDJSON on stdout and the banner on stderr;
    without, the banner and the lines are text on stdout.
    """

    def __init__(self, home: Path, args: tuple[str, ...] = (), *, https: bool = False, as_json: bool = True,
                 argv: list[str] | None = None, env: dict[str, str] | None = None) -> None:
        self.home = home
        self.args = args
        self.https = https
        self.as_json = as_json
        self.argv = argv
        self.env = env or {}
        self.proc: subprocess.Popen[str] | None = None
        self.banner: Banner | None = None
        self.returncode: int | None = None
        self._lines: list[Line] = []
        self._closed: set[str] = set()  # the streams that reached their end
        self._changed = threading.Condition()
        self._readers: list[threading.Thread] = []

    # -- starting and stopping ----------------------------------------------------------

    def command(self) -> list[str]:
        """The child's command line."""
        if self.argv is not None:
            return [sys.executable, "-m", "mockserver", *self.argv]
        ports = ["--port", "0", *(["--https-port", "0"] if self.https else ["--no-https"])]
        db = [] if "--db" in self.args else ["--db", ":memory:"]
        return [sys.executable, "-m", "mockserver", "serve", *(["--json"] if self.as_json else []),
                *ports, *db, *self.args]

    def start(self, timeout: float = 60) -> ServeProcess:
        """Start the child and wait for its banner's last line; fails with the output if it exits first."""
        env = {**os.environ, "TELEMETRY_INSPECTOR_HOME": str(self.home), "PYTHONUNBUFFERED": "1", **self.env}
        self.proc = subprocess.Popen(self.command(), cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, encoding="utf-8", errors="replace")
        for name, stream in (("stdout", self.proc.stdout), ("stderr", self.proc.stderr)):
            reader = threading.Thread(target=self._read, args=(name, stream), name=f"serve-{name}", daemon=True)
            reader.start()
            self._readers.append(reader)
        as_json = self.as_json if self.argv is None else "--json" in self.argv
        banner_stream = "stderr" if as_json else "stdout"
        end = self._until(lambda: self._find_line(BANNER_END.__eq__, banner_stream), timeout,
                          f"serve printed no {BANNER_END!r} on {banner_stream}")
        self.banner = Banner.parse([line.text for line in self.lines(banner_stream)[:end + 1]])
        return self

    def _read(self, name: str, stream: Any) -> None:
        for text in iter(stream.readline, ""):
            text = text.rstrip("\n")
            record = None
            if name == "stdout" and text.startswith("{"):
                try:
                    parsed = json.loads(text)
                except ValueError:
                    parsed = None
                record = parsed if isinstance(parsed, dict) else None
            with self._changed:
                self._lines.append(Line(name, text, record))
                self._changed.notify_all()
        with self._changed:
            self._closed.add(name)
            self._changed.notify_all()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        """Send ``sig``, wait for the exit and for both pipes to end; returns the exit status."""
        assert self.proc is not None, "not started"
        self.returncode = stop_process(self.proc, sig, timeout)
        for reader in self._readers:
            reader.join(timeout=timeout)
        return self.returncode

    def kill(self) -> None:
        """Stop the child at once (a test's end, whatever happened)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.returncode = self.proc.wait()

    @property
    def http_url(self) -> str:
        """``http://127.0.0.1:PORT``, from the banner."""
        assert self.banner is not None, "not started"
        return self.banner.http_url

    @property
    def port(self) -> int:
        """The HTTP port it listens on, from the banner."""
        assert self.banner is not None, "not started"
        return self.banner.port

    # -- what it printed ----------------------------------------------------------------

    def lines(self, stream: str | None = None) -> list[Line]:
        """The lines so far, of one stream or both."""
        with self._changed:
            return [line for line in self._lines if stream is None or line.stream == stream]

    def texts(self, stream: str = "stdout") -> list[str]:
        """The text of each line of ``stream`` so far."""
        return [line.text for line in self.lines(stream)]

    def records(self, **fields: Any) -> list[dict[str, Any]]:
        """Every record printed so far that matches ``fields``."""
        return [line.record for line in self.lines("stdout")
                if line.record is not None and matches(line.record, fields)]

    def log(self, last: int | None = None) -> str:
        """What it printed (the ``last`` lines only, if given), each line tagged with its stream."""
        lines = self.lines()
        shown = lines if last is None else lines[-last:]
        cut = [f"[{len(lines) - len(shown)} earlier lines left out]"] if len(shown) < len(lines) else []
        return "\n".join(cut + [f"[{line.stream}] {line.text}" for line in shown])

    def _until(self, found: Callable[[], Any], timeout: float, what: str) -> Any:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                result = found()
                if result is not None:
                    return result
                left = deadline - time.monotonic()
                if left <= 0 or self._closed == {"stdout", "stderr"}:
                    ended = f"none within {timeout:g} s" if left <= 0 else "the process's output ended"
                    raise AssertionError(f"{what}: {ended}\n{self.log(last=REPORT_LINES)}")
                self._changed.wait(left)

    def wait_for_line(self, pattern: str, *, stream: str = "stdout", timeout: float = 30) -> int:
        """Wait for a text line of ``stream`` matching ``pattern``; returns its index in ``lines(stream)``."""
        return self._until(lambda: self._find_line(lambda text: re.search(pattern, text) is not None, stream),
                           timeout, f"no {stream} line matching {pattern!r}")

    def _find_line(self, wanted: Callable[[str], bool], stream: str) -> int | None:
        mine = [line for line in self._lines if line.stream == stream]
        return next((i for i, line in enumerate(mine) if wanted(line.text)), None)

    def wait_for(self, timeout: float = 10, **fields: Any) -> dict[str, Any]:
        """The first record matching ``fields`` not returned by an earlier call, waiting up to ``timeout``."""
        def found() -> dict[str, Any] | None:
            for line in self._lines:
                if line.record is not None and not line.waited_for and matches(line.record, fields):
                    line.waited_for = True
                    return line.record
            return None

        return self._until(found, timeout, f"no record with {fields}")

    def ensure_not_logged(self, delay: float = 0.5, **fields: Any) -> None:
        """Fail if a record matching ``fields`` was printed, or is within the next ``delay`` seconds."""
        deadline = time.monotonic() + delay
        with self._changed:
            while True:
                found = [line.record for line in self._lines
                         if line.record is not None and matches(line.record, fields)]
                assert not found, f"a record with {fields} was printed: {found[0]}"
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                self._changed.wait(left)


# -- the fixture and the report ---------------------------------------------------------

SERVE_PROCESSES = pytest.StashKey[list[ServeProcess]]()


@pytest.fixture
def serve_process(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[..., ServeProcess]]:
    """A factory: ``serve_process("--trust-proxy")`` starts ``serve --json`` and returns it, started.

    Keyword arguments go to :class:`ServeProcess`. Every process is stopped
    after the test; a failing test's report carries each one's output.
    """
    started = request.node.stash.setdefault(SERVE_PROCESSES, [])

    def start(*args: str, **options: Any) -> ServeProcess:
        process = ServeProcess(tmp_path / f"home-{len(started)}", tuple(args), **options)
        started.append(process)
        return process.start()

    yield start
    for process in started:
        process.kill()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, pytest.TestReport,
                                                                                          pytest.TestReport]:
    """Attach the output of the test's ``serve`` processes to its report when it failed."""
    report = yield
    if report.failed:
        processes: list[ServeProcess] = item.stash.get(SERVE_PROCESSES, [])
        for number, process in enumerate(processes, 1):
            report.sections.append((f"serve process {number} output ({' '.join(process.command()[1:])})",
                                    process.log(last=REPORT_LINES) or "(nothing printed)"))
    return report
