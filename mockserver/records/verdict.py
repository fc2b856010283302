"""The opt-out verdict: did an app send what was expected (often: nothing)?

Shared by ``verify`` (a browser), ``run`` (a Node program), the pytest plugin
and the GUI's "Opt-out check" mode (:class:`OptOutWatch`). Qt-free and I/O-free
except for :func:`write_junit`.
"""

from __future__ import annotations

import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mockserver.core.beacon import Beacon
from mockserver.core.jsontext import dumps_strict, loads_strict
from mockserver.core.text import plural
from mockserver.records.advice import advice_for_all
from mockserver.records.egress import OtherRequest, egress_failure, egress_lines
from mockserver.storage.store import BeaconStore, StoreEvent

_MISSING = object()


class ExpectationError(ValueError):
    """A bad ``--expect`` or ``--field``; message is one line."""


@dataclass(frozen=True)
class Expectation:
    """How many requests should arrive: ``none``, ``any`` (one or more) or exactly ``count``."""

    mode: str  # "none" | "any" | "exactly"
    count: int | None = None

    @classmethod
    def parse(cls, text: str) -> Expectation:
        """``none``, ``any`` or a whole number (``0`` means none)."""
        value = text.strip().lower()
        if value in ("none", "any"):
            return cls(value)
        if value.isdigit():
            number = int(value)
            return cls("none") if number == 0 else cls("exactly", number)
        raise ExpectationError(f"--expect must be none, any or a number of requests; got {text!r}")

    def met_by(self, count: int) -> bool:
        """Whether ``count`` captured requests satisfy this expectation."""
        if self.mode == "none":
            return count == 0
        if self.mode == "any":
            return count >= 1
        return count == self.count

    def describe(self) -> str:
        """Human words: "no request", "at least one request", "exactly 2 requests"."""
        if self.mode == "none":
            return "no request"
        if self.mode == "any":
            return "at least one request"
        return f"exactly {plural(self.count or 0, 'request')}"

    def __str__(self) -> str:
        return str(self.count) if self.mode == "exactly" else self.mode


@dataclass(frozen=True)
class FieldCheck:
    """``PATH=VALUE``: the payload's dotted PATH must equal VALUE (JSON when it parses, else text)."""

    path: str
    value: Any
    text: str  # as the user wrote it, for messages

    @classmethod
    def parse(cls, text: str) -> FieldCheck:
        """Parse ``providers.auth=false``, ``version=4.58.0``, ``projectId="123"``."""
        path, sep, raw = text.partition("=")
        path = path.strip()
        if not sep or not path or any(not part for part in path.split(".")):
            raise ExpectationError(f"--field wants PATH=VALUE (e.g. version=4.58.0 or providers.auth=false); "
                                   f"got {text!r}")
        try:
            value, _ = loads_strict(raw)  # 1e400 stays the text "1e400", as in a decoded payload
        except ValueError:
            value = raw  # not JSON (4.58.0, café, p+/=?, NaN): compare as text
        return cls(path, value, text)

    def actual(self, beacon: Beacon) -> Any:
        """The value at PATH in the beacon's payload (a sentinel when absent)."""
        return beacon.payload_get(self.path, _MISSING)

    def problem(self, beacon: Beacon) -> str | None:
        """Why ``beacon`` does not satisfy this check, or None."""
        got = self.actual(beacon)
        if got is _MISSING:
            if beacon.payload is None:
                return f"{self.path}: the request has no decoded payload"
            return f"{self.path}: not in the payload (expected {_show(self.value)})"
        # JSON equality: 1 == 1.0 is fine, True == 1 is not.
        if type(got) is bool or type(self.value) is bool:
            same = type(got) is type(self.value) and got == self.value
        else:
            same = got == self.value
        return None if same else f"{self.path}: expected {_show(self.value)}, got {_show(got)}"


def _show(value: Any) -> str:
    return dumps_strict(value)


