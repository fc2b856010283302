"""``serve --workers N``: N processes serving one journal, started and stopped by the parent.

The parent (:class:`WorkerPool`, in ``serve``'s process) does everything that must happen once
before the workers run: it has opened the journal (schema, WAL, the session row: workers that
opened a new file at once raced SQLite's setup, "database is locked"), made the certificate and
the journal token, and it binds the HTTP and HTTPS listening sockets itself. Then it starts N
:mod:`mockserver.serving.worker` processes that inherit those sockets (``pass_fds``): the kernel
hands each new connection to whichever worker accepts it first. There is no scoped proxy
(``serve`` refuses ``--workers`` with ``--proxy-port``): a record learns that the proxy brought
it from the proxy's table of its own connections, which lives in the proxy's process.

A worker's stdin is a pipe from the parent, which it reads until it ends: a parent that dies,
even by ``kill -9``, stops its workers (cleanly: answers in flight are finished). Workers run
in their own session, so a terminal's Ctrl-C reaches the parent only, which then stops them in
order. A worker that ends on its own (a crash, the OOM killer) is reported in one line and the
parent stops the others: ``serve`` then exits 2, rather than restart a worker that may crash
again and hide the fault from the CI run that relies on it.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from mockserver.core.config import DEFAULT_HOST, is_loopback, tls_dir
from mockserver.core.text import command_message
from mockserver.serving.access import ensure_token, token_path
from mockserver.serving.server import (
    ListenerSockets,
    Listening,
    ServerError,
    bind_socket,
)
from mockserver.serving.tls import CertificateFiles, ensure_certificate
from mockserver.serving.worker import READY
from mockserver.storage.store import BeaconStore

READY_WITHIN = 60.0  # seconds a worker has to start serving (imports on a busy machine)
STOP_WITHIN = 30.0  # seconds a stopping worker has (its answers in flight get 5) before it is killed


@dataclass
class Worker:
    """One worker process and what its parent knows of it."""

    number: int
    process: subprocess.Popen[bytes]
    ready: threading.Event = field(default_factory=threading.Event)
    ended: threading.Event = field(default_factory=threading.Event)

    def describe_end(self) -> str:
        """``exited with status 3`` or ``was killed by signal 9``."""
        code = self.process.returncode
        return f"was killed by signal {-code}" if code is not None and code < 0 else f"exited with status {code}"


class WorkerPool:
    """The shared listeners and the N worker processes serving them, over ``store``'s journal file."""

    def __init__(self, store: BeaconStore, count: int, *, host: str = DEFAULT_HOST, port: int = 0,
                 https_port: int | None = 0, trust_proxy: bool = False, certificate_dir: Path | None = None,
                 token_dir: Path | None = None) -> None:
        """``store`` is the parent's, open already with the session the workers record into; the other
        arguments mean what they mean for :class:`~mockserver.serving.server.InspectorServer`."""
        if store.memory or store.session is None:
            raise ServerError("--workers needs a journal file, not :memory:")
        self.store, self.count, self.host = store, count, host
        self.port, self.https_port = port, https_port
        self.trust_proxy = trust_proxy
        self.certificate_dir = certificate_dir
        self.journal_token = ensure_token(token_dir) if not is_loopback(host) else None
        self.token_file: Path | None = token_path(token_dir) if self.journal_token else None
        self.certificate: CertificateFiles | None = None
        self.workers: list[Worker] = []
        self.failed: Worker | None = None  # the first worker that ended on its own
        self._stopping = False

    def start(self, since: int, on_failure: Callable[[], None]) -> Listening:
        """Bind, start the workers and wait until each serves.

        ``since`` is the journal's last record id before any worker ran; ``on_failure`` is called (on
        another thread) once if a worker ends on its own. ServerError (one line) if a port cannot be
        used or a worker does not start.
        """
        sockets: list[socket.socket] = []
        try:
            http = bind_socket(self.host, self.port, "http")
            sockets.append(http)
            https = None
            if self.https_port is not None:
                self.certificate = ensure_certificate(self.certificate_dir or tls_dir())
                https = bind_socket(self.host, self.https_port, "https")
                sockets.append(https)
            shared = ListenerSockets(http, https)
            http_port, https_port = http.getsockname()[1], https.getsockname()[1] if https else None
            for number in range(1, self.count + 1):
                self._spawn(number, shared, since, on_failure)
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise
        finally:
            for sock in sockets:  # the workers have their own; the port closes with the last of them
                sock.close()
        return Listening(self.host, http_port, https_port, self.certificate.spki_pin if self.certificate else None)

    def _spawn(self, number: int, sockets: ListenerSockets, since: int, on_failure: Callable[[], None]) -> None:
        fds = [sockets.http.fileno(), *([sockets.https.fileno()] if sockets.https else [])]
        command = [sys.executable, "-m", "mockserver.serving.worker", "--http-fd", str(fds[0]),
                   "--db", self.store.path, "--session", str(self.store.session), "--since", str(since),
                   "--worker", str(number), "--workers", str(self.count), "--host", self.host]
        if sockets.https is not None:
            command += ["--https-fd", str(fds[1])]
        if self.trust_proxy:
            command.append("--trust-proxy")
        # stdin: the pipe the worker reads until it ends (this process gone); stdout: its "ready";
        # stderr: ours, so its one-line errors reach the user as they are.
        process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, pass_fds=fds,
                                   start_new_session=True)
        worker = Worker(number, process)
        self.workers.append(worker)
        threading.Thread(target=self._follow, args=(worker, on_failure), name=f"worker-{number}",
                         daemon=True).start()

    def _follow(self, worker: Worker, on_failure: Callable[[], None]) -> None:
        """Read the worker's stdout until it ends: its "ready", then its end."""
        assert worker.process.stdout is not None
        for line in worker.process.stdout:
            if line.strip() == READY.encode():
                worker.ready.set()
        worker.process.wait()
        worker.ended.set()
        if not self._stopping and self.failed is None and worker.ready.is_set():
            self.failed = worker
            print(command_message("serve", f"worker {worker.number} (pid {worker.process.pid}) "
                                  f"{worker.describe_end()}; stopping the others"), file=sys.stderr, flush=True)
            on_failure()

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + READY_WITHIN
        for worker in self.workers:
            while not worker.ready.wait(0.05):
                if worker.ended.is_set():  # it said why on stderr, itself
                    raise ServerError(f"worker {worker.number} did not start (it {worker.describe_end()})")
                if time.monotonic() > deadline:
                    raise ServerError(f"worker {worker.number} did not start within {READY_WITHIN:g} s")

    @property
    def pids(self) -> list[int]:
        """The workers' process ids, in their order."""
        return [worker.process.pid for worker in self.workers]

    def stop(self) -> None:
        """Stop every worker (each finishes its answers in flight first)."""
        self._stopping = True
        for worker in self.workers:
            if worker.process.poll() is None:
                worker.process.terminate()
        for worker in self.workers:
            try:
                worker.process.wait(STOP_WITHIN)
            except subprocess.TimeoutExpired:
                print(command_message("serve", f"worker {worker.number} did not stop within {STOP_WITHIN:g} s; "
                                      "killed it"), file=sys.stderr, flush=True)
                worker.process.kill()
                worker.process.wait()
            if worker.process.stdin is not None:
                worker.process.stdin.close()
            worker.ended.wait(5)
