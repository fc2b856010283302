"""The Node preload's egress report: the other hosts a routed Node program looked up, connected to or requested.

``route-refine.cjs`` appends one JSON line per name lookup (``LOOKUP``), TCP connection
(``CONNECT``) and http(s)/fetch request (``REQUEST``) to the file named by
``TELEMETRY_INSPECTOR_EGRESS_FILE`` (``run``'s private folder, 0600); child processes append
too. telemetry.refine.dev and loopback are left out there and again here. The file is
untrusted: it is read up to a cap, each line checked strictly, and a line that is not one
the preload writes becomes a note (never a crash). What is left becomes
:class:`~mockserver.records.egress.OtherRequest` with source ``node``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mockserver.core.config import REFINE_HOST
from mockserver.core.jsontext import loads_strict
from mockserver.core.text import plural
from mockserver.records.egress import OtherRequest, leaves_machine
from mockserver.storage.files import create_private_file

ENV_EGRESS_FILE = "TELEMETRY_INSPECTOR_EGRESS_FILE"
REPORT_CAP = 1024 * 1024  # the preload's MAX_BYTES: it writes no more once the file is this long
READ_LIMIT = REPORT_CAP + 256 * 1024  # the cap, plus what processes writing at once may add past it
MAX_TEXT = 2048  # the preload cuts hosts, URLs and errors to this
MAX_NOTES = 5  # bad lines described one by one; the rest are counted

_COMMON = {"kind", "at", "unfinished", "error"}
_KEYS = {
    "LOOKUP": _COMMON | {"host", "addresses"},
    "CONNECT": _COMMON | {"host", "port", "address"},
    "REQUEST": _COMMON | {"host", "method", "url", "status"},
    "CAPPED": {"kind", "at"},
}
_TEXT = re.compile(r"[^\s\x00-\x1f\x7f]+")  # one word: no space or control character
_ADDRESS = re.compile(r"[0-9A-Fa-f:.]{2,45}(%[\w.-]{1,32})?")
_METHOD = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,32}")
_AT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z")


class ReportLineError(ValueError):
    """A line that is not one the preload writes; the message says why, in a few words."""


@dataclass
class EgressReport:
    """What a report held: the other requests, oldest first, and notes on what could not be read."""

    requests: list[OtherRequest] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def create_report(path: Path) -> Path:
    """The empty report file (0600), ready for the preload to append to."""
    create_private_file(path)
    return path


def read_report(path: Path) -> EgressReport:
    """The report at ``path``, read up to :data:`READ_LIMIT` bytes; a missing or unreadable one is a note."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(READ_LIMIT + 1)
    except OSError as exc:
        return EgressReport(notes=[f"cannot read the egress report {path}: {exc.strerror or exc}"])
    report = parse_report(data[:READ_LIMIT])
    if len(data) > READ_LIMIT:
        report.notes.append(f"the egress report is over {READ_LIMIT // 1024} KiB: what came after is not listed")
    return report


def parse_report(data: bytes) -> EgressReport:
    """Every line of a report, checked (a bad one is a note), into other requests."""
    report = EgressReport()
    bad: list[str] = []
    capped = False
    lines = data.split(b"\n")
    for number, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        if number == len(lines):  # no newline after it: cut short as it was written
            bad.append(f"line {number}: cut short (no end of line)")
            continue
        try:
            entry = parse_line(raw)
        except ReportLineError as exc:
            bad.append(f"line {number}: {exc}")
            continue
        if isinstance(entry, OtherRequest):
            report.requests.append(entry)
        elif entry == "CAPPED":
            capped = True
    report.notes += [f"egress report {why}; skipped" for why in bad[:MAX_NOTES]]
    if len(bad) > MAX_NOTES:
        report.notes.append(f"egress report: {plural(len(bad) - MAX_NOTES, 'more bad line')} skipped")
    if capped:
        report.notes.append(f"the egress report reached its cap ({REPORT_CAP // 1024} KiB): later lookups, "
                            "connections and requests are not listed")
    return report


