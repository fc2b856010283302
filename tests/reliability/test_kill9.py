"""``kill -9`` in the middle of a concurrent burst, then a restart on the same database.

Every request that was answered (2xx, and the 400s of invalid beacons, which are
recorded too) must be in the journal after the restart, exactly once; nothing
may be there that was never sent; the database must pass SQLite's integrity check.
"""

from __future__ import annotations

import collections
import json
import signal
import sqlite3
import threading
import time
import urllib.request

from tests.reliability.support import connection, marker_of, send

CLIENTS = 8
MAX_PER_CLIENT = 3000  # a bound; the kill comes long before
KILL_AFTER_ANSWERS = 1500


def _journal(port: int) -> list[dict]:
    records: list[dict] = []
    since = 0
    while True:
        url = f"http://127.0.0.1:{port}/__inspector/beacons?since={since}&limit=10000"
        with urllib.request.urlopen(url, timeout=30) as resp:
            page = json.loads(resp.read())["beacons"]
        if not page:
            return records
        records += page
        since = page[-1]["id"]


def test_answered_requests_survive_kill_9_during_a_burst(serve_process, tmp_path):
    db = tmp_path / "kill9.sqlite3"
    serve = serve_process("--db", str(db))
    port = serve.port
    answered: dict[str, int] = {}
    sent: set[str] = set()
    lock = threading.Lock()
    enough = threading.Event()
    progress = [0]  # answers so far, all clients

    def client(number: int) -> None:
        conn = connection(port, timeout=10)
        mine_sent, mine_answered = set(), {}
        try:
            for i in range(MAX_PER_CLIENT):
                kind = "invalid" if i % 10 == 3 else "cli" if i % 10 == 7 else "beacon"
                marker = f"k{number}-{i}"
                mine_sent.add(marker)
                try:
                    status = send(conn, kind, marker)
                except OSError:
                    break  # the server is gone
                except Exception:  # noqa: BLE001 - http.client's own errors on a dead connection
                    break
                mine_answered[marker] = status
                if len(mine_answered) % 50 == 0:
                    with lock:
                        progress[0] += 50
                        if progress[0] >= KILL_AFTER_ANSWERS:
                            enough.set()
        finally:
            conn.close()
            with lock:
                sent.update(mine_sent)
                answered.update(mine_answered)

    clients = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    try:
        for c in clients:
            c.start()
        enough.wait(timeout=120)
        time.sleep(0.2)  # well inside the burst
        serve.stop(signal.SIGKILL, timeout=30)
        for c in clients:
            c.join(timeout=60)
    finally:
        serve.kill()
    assert not any(c.is_alive() for c in clients)
    assert len(answered) >= KILL_AFTER_ANSWERS, "the burst was too short to mean anything"
    assert set(answered.values()) <= {200, 400}

    records = _journal(serve_process("--db", str(db)).port)
    markers = collections.Counter(marker_of(r) for r in records)
    doubled = [m for m, n in markers.items() if n > 1]
    assert doubled == []
    missing = [m for m in answered if m not in markers]
    assert missing == [], f"{len(missing)} answered request(s) lost by kill -9, e.g. {missing[:5]}"
    assert set(markers) <= sent, "a record for a request that was never sent"
    # answered 200 <=> stored ok; answered 400 <=> stored invalid
    status_of = {marker_of(r): r["status"] for r in records}
    assert all(status_of[m] == ("ok" if s == 200 else "invalid") for m, s in answered.items())
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("SELECT COUNT(*) FROM sessions").fetchone()[0] == 2  # the killed run + the restart
    finally:
        conn.close()
