"""``serve --workers N``: worker processes sharing the listeners and one journal (real processes, sockets, SQLite).

The kernel gives each new connection to whichever worker accepts it first, so a test that needs
a given worker opens connections until health says that worker answered, and keeps it
(keep-alive: every later request on it goes to the same worker).
"""

from __future__ import annotations

import collections
import http.client
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.reliability.support import HEADERS, beacon_path, connection, marker_of, send

ROOT = Path(__file__).resolve().parents[1]
WORKERS_LINE = re.compile(r"^  Workers   2 processes sharing the ports and the journal \(pids (\d+), (\d+)\)$")


def _workers(serve) -> list[int]:
    """The worker pids the banner names."""
    found = [WORKERS_LINE.match(line) for line in serve.banner.lines]
    [match] = [m for m in found if m]
    return [int(match.group(1)), int(match.group(2))]


def _health(conn: http.client.HTTPConnection) -> dict:
    conn.request("GET", "/__inspector/health")
    response = conn.getresponse()
    assert response.status == 200
    return json.loads(response.read())


def _connection_to(port: int, worker: int, scheme: str = "http") -> http.client.HTTPConnection:
    """A keep-alive connection that worker ``worker`` accepted."""
    for _ in range(500):
        conn = connection(port, scheme)
        if _health(conn)["worker"] == worker:
            return conn
        conn.close()
    raise AssertionError(f"worker {worker} accepted none of 500 connections")


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for its parent to read its status does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def _wait_gone(pids: list[int], timeout: float = 60) -> list[int]:
    """The pids still running after waiting up to ``timeout`` (a hang guard) for them to end."""
    deadline = time.monotonic() + timeout
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return [pid for pid in pids if _alive(pid)]


def _stored(db: Path) -> list[tuple[int, str | None, str]]:
    """(id, marker, scheme) of every stored record, read from the file itself."""
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT id, record FROM beacons ORDER BY id").fetchall()
    finally:
        conn.close()
    return [(i, marker_of(json.loads(text)), json.loads(text)["request"]["scheme"]) for i, text in rows]


@pytest.fixture
def workers(serve_process, tmp_path):
    """``serve --json --workers 2`` on a journal file, HTTP and HTTPS on free ports; (process, db)."""
    db = tmp_path / "journal.sqlite3"
    return serve_process("--workers", "2", "--db", str(db), https=True), db


def test_beacons_from_many_connections_are_stored_and_printed_once(workers):
    serve, db = workers
    https_port = serve.banner.https_port
    markers = [f"m{i}" for i in range(160)]

    def one(marker: str) -> int:  # a new connection each: the kernel spreads them over the workers
        secure = int(marker[1:]) % 2 == 1
        conn = connection(https_port if secure else serve.port, "https" if secure else "http")
        try:
            return send(conn, "beacon", marker)
        finally:
            conn.close()

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(one, markers))
    assert statuses == [200] * 160
    for number in (1, 2):  # both serve: each accepts connections (which one is the kernel's choice)
        assert _health(_connection_to(serve.port, number))["worker"] == number
    for _ in markers:
        serve.wait_for(kind="beacon", status="ok", timeout=30)
    assert serve.stop() == 0
    printed = serve.records()
    assert sorted(r["id"] for r in printed) == list(range(1, 161))  # each once, no gaps
    assert sorted(marker_of(r) for r in printed) == sorted(markers)
    stored = _stored(db)
    assert [i for i, _, _ in stored] == list(range(1, 161))
    assert sorted(m for _, m, _ in stored) == sorted(markers)
    assert collections.Counter(s for _, _, s in stored) == {"http": 80, "https": 80}
    assert {path.name: oct(path.stat().st_mode & 0o777) for path in db.parent.glob("journal.sqlite3*")} == {
        "journal.sqlite3": "0o600"}  # private; the WAL was merged back when the last writer closed
    assert serve.texts("stderr")[-1] == "stopped: 160 requests captured in session 1"


def test_health_says_which_worker_of_how_many_answered(workers):
    serve, _ = workers
    for number in (1, 2):
        health = _health(_connection_to(serve.port, number))
        assert (health["worker"], health["workers"], health["session"]) == (number, 2, 1)
        assert health["http_url"] == serve.http_url
        assert health["https_port"] == serve.banner.https_port


def test_a_long_poll_and_an_event_stream_on_one_worker_hear_a_record_from_the_other(workers):
    serve, _ = workers
    waiting, stream = _connection_to(serve.port, 1), _connection_to(serve.port, 1)
    sender = _connection_to(serve.port, 2)
    stream.request("GET", "/__inspector/events?since=0")
    events = stream.getresponse()
    assert (events.status, events.readline()) == (200, b"retry: 2000\n")
    events.readline()
    answer: dict = {}

    def long_poll() -> None:
        waiting.request("GET", "/__inspector/wait?count=1&timeout=60")
        response = waiting.getresponse()
        answer.update(status=response.status, body=json.loads(response.read()))

    poll = threading.Thread(target=long_poll)
    poll.start()
    assert send(sender, "beacon", "from-worker-2") == 200
    poll.join(timeout=90)
    assert answer == {"status": 200, "body": {"reached": True, "count": 1, "wanted": 1}}
    # The stream on worker 1 re-reads the journal only when told of a change: told by its watcher.
    assert [events.readline() for _ in range(3)][:2] == [b"id: 1\n", b"event: beacon\n"]
    stream.close()