@dataclass
class Verdict:
    """The outcome of a check: PASS/FAIL, the count, and the requests that made it fail."""

    passed: bool
    expectation: Expectation
    count: int
    beacons: list[Beacon]
    offending: list[Beacon] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    advice: list[str] = field(default_factory=list)
    fields: list[FieldCheck] = field(default_factory=list)
    preflights: int = 0  # CORS preflights among ``beacons``; ``count`` leaves them out
    other_requests: list[OtherRequest] = field(default_factory=list)  # other hosts contacted meanwhile
    egress: str = "any"  # ``--egress``: ``none`` makes any other host a failure

    @property
    def headline(self) -> str:
        """``PASS`` or ``FAIL`` (what the GUI shows large)."""
        return "PASS" if self.passed else "FAIL"

    @property
    def exit_code(self) -> int:
        """0 for pass, 1 for fail."""
        return 0 if self.passed else 1

    def summary(self) -> str:
        """One line: ``PASS: expected no request, got 0``."""
        got = f"got {self.count}{_with_preflights(self.preflights)}"
        text = f"{self.headline}: expected {self.expectation.describe()}"
        if self.fields:
            text += " with " + ", ".join(check.text for check in self.fields)
        text += f", {got}"
        # The count is already in the sentence; add what the field checks found.
        field_failures = [f for f in self.failures if f.startswith("#")]
        text += f" ({'; '.join(field_failures)})" if field_failures else ""
        broken = egress_failure(self.other_requests, self.egress)
        return text + (f"; {broken}" if broken else "")

    def egress_lines(self, full: bool = False) -> list[str]:
        """The other hosts contacted, as lines for under the verdict (none when there were none)."""
        return egress_lines(self.other_requests, full)

    def to_dict(self, full: bool = False) -> dict[str, Any]:
        """JSON form (``verify --json``); ``full``: other requests' URLs keep their query."""
        return {
            "verdict": self.headline,
            "passed": self.passed,
            "expect": str(self.expectation),
            "fields": [{"path": check.path, "value": check.value} for check in self.fields],
            "count": self.count,
            "preflights": self.preflights,
            "failures": list(self.failures),
            "advice": list(self.advice),
            "offending": [b.id for b in self.offending],
            "beacons": [b.to_dict() for b in self.beacons],
            "egress": self.egress,
            "other_requests": [r.to_dict(full) for r in self.other_requests],
        }


def judge(beacons: Sequence[Beacon], expectation: Expectation, fields: Iterable[FieldCheck] = (), *,
          others: Iterable[OtherRequest] = (), egress: str = "any") -> Verdict:
    """Hold the captured requests against the expectation and the field checks.

    ``others`` (the other hosts contacted meanwhile) leave the telemetry verdict as it is,
    unless ``egress`` is ``none``: then any of them that the app made is a failure.

    Every captured request counts (any kind: the check is "what left for
    telemetry.refine.dev"), except that a CORS preflight is part of the request
    it announces: ``--expect N`` counts the requests that carry data, while
    ``none`` fails on anything that arrived, a lone preflight included. Each
    field check must hold for every request that carries data.
    """
    beacons = list(beacons)
    carrying = [b for b in beacons if b.kind != "preflight"]
    preflights = len(beacons) - len(carrying)
    checks = list(fields)
    failures: list[str] = []
    offending: list[Beacon] = []
    # "none" means nothing reached the host: a lone preflight fails it too.
    count_ok = not beacons if expectation.mode == "none" else expectation.met_by(len(carrying))
    if not count_ok:
        failures.append(f"expected {expectation.describe()}, got {len(carrying)}{_with_preflights(preflights)}")
        if expectation.mode == "none" and not carrying:
            failures.append("a CORS preflight reached telemetry.refine.dev: the app tried to send, and only the "
                            "preflight got through before the request it announces")
        if expectation.mode != "any":
            offending = list(beacons)
    if expectation.mode != "none":
        for beacon in carrying:
            problems = [p for check in checks if (p := check.problem(beacon)) is not None]
            if problems:
                failures.append(f"#{beacon.id}: {'; '.join(problems)}")
                if beacon not in offending:
                    offending.append(beacon)
    others = list(others)
    broken = egress_failure(others, egress)
    if broken:
        failures.append(broken)
    advice = advice_for_all(beacons) if expectation.mode == "none" else []
    return Verdict(passed=not failures, expectation=expectation, count=len(carrying), beacons=beacons,
                   offending=offending, failures=failures, advice=advice, fields=checks, preflights=preflights,
                   other_requests=others, egress=egress)


def _with_preflights(preflights: int) -> str:
    return f" (+ {plural(preflights, 'CORS preflight')})" if preflights else ""


def requests_text(count: int, preflights: int) -> str:
    """``1 request``, or ``1 request (+ 1 CORS preflight)``."""
    return plural(count, "request") + _with_preflights(preflights)


def describe_beacon(beacon: Beacon, indent: str = "    ") -> list[str]:
    """The decoded payload and remarks of one record, as indented lines (terminal-safe)."""
    from mockserver.core.text import printable

    lines: list[str] = []
    how = ", ".join(x for x in (beacon.encoding, beacon.base64_variant and f"{beacon.base64_variant} base64") if x)
    if beacon.payload is not None:
        body = dumps_strict(beacon.payload, indent=2)
        lines.append(f"{indent}payload{f' ({how})' if how else ''}:")
        lines += [f"{indent}  {line}" for line in body.splitlines()]
    elif beacon.raw_payload:
        lines.append(f"{indent}raw: {beacon.raw_payload[:200]}")
    lines += [f"{indent}problem: {p}" for p in beacon.problems]
    lines += [f"{indent}note: {n}" for n in beacon.notes]
    return [printable(line) for line in lines]


