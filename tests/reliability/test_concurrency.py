"""Concurrent keep-alive clients: every request recorded exactly once, counts exact.

The real server (granian, HTTP and HTTPS listeners) over a file database, as
``serve`` runs it; 8 clients × 500 requests on HTTP and 4 × 150 on HTTPS at
the same time, each request carrying a unique marker.
"""

from __future__ import annotations

import collections
import threading

import pytest

from mockserver.serving.server import InspectorServer
from mockserver.storage.store import BeaconStore
from tests.reliability.support import connection, marker_of, send

HTTP_CLIENTS, HTTP_REQUESTS = 8, 500
HTTPS_CLIENTS, HTTPS_REQUESTS = 4, 150


def kind_for(i: int) -> str:
    return "invalid" if i % 10 == 3 else "cli" if i % 10 == 7 else "beacon"


EXPECTED_STATUS = {"beacon": 200, "invalid": 400, "cli": 200}


@pytest.fixture
def file_server(tmp_path, certificate_dir):
    store = BeaconStore(tmp_path / "concurrency.sqlite3")
    server = InspectorServer(store, port=0, https_port=0, certificate_dir=certificate_dir)
    server.start()
    yield server
    server.stop()
    store.close()


def test_concurrent_clients_every_request_recorded_exactly_once(file_server):
    listening = file_server.listening
    sent: dict[str, str] = {}
    wrong: list[str] = []
    lock = threading.Lock()

    def client(scheme: str, port: int, number: int, requests: int) -> None:
        conn = connection(port, scheme)
        mine, bad = {}, []
        try:
            for i in range(requests):
                kind = kind_for(i)
                marker = f"{scheme}-{number}-{i}"
                status = send(conn, kind, marker)
                mine[marker] = kind
                if status != EXPECTED_STATUS[kind]:
                    bad.append(f"{marker}: {kind} answered {status}")
        except Exception as exc:  # noqa: BLE001 - reported below, with the rest
            bad.append(f"{scheme} client {number} failed: {exc!r}")
        finally:
            conn.close()
        with lock:
            sent.update(mine)
            wrong.extend(bad)

    clients = [threading.Thread(target=client, args=("http", listening.port, n, HTTP_REQUESTS))
               for n in range(HTTP_CLIENTS)]
    clients += [threading.Thread(target=client, args=("https", listening.https_port, n, HTTPS_REQUESTS))
                for n in range(HTTPS_CLIENTS)]
    for c in clients:
        c.start()
    for c in clients:
        c.join(timeout=300)
    assert not any(c.is_alive() for c in clients), "clients did not finish within 5 minutes"
    assert wrong == []

    total = HTTP_CLIENTS * HTTP_REQUESTS + HTTPS_CLIENTS * HTTPS_REQUESTS
    assert len(sent) == total
    records = [b.to_dict() for b in file_server.store.query()]
    assert len(records) == total
    markers = collections.Counter(marker_of(r) for r in records)
    assert markers == collections.Counter(sent.keys()), "some request is missing, doubled or unexpected"
    # ids are the commit order: 1..N without gaps, each once
    assert sorted(r["id"] for r in records) == list(range(1, total + 1))
    for r in records:
        kind = sent[marker_of(r)]
        assert (r["kind"], r["status"]) == {"beacon": ("beacon", "ok"), "invalid": ("beacon", "invalid"),
                                             "cli": ("cli", "ok")}[kind]
        assert r["request"]["scheme"] == marker_of(r).split("-")[0]
    counts = file_server.store.counts()
    assert counts["total"] == total
    assert counts["invalid"] == sum(k == "invalid" for k in sent.values())