def test_a_duplicate_is_noted_and_a_preflight_linked_across_workers(workers):
    serve, _ = workers
    first, second = _connection_to(serve.port, 1), _connection_to(serve.port, 2)
    path = beacon_path("twice")
    for conn in (first, second):
        conn.request("GET", path, headers=HEADERS)
        assert conn.getresponse().read() is not None
    one, two = serve.wait_for(kind="beacon"), serve.wait_for(kind="beacon")
    assert [n for n in one["notes"] if n.startswith("duplicate")] == []
    assert [n.split(",")[0] for n in two["notes"] if n.startswith("duplicate")] == [
        f"duplicate: the same payload from the same client as #{one['id']}"]
    from tests.test_preflight import JWE, PREFLIGHT, SEND
    first.request("OPTIONS", "/send", headers=PREFLIGHT)
    assert first.getresponse().status == 204
    preflight = serve.wait_for(kind="preflight")
    second.request("POST", "/send", body=JWE.encode(), headers=SEND)
    assert second.getresponse().status == 200
    assert serve.wait_for(kind="encrypted")["preflight"] == preflight["id"]


def test_sigterm_stops_every_worker_and_keeps_every_answered_request(workers):
    serve, db = workers
    pids = _workers(serve)
    answered: set[str] = set()
    lock = threading.Lock()
    started = threading.Barrier(5)

    def client(number: int) -> None:
        conn = connection(serve.port, timeout=30)
        started.wait(timeout=60)
        try:
            for i in range(2000):
                if send(conn, "beacon", f"c{number}-{i}") == 200:
                    with lock:
                        answered.add(f"c{number}-{i}")
        except (OSError, http.client.HTTPException):
            pass  # the server went away: what was answered before counts
        finally:
            conn.close()

    clients = [threading.Thread(target=client, args=(n,)) for n in range(4)]
    for c in clients:
        c.start()
    started.wait(timeout=60)
    serve.wait_for(kind="beacon", timeout=60)
    assert serve.stop(signal.SIGTERM, timeout=60) == 0
    for c in clients:
        c.join(timeout=60)
    assert _wait_gone(pids) == []
    stored = {m for _, m, _ in _stored(db)}
    assert answered and answered <= stored
    assert sorted(marker_of(r) for r in serve.records()) == sorted(stored)  # the parent printed each once
    assert serve.texts("stderr")[-1] == f"stopped: {len(stored)} requests captured in session 1"


def test_kill_9_of_the_parent_stops_its_workers(workers):
    serve, db = workers
    pids = _workers(serve)
    conn = connection(serve.port)
    assert send(conn, "beacon", "before") == 200
    serve.stop(signal.SIGKILL)
    assert _wait_gone(pids) == []
    assert [m for _, m, _ in _stored(db)] == ["before"]


def test_a_worker_that_dies_is_reported_and_serve_exits_2(workers):
    serve, _ = workers
    pids = _workers(serve)
    os.kill(pids[1], signal.SIGKILL)
    serve.wait_for_line(rf"^telemetry-inspector serve: worker 2 \(pid {pids[1]}\) was killed by signal 9; "
                        "stopping the others$", stream="stderr", timeout=60)
    serve.proc.wait(timeout=60)
    assert serve.stop() == 2
    assert _wait_gone(pids) == []
    assert serve.texts("stderr")[-1] == "stopped: 0 requests captured in session 1"


@pytest.mark.parametrize(("args", "message"), [
    (["--workers", "0"], "telemetry-inspector serve: argument --workers: workers must be 1-64, got 0 "
                         "(see telemetry-inspector serve --help)"),
    (["--workers", "abc"], "telemetry-inspector serve: argument --workers: workers is a whole number, got 'abc' "
                           "(see telemetry-inspector serve --help)"),
    (["--workers", "65"], "telemetry-inspector serve: argument --workers: workers must be 1-64, got 65 "
                          "(see telemetry-inspector serve --help)"),
    (["--workers", "2", "--db", ":memory:"],
     "telemetry-inspector serve: --workers 2 needs a --db file, not :memory: (see telemetry-inspector serve --help)"),
    (["--workers", "3", "--db", "j.sqlite3", "--proxy-port", "0"],
     "telemetry-inspector serve: --workers 3 and --proxy-port cannot go together: the proxy needs the "
     "single-process serve (see telemetry-inspector serve --help)"),
])
def test_bad_workers_arguments_are_one_line_and_exit_2(args, message, tmp_path):
    args = [str(tmp_path / a) if a.endswith(".sqlite3") else a for a in args]
    done = subprocess.run([sys.executable, "-m", "mockserver", "serve", "--port", "0", "--no-https", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "TELEMETRY_INSPECTOR_HOME": str(tmp_path)})
    assert (done.returncode, done.stdout, done.stderr) == (2, "", message + "\n")
    assert list(tmp_path.iterdir()) == []  # refused before anything was made


def test_a_port_in_use_is_one_line_and_no_worker_starts(serve_process, tmp_path):
    taken = serve_process()
    done = subprocess.run([sys.executable, "-m", "mockserver", "serve", "--workers", "2", "--port", str(taken.port),
                           "--no-https", "--db", str(tmp_path / "j.sqlite3")], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, env={**os.environ, "TELEMETRY_INSPECTOR_HOME": str(tmp_path)})
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (f"telemetry-inspector serve: HTTP port {taken.port} on 127.0.0.1 is already in use "
                           "(pick another with --port, or 0 for a free one)\n")
