"""What a user can break: ports, database files, a full disk.

At start-up ``serve`` must say what is wrong in one line on stderr and exit 2
(no traceback), leaving a corrupt or foreign database exactly as it was. At run
time a full disk must be answered 503 with a one-line reason, the server must
keep running, and recording must resume once there is room again.

The disk-full start-up case and the read-only case for root need a small tmpfs
(``mount``); where mounting is not possible they are skipped. The run-time
disk-full case uses SQLite's ``max_page_count`` and runs everywhere.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import pytest

from mockserver.core.capture import RawRequest, capture
from mockserver.serving.server import InspectorServer
from mockserver.storage import store as store_module
from mockserver.storage.store import BeaconStore, StoreError
from tests.reliability.support import beacon_path, connection, marker_of, run_serve, send


def assert_one_line_exit_2(result: subprocess.CompletedProcess, *needles: str) -> None:
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert result.stderr.startswith("telemetry-inspector serve: ") and result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in result.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- ports ------------------------------------------------------------------

@pytest.mark.parametrize("which", ["http", "https"])
def test_port_in_use_exits_2_with_one_line(tmp_path, which):
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        taken = blocker.getsockname()[1]
        ports = ["--port", str(taken), "--https-port", "0"] if which == "http" else \
            ["--port", "0", "--https-port", str(taken)]
        result = run_serve(*ports, "--db", str(tmp_path / "j.sqlite3"),
                           env={"TELEMETRY_INSPECTOR_HOME": str(tmp_path / "home")})
    flag = "--port" if which == "http" else "--https-port"
    assert_one_line_exit_2(result, f"{which.upper()} port {taken} on 127.0.0.1 is already in use",
                           f"pick another with {flag}")


# -- database files -----------------------------------------------------------

def _inspector_db(path: Path, records: int = 50) -> Path:
    store = BeaconStore(path)
    for i in range(records):
        store.append(capture(RawRequest("GET", "/telemetry", beacon_path(f"m{i}").split("?", 1)[1],
                                        {"User-Agent": "x" * 300})))
    store.close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("PRAGMA journal_mode = DELETE")  # one self-contained file
    conn.close()
    return path


def _garbage(path: Path) -> None:
    path.write_bytes(b"garbage" * 500)


def _truncated(path: Path) -> None:
    data = _inspector_db(path).read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _damaged_page(path: Path) -> None:
    data = bytearray(_inspector_db(path).read_bytes())
    middle = len(data) // 2 // 4096 * 4096
    data[middle: middle + 4096] = b"\xff" * 4096
    path.write_bytes(bytes(data))


def _foreign(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE notes (text TEXT)")
    conn.execute("INSERT INTO notes VALUES ('mine')")
    conn.commit()
    conn.close()


def _newer(path: Path) -> None:
    _inspector_db(path, 1)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 99")
    conn.close()


@pytest.mark.parametrize(("make", "says"), [
    (_garbage, "is not a usable inspector database"),
    (_truncated, "is not a usable inspector database"),
    (_damaged_page, "is not a usable inspector database (database disk image is malformed"),
    (_foreign, "has tables but none of the inspector's"),
    (_newer, "made by a newer inspector (schema 99)"),
], ids=["garbage", "truncated", "damaged-page", "foreign-sqlite", "newer-schema"])
def test_corrupt_or_foreign_database_exits_2_and_is_left_exactly_as_it_was(tmp_path, make, says):
    folder = tmp_path / "db"
    folder.mkdir()
    db = folder / "journal.sqlite3"
    make(db)
    before, files = db.read_bytes(), sorted(os.listdir(folder))
    result = run_serve("--port", "0", "--no-https", "--db", str(db),
                       env={"TELEMETRY_INSPECTOR_HOME": str(tmp_path / "home")})
    assert_one_line_exit_2(result, str(db), says)
    assert db.read_bytes() == before
    assert sorted(os.listdir(folder)) == files, "no journal or WAL file may be left beside it"


def test_damage_found_after_opening_a_large_database_stops_all_writes(tmp_path, monkeypatch):
    """Over CHECK_AT_OPEN_BYTES the page check runs in the background: once it finds
    damage, appends are refused (a 503 over HTTP) instead of writing into the file."""
    db = tmp_path / "big.sqlite3"
    _damaged_page(db)
    monkeypatch.setattr(store_module, "CHECK_AT_OPEN_BYTES", 0)
    monkeypatch.setattr(store_module, "CHECK_DELAY", 0.0)
    store = BeaconStore(db)
    try:
        deadline = time.monotonic() + 60
        while store.damaged is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert store.damaged and "is damaged" in store.damaged and "\n" not in store.damaged
        size = db.stat().st_size
        with pytest.raises(StoreError, match="nothing more is written"):
            store.append(capture(RawRequest("GET", "/telemetry", "payload=e30=")))
        assert db.stat().st_size == size
    finally:
        store.close()


def test_database_folder_that_is_a_file_exits_2(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    result = run_serve("--port", "0", "--no-https", "--db", str(blocker / "journal.sqlite3"),
                       env={"TELEMETRY_INSPECTOR_HOME": str(tmp_path / "home")})
    assert_one_line_exit_2(result, "cannot create the database folder")


@contextlib.contextmanager
def _tmpfs(where: Path, size: str, *options: str):
    """A small tmpfs at ``where`` (root only); skips the test where mounting is impossible."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("needs root to mount a small tmpfs")
    where.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", ",".join([f"size={size}", *options]), "tmpfs",
                              str(where)], capture_output=True, text=True)
    if mounted.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def test_read_only_database_exits_2_and_is_left_as_it_was(tmp_path):
    folder = tmp_path / "ro"
    if os.geteuid() == 0:  # root ignores file modes: a read-only mount instead
        with _tmpfs(folder, "4m"):
            db = _inspector_db(folder / "journal.sqlite3")
            remount = subprocess.run(["mount", "-o", "remount,ro", str(folder)], capture_output=True, text=True)
            if remount.returncode:
                pytest.skip(f"cannot remount read-only: {remount.stderr.strip()}")
            _check_read_only(tmp_path, db)
    else:
        folder.mkdir()
        db = _inspector_db(folder / "journal.sqlite3")
        db.chmod(0o444)
        folder.chmod(0o555)
        try:
            _check_read_only(tmp_path, db)
        finally:
            folder.chmod(0o755)