def parse_line(raw: bytes) -> OtherRequest | str | None:
    """One report line: an OtherRequest, ``"CAPPED"``, or None when it is not egress (loopback, the
    inspector's host). Raises :class:`ReportLineError` when it is not a line the preload writes."""
    if len(raw) > 4 * MAX_TEXT + 1024:
        raise ReportLineError(f"over {4 * MAX_TEXT + 1024} bytes")
    try:
        value, out_of_range = loads_strict(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ReportLineError("not UTF-8") from None
    except ValueError as exc:
        raise ReportLineError(f"not JSON ({str(exc).splitlines()[0][:80]})") from None
    if not isinstance(value, dict):
        raise ReportLineError("not a JSON object")
    if out_of_range:
        raise ReportLineError(f"a number out of range at {out_of_range[0].path}")
    kind = value.get("kind")
    if kind not in _KEYS:
        raise ReportLineError(f"unknown kind {str(kind)[:40]!r}")
    unknown = sorted(set(value) - _KEYS[kind])
    if unknown:
        raise ReportLineError(f"unknown key {unknown[0][:40]!r}")
    if kind == "CAPPED":
        _at(value)
        return "CAPPED"
    return _other_request(kind, value)


def _other_request(kind: str, value: dict[str, Any]) -> OtherRequest | None:
    host = _word(value, "host", required=True)
    assert host is not None
    error = _text(value, "error")
    at = _at(value)
    unfinished = value.get("unfinished", False)
    if not isinstance(unfinished, bool):
        raise ReportLineError("unfinished is not true or false")
    if host.lower().rstrip(".") == REFINE_HOST or not leaves_machine(host):
        return None
    if kind == "LOOKUP":
        addresses = _addresses(value)
        if not error and addresses and not any(leaves_machine(a) for a in addresses):
            return None  # a name for this machine
        answer = None if unfinished or error else ", ".join(addresses) or "resolved"
        return OtherRequest("LOOKUP", host, host, "node", failure=error, at=at, answer=answer)
    if kind == "CONNECT":
        port = _whole(value, "port", 1, 65535, required=True)
        address = _word(value, "address")
        if address is not None and not _ADDRESS.fullmatch(address):
            raise ReportLineError("address is not an IP address")
        if address is not None and not leaves_machine(address):
            return None
        shown = f"[{host}]" if ":" in host else host
        answer = None if unfinished or error else f"connected to {address}" if address and address != host \
            else "connected"
        return OtherRequest("CONNECT", f"{shown}:{port}", host, "node", failure=error, at=at, answer=answer)
    method = _word(value, "method", required=True)
    assert method is not None
    if not _METHOD.fullmatch(method):
        raise ReportLineError("method is not an HTTP method")
    url = _word(value, "url", required=True)
    assert url is not None
    if not url.lower().startswith(("http://", "https://")):
        raise ReportLineError("url is not an http(s) URL")
    status = _whole(value, "status", 100, 999)
    return OtherRequest(method, url, host, "node", status=status, failure=error, at=at)


def _text(value: dict[str, Any], key: str) -> str | None:
    text = value.get(key)
    if text is None:
        return None
    if not isinstance(text, str) or not text or len(text) > MAX_TEXT:
        raise ReportLineError(f"{key} is not a short text")
    return text


def _word(value: dict[str, Any], key: str, *, required: bool = False) -> str | None:
    text = _text(value, key)
    if text is None:
        if required:
            raise ReportLineError(f"no {key}")
        return None
    if not _TEXT.fullmatch(text):
        raise ReportLineError(f"{key} has a space or a control character")
    return text


def _whole(value: dict[str, Any], key: str, low: int, high: int, *, required: bool = False) -> int | None:
    number = value.get(key)
    if number is None and not required:
        return None
    if type(number) is not int or not low <= number <= high:
        raise ReportLineError(f"{key} is not a whole number from {low} to {high}")
    return number


def _addresses(value: dict[str, Any]) -> list[str]:
    addresses = value.get("addresses", [])
    if not isinstance(addresses, list) or len(addresses) > 4 or \
            not all(isinstance(a, str) and _ADDRESS.fullmatch(a) for a in addresses):
        raise ReportLineError("addresses is not a list of IP addresses")
    return addresses


def _at(value: dict[str, Any]) -> str | None:
    at = value.get("at")
    if at is not None and not (isinstance(at, str) and _AT.fullmatch(at)):
        raise ReportLineError("at is not an ISO time in UTC")
    return at