# -- the GUI's "Opt-out check" ------------------------------------------------

class OptOutWatch:
    """Watch a store from now on: how many requests arrived, which, and the verdict so far.

    Typical GUI use: ``watch = OptOutWatch(store, on_change=bridge.post)``; ``watch.start()``;
    the user reloads the app; show ``watch.verdict().headline`` large with
    ``watch.count`` and ``watch.verdict().offending``; ``watch.stop()``.
    ``on_change(watch)`` is called on the thread that stored the request:
    hand it to the GUI thread (a queued signal), never touch widgets there.
    """

    def __init__(self, store: BeaconStore, expectation: Expectation | str = "none",
                 fields: Iterable[FieldCheck | str] = (),
                 on_change: Callable[[OptOutWatch], None] | None = None) -> None:
        self.store = store
        self.expectation = Expectation.parse(expectation) if isinstance(expectation, str) else expectation
        self.fields = [FieldCheck.parse(f) if isinstance(f, str) else f for f in fields]
        self.on_change = on_change
        self.since: int | None = None  # the last record id before the watch started
        self.started_at: float | None = None  # time.monotonic()
        self.last_arrival: float | None = None
        self._count = 0
        self._lock = threading.Lock()
        self._unsubscribe: Callable[[], None] | None = None

    @property
    def active(self) -> bool:
        """True between start() and stop()."""
        return self._unsubscribe is not None

    def start(self) -> OptOutWatch:
        """Begin counting: only requests stored after this call count."""
        with self._lock:
            self._unsubscribe = self.store.subscribe(self._on_event)
            self.since = self.store.last_id()
            self.started_at = time.monotonic()
            self.last_arrival = None
            self._count = 0
        return self

    def _on_event(self, event: StoreEvent) -> None:
        if event.type != "appended" or event.beacon is None or self.since is None:
            return
        if (event.beacon.id or 0) <= self.since:
            return
        with self._lock:
            self._count += 1
            self.last_arrival = time.monotonic()
        if self.on_change is not None:
            self.on_change(self)

    @property
    def count(self) -> int:
        """Requests stored since start() (deleted ones included: they were sent)."""
        return self._count

    def elapsed(self) -> float:
        """Seconds since start()."""
        return 0.0 if self.started_at is None else time.monotonic() - self.started_at

    def quiet_for(self) -> float:
        """Seconds since the last request arrived (or since start())."""
        since = self.last_arrival or self.started_at
        return 0.0 if since is None else time.monotonic() - since

    def beacons(self) -> list[Beacon]:
        """The records stored since start(), oldest first (read from the store)."""
        if self.since is None:
            return []
        return self.store.query(since=self.since)

    def verdict(self) -> Verdict:
        """The verdict over what arrived so far."""
        return judge(self.beacons(), self.expectation, self.fields)

    def stop(self) -> Verdict:
        """Stop listening; returns the final verdict."""
        with self._lock:
            unsubscribe, self._unsubscribe = self._unsubscribe, None
        if unsubscribe is not None:
            unsubscribe()
        return self.verdict()


# -- JUnit XML -------------------------------------------------------------------

def write_junit(path: str | Path, *, name: str, verdict: Verdict | None, seconds: float,
                error: str | None = None, output: str = "", suite: str = "telemetry-inspector") -> None:
    """Write a one-test JUnit XML report: a failure for FAIL, an error when the check could not run."""
    failed = verdict is not None and not verdict.passed
    root = ET.Element("testsuites")
    testsuite = ET.SubElement(root, "testsuite", {
        "name": suite, "tests": "1", "failures": "1" if failed else "0", "errors": "1" if error else "0",
        "skipped": "0", "time": f"{seconds:.3f}",
        "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
    })
    case = ET.SubElement(testsuite, "testcase", {"classname": suite, "name": _xml_safe(name),
                                                 "time": f"{seconds:.3f}"})
    if error:
        ET.SubElement(case, "error", {"message": _xml_safe(error), "type": "CouldNotRun"}).text = _xml_safe(error)
    elif failed:
        assert verdict is not None
        message = verdict.summary()
        details = "\n".join([*verdict.failures, *verdict.advice])
        ET.SubElement(case, "failure", {"message": _xml_safe(message), "type": "TelemetryVerdict"}).text = \
            _xml_safe(details)
    listing = "\n".join(verdict.egress_lines()) if verdict is not None else ""
    output = "\n\n".join(part for part in (output, listing) if part)
    if output:
        ET.SubElement(case, "system-out").text = _xml_safe(output)
    ET.indent(root)
    Path(path).write_bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n")


def _xml_safe(text: str) -> str:
    # XML 1.0 cannot carry most control characters, which payloads may hold.
    return "".join(ch if ch in "\t\n\r" or ord(ch) >= 0x20 else f"\\x{ord(ch):02x}" for ch in text)
