"""What the commands that capture print: the start banner and the records as they arrive.

The line for one record is :func:`mockserver.records.lines.format_line` (the pytest plugin
prints it too); this module only puts it on a terminal.
"""

from __future__ import annotations

import queue
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from mockserver import __version__
from mockserver.core.config import DISPLAY_NAME
from mockserver.core.routing import chromium_command_line, hosts_file_line
from mockserver.records.lines import format_line
from mockserver.records.verdict import describe_beacon

if TYPE_CHECKING:
    from mockserver.core.beacon import Beacon
    from mockserver.serving.server import Listening
    from mockserver.serving.tls import CertificateFiles
    from mockserver.storage.store import BeaconStore, StoreEvent


class LinePrinter:
    """Prints records from a queue on its own thread: request threads never wait on the terminal."""

    def __init__(self, out: TextIO, as_json: bool, *, verbose: bool = False) -> None:
        self.out = out
        self.as_json = as_json
        self.verbose = verbose  # each line followed by what the request carried, decoded and indented
        self._queue: queue.SimpleQueue[Beacon | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="line-printer", daemon=True)
        self._thread.start()

    def __call__(self, event: StoreEvent) -> None:
        if event.type == "appended" and event.beacon is not None:
            self._queue.put(event.beacon)

    # Under load, waking this thread and flushing once per record cost more than
    # decoding the record (see the README's Benchmarks): a burst is gathered for
    # a moment and written with one write; a lone request still prints at once
    # to the eye.
    COALESCE = 0.05

    def _run(self) -> None:
        stopping = False
        while not stopping:
            beacons = [self._queue.get()]
            if beacons[0] is not None:
                time.sleep(self.COALESCE)
            while True:
                try:
                    beacons.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            if any(b is None for b in beacons):
                stopping = True
                beacons = beacons[:next(i for i, b in enumerate(beacons) if b is None)]
            lines = [self._text(b) for b in beacons if b is not None]
            try:
                self._write("".join(lines))
            except ValueError:  # one unprintable line must not take the others with it
                for line in lines:
                    try:
                        self._write(line)
                    except (BrokenPipeError, ValueError):
                        pass
            except BrokenPipeError:  # reader went away; capture goes on
                pass

    def _text(self, beacon: Beacon) -> str:
        if self.as_json:
            return beacon.to_json() + "\n"
        if self.verbose:
            return "\n".join([format_line(beacon), *describe_beacon(beacon)]) + "\n"
        return format_line(beacon) + "\n"

    def _write(self, text: str) -> None:
        if text:
            self.out.write(text)
            self.out.flush()

    def close(self) -> None:
        """Print what is queued, then stop."""
        self._queue.put(None)
        self._thread.join(timeout=5)


def banner(listening: Listening, store: BeaconStore, certificate: CertificateFiles | None, *,
           token: str | None = None, token_file: Path | None = None, routing_help: bool = True,
           workers: list[int] | None = None) -> str:
    """The start banner: URLs, pin, routing flags, the journal token when the journal wants one, and the
    worker processes' ids (``serve --workers``).

    Without ``routing_help`` (``browser``, which routes the browser itself) it ends after the listing:
    no "route a real app" flags and no "waiting" line.
    """
    lines = [f"{DISPLAY_NAME} {__version__}: mock of telemetry.refine.dev",
             f"  HTTP      {listening.http_url}/telemetry"]
    if listening.https_url and listening.spki_pin:
        lines += [
            f"  HTTPS     {listening.https_url}/telemetry"
            "  (certificate for telemetry.refine.dev, localhost, 127.0.0.1)",
            f"  SPKI pin  {listening.spki_pin}",
            f"  CA file   {certificate.ca_cert if certificate else None}  (NODE_EXTRA_CA_CERTS, or trust it for "
            "hosts-file routing)",
        ]
    if listening.proxy_url:
        lines += [f"  Proxy     {listening.proxy_url}  (HTTPS_PROXY or curl -x: telemetry.refine.dev recorded, "
                  "other hosts passed through)"]
    lines += [f"  Journal   {listening.http_url}/__inspector/beacons"]
    if token:
        lines += [f"  Token     {token}  (the journal wants 'Authorization: Bearer <token>'; kept in {token_file})"]
    lines += [f"  Database  {store.path}  (session {store.session})"]
    if workers:
        lines += [f"  Workers   {len(workers)} processes sharing the ports and the journal "
                  f"(pids {', '.join(map(str, workers))})"]
    if not routing_help:
        return "\n".join(lines)
    if listening.https_port and listening.spki_pin:
        host = "127.0.0.1" if listening.host in ("0.0.0.0", "::", "") else listening.host
        lines += ["", "Route a real app's beacons here: start Chrome/Chromium/Edge with",
                  "  " + chromium_command_line(listening.https_port, listening.spki_pin, host),
                  f"or add '{hosts_file_line(host)}' to the hosts file (needs HTTPS on port 443 and a trusted CA)."]
    lines += ["", "Waiting for requests; Ctrl-C stops."]
    return "\n".join(lines)