def _check_read_only(tmp_path: Path, db: Path) -> None:
    before = db.read_bytes()
    result = run_serve("--port", "0", "--no-https", "--db", str(db),
                       env={"TELEMETRY_INSPECTOR_HOME": str(tmp_path / "home")})
    assert_one_line_exit_2(result, "cannot write the database", str(db))
    assert db.read_bytes() == before


def test_full_disk_at_start_exits_2(tmp_path):
    with _tmpfs(tmp_path / "full", "256k") as folder:
        with contextlib.suppress(OSError):
            (folder / "filler").write_bytes(b"\0" * 1024 * 1024)  # stops where the disk is full
        result = run_serve("--port", "0", "--no-https", "--db", str(folder / "journal.sqlite3"),
                           env={"TELEMETRY_INSPECTOR_HOME": str(tmp_path / "home")})
    assert_one_line_exit_2(result, "is full")


# -- a full disk while running ---------------------------------------------------

def test_full_database_answers_503_with_one_line_and_recovers(tmp_path, certificate_dir):
    """SQLite's max_page_count stands in for a full disk: SQLITE_FULL, as on a full volume."""
    store = BeaconStore(tmp_path / "full.sqlite3")
    server = InspectorServer(store, port=0, https_port=None, certificate_dir=certificate_dir)
    listening = server.start()
    try:
        pages = store._conn.execute("PRAGMA page_count").fetchone()[0]
        store._conn.execute(f"PRAGMA max_page_count = {pages + 8}")
        answers: dict[str, int] = {}
        lock = threading.Lock()

        def client(number: int) -> None:
            conn = connection(listening.port)
            try:
                for i in range(150):
                    marker = f"f{number}-{i}"
                    status = send(conn, "beacon", marker)
                    with lock:
                        answers[marker] = status
            finally:
                conn.close()

        clients = [threading.Thread(target=client, args=(n,)) for n in range(4)]
        for c in clients:
            c.start()
        for c in clients:
            c.join(timeout=120)
        assert set(answers.values()) <= {200, 503}
        assert 503 in answers.values() and 200 in answers.values()

        conn = connection(listening.port)
        for i in range(50):  # a small record may still fit in a page's free space: until one does not
            conn.request("GET", beacon_path(f"one-more-{i}"))
            resp = conn.getresponse()
            body = resp.read()
            answers[f"one-more-{i}"] = resp.status
            if resp.status != 200:
                break
        assert resp.status == 503
        body = body.decode()
        assert resp.getheader("Content-Type") == "application/json"
        reason = json.loads(body)["error"]
        assert reason.startswith("not recorded: the disk holding ") and "is full" in reason and "\n" not in reason
        conn.request("GET", "/__inspector/health")
        health = conn.getresponse()
        assert health.status == 200 and json.loads(health.read())["status"] == "ok"

        # every 200 is stored, nothing answered 503 is
        stored = {marker_of(b.to_dict()) for b in store.query()}
        assert {m for m, s in answers.items() if s == 200} == stored

        store._conn.execute("PRAGMA max_page_count = 1073741823")  # room again
        assert send(conn, "beacon", "after") == 200
        conn.close()
        assert marker_of(store.query()[-1].to_dict()) == "after"
    finally:
        server.stop()
        store.close()


def test_full_disk_under_serve_answers_503_and_keeps_running(serve_process, tmp_path):
    with _tmpfs(tmp_path / "disk", "2m") as folder:
        serve = serve_process("--db", str(folder / "journal.sqlite3"))
        try:
            conn = connection(serve.port)
            assert send(conn, "beacon", "before") == 200
            with contextlib.suppress(OSError):
                (folder / "filler").write_bytes(b"\0" * 4 * 1024 * 1024)
            statuses = [send(conn, "cli", f"full-{i}") for i in range(40)]
            assert 503 in statuses and set(statuses) <= {200, 503}
            assert serve.proc.poll() is None, "the server died on a full disk"
            (folder / "filler").unlink()
            assert send(conn, "beacon", "after") == 200
            conn.close()
        finally:
            serve.stop()
