"""HAR 1.2 both ways: records as HAR entries (export), and DevTools HAR files as records (import).

Import: a HAR saved from a browser's DevTools (Chrome, Edge, Firefox) holds
every request the page made. Each one to telemetry.refine.dev is turned
back into a :class:`RawRequest` (method, raw query from ``request.url``,
headers, ``postData.text``) and goes through the same :class:`Recorder`
as a live request, with the entry's own time, so it is decoded exactly as
if it had been received. Everything else in the file is skipped and
counted. ``telemetry-inspector import FILE.har`` and the window's
drag-and-drop both call :func:`import_har`.

Export: :func:`har_entry` writes one record as a HAR 1.2 entry; the
response is what the mock answered (see :func:`mock_response`).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from . import __version__
from .app import GIF
from .beacon import Beacon
from .capture import MAX_BODY, MAX_QUERY, RawRequest, utc_now
from .collected import raw_url, request_target
from .config import DISPLAY_NAME, REFINE_HOST
from .jsontext import dumps_strict
from .progress import ProgressCallback, report
from .recorder import Recorder
from .store import BeaconStore

HAR_VERSION = "1.2"
INSPECTOR_FIELD = "_inspector"  # our custom entry field (HAR allows "_"-prefixed ones)

_CORS = [("Access-Control-Allow-Origin", "*")]
_NO_STORE = [("Cache-Control", "no-store")]
_STATUS_TEXT = {200: "OK", 204: "No Content", 400: "Bad Request", 404: "Not Found", 413: "Content Too Large",
                414: "URI Too Long"}


# -- export ----------------------------------------------------------------------

@dataclass(frozen=True)
class MockAnswer:
    """What the mock answered a recorded request (rebuilt from the record)."""

    status: int
    mime_type: str
    headers: list[tuple[str, str]]
    body: bytes | None  # None: the body is not known (the projectId the mock made up is not recorded)
    comment: str = ""


def _json_answer(data: dict[str, Any]) -> bytes:
    return dumps_strict(data).encode("utf-8")


def mock_response(beacon: Beacon) -> MockAnswer:
    """The answer the mock gave this request, following its rules (README "Endpoints")."""
    problems = beacon.problems
    first = problems[0] if problems else ""
    if first.startswith(("query:", "body:")) and "cap;" in first:
        status = 414 if first.startswith("query:") else 413
        return MockAnswer(status, "text/plain", [*_CORS, ("Connection", "close")], (first + "\n").encode("utf-8"))
    if beacon.kind == "unknown":
        if beacon.request.method == "OPTIONS":
            return MockAnswer(204, "text/html", [*_CORS, ("Access-Control-Allow-Methods", "GET, POST"),
                                        ("Access-Control-Allow-Headers", "*")], b"")
        return MockAnswer(404, "text/plain", list(_CORS), ("\n".join(problems) + "\n").encode("utf-8"))
    if beacon.status != "ok":
        return MockAnswer(400, "text/plain", [*_CORS, *_NO_STORE], ("\n".join(problems) + "\n").encode("utf-8"))
    if beacon.kind == "beacon":
        return MockAnswer(200, "image/gif", [*_CORS, *_NO_STORE], GIF)
    if beacon.kind == "project":
        return MockAnswer(200, "application/json", [*_NO_STORE, *_CORS], None,
                          'the mock answered {"projectId": "<a new uuid>"}; that uuid was not recorded')
    if beacon.kind == "location":
        return MockAnswer(200, "application/json", [*_NO_STORE, *_CORS], _json_answer({"country": "XX"}),
                          "the country the mock was configured with (XX unless changed)")
    return MockAnswer(200, "application/json", [*_NO_STORE, *_CORS], _json_answer({"ok": True}))


def _pairs(text: str, separator: str) -> list[dict[str, str]]:
    pairs = []
    for part in text.split(separator):
        part = part.strip() if separator == ";" else part
        if not part:
            continue
        name, _, value = part.partition("=")
        pairs.append({"name": name, "value": value})
    return pairs


def _header_value(headers: dict[str, str], name: str) -> str | None:
    lowered = name.lower()
    return next((v for k, v in headers.items() if k.lower() == lowered), None)


def har_entry(beacon: Beacon) -> dict[str, Any]:
    """One record as a HAR 1.2 entry.

    ``request.url`` keeps the raw query exactly as it arrived (as DevTools
    does); ``queryString`` splits it without decoding, like Chrome. The
    response is rebuilt with :func:`mock_response`. Timings are not measured
    by the mock, so they are 0.
    """
    request = beacon.request
    header_list = [{"name": k, "value": v} for k, v in request.headers.items()]
    head = f"{request.method} {request_target(beacon)} HTTP/1.1\r\n" + "".join(
        f"{k}: {v}\r\n" for k, v in request.headers.items()) + "\r\n"
    har_request: dict[str, Any] = {
        "method": request.method,
        "url": raw_url(beacon),
        "httpVersion": "HTTP/1.1",
        "cookies": _pairs(_header_value(request.headers, "Cookie") or "", ";"),
        "headers": header_list,
        "queryString": _pairs(request.query, "&"),
        "headersSize": len(head.encode("utf-8", "surrogatepass")),
        "bodySize": request.body_size,
    }
    if request.body is not None:
        post: dict[str, Any] = {"mimeType": _header_value(request.headers, "Content-Type") or "", "text": request.body}
        if request.body_size > len(request.body.encode("utf-8", "surrogatepass")):
            post["comment"] = f"cut to {MAX_BODY // 1024} KiB; {request.body_size} bytes were sent"
        har_request["postData"] = post

    answer = mock_response(beacon)
    content: dict[str, Any] = {"size": len(answer.body) if answer.body is not None else 0,
                               "mimeType": answer.mime_type}
    if answer.body:
        if answer.mime_type.startswith("image/"):
            content.update(text=base64.b64encode(answer.body).decode("ascii"), encoding="base64")
        else:
            content["text"] = answer.body.decode("utf-8")
    if answer.comment:
        content["comment"] = answer.comment
    response_headers = list(answer.headers)
    if answer.mime_type:
        charset = "; charset=utf-8" if answer.mime_type.startswith("text/") else ""  # as werkzeug labels it
        response_headers.insert(0, ("Content-Type", answer.mime_type + charset))
    if answer.body is not None:
        response_headers.append(("Content-Length", str(len(answer.body))))
    return {
        "startedDateTime": beacon.received_at,
        "time": 0,
        "request": har_request,
        "response": {
            "status": answer.status,
            "statusText": _STATUS_TEXT.get(answer.status, ""),
            "httpVersion": "HTTP/1.1",
            "cookies": [],
            "headers": [{"name": k, "value": v} for k, v in response_headers],
            "content": content,
            "redirectURL": "",
            "headersSize": -1,
            "bodySize": len(answer.body) if answer.body is not None else -1,
        },
        "cache": {},
        "timings": {"blocked": -1, "dns": -1, "connect": -1, "send": 0, "wait": 0, "receive": 0, "ssl": -1},
        INSPECTOR_FIELD: {
            "id": beacon.id, "session": beacon.session, "kind": beacon.kind, "status": beacon.status,
            "client_ip": (beacon.client or {}).get("ip"), "problems": beacon.problems, "notes": beacon.notes,
        },
    }


def har_creator() -> dict[str, str]:
    """``log.creator``: this application."""
    return {"name": DISPLAY_NAME, "version": __version__}


def har_log(beacons: Iterable[Beacon]) -> dict[str, Any]:
    """A whole HAR document in memory (the exporter streams the same structure)."""
    return {"log": {"version": HAR_VERSION, "creator": har_creator(), "pages": [],
                    "entries": [har_entry(b) for b in beacons]}}


# -- import ----------------------------------------------------------------------

class HarError(Exception):
    """The file cannot be imported as HAR; the message is one line."""


@dataclass
class ImportResult:
    """What an import did."""

    file: str
    session: int
    entries: int = 0  # entries in the file
    imported: int = 0  # recorded (ok or invalid)
    invalid: int = 0  # of the imported, how many did not decode
    skipped: int = 0  # requests to other hosts
    malformed: int = 0  # entries without a usable request
    ids: list[int] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line for people: ``imported 3 (1 invalid), skipped 12 …``."""
        text = f"imported {self.imported}"
        if self.invalid:
            text += f" ({self.invalid} invalid)"
        text += f" into session {self.session}, skipped {self.skipped} (not {REFINE_HOST})"
        if self.malformed:
            text += f", {self.malformed} malformed"
        return text + f" of {self.entries} entries in {self.file}"


def load_har_entries(path: str | Path) -> list[Any]:
    """``log.entries`` of a HAR file; :class:`HarError` with a clear reason when it is not one."""
    name = str(path)
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except IsADirectoryError:
        raise HarError(f"{name} is a folder, not a HAR file") from None
    except FileNotFoundError:
        raise HarError(f"no such file: {name}") from None
    except OSError as exc:
        raise HarError(f"cannot read {name}: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise HarError(f"{name} is not a HAR file: not UTF-8 text (byte {exc.start})") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise HarError(f"{name} is not a HAR file: not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    except RecursionError:
        raise HarError(f"{name} is not a HAR file: JSON nested too deeply") from None
    log = document.get("log") if isinstance(document, dict) else None
    if not isinstance(log, dict) or "entries" not in log:
        raise HarError(f"{name} is not a HAR file: JSON without log.entries "
                       "(save it from DevTools' Network panel: Export HAR)")
    entries = log["entries"]
    if not isinstance(entries, list):
        raise HarError(f"{name} is not a HAR file: log.entries is not a list")
    return entries


def _header_name(name: str) -> str:
    # As the mock's WSGI layer presents them (HTTP/2 HARs have lower-case names).
    return name.title()


def _headers(items: Any, url_netloc: str) -> dict[str, str]:
    headers: dict[str, str] = {}
    authority = None
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            continue
        name, value = item["name"], str(item.get("value", ""))
        if name.startswith(":"):  # HTTP/2 pseudo-headers in Chrome's HAR
            if name == ":authority":
                authority = value
            continue
        key = _header_name(name)
        if key in headers:
            headers[key] += ("; " if key == "Cookie" else ", ") + value
        else:
            headers[key] = value
    if "Host" not in headers:
        headers = {"Host": authority or url_netloc, **headers}
    return headers


def _started(entry: dict[str, Any]) -> datetime | None:
    text = entry.get("startedDateTime")
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def entry_request(entry: Any) -> RawRequest | str:
    """The request of one HAR entry as it went on the wire, or why it is skipped.

    Returns a reason string for entries that are not refine telemetry
    (``"other host"``) or cannot be read (``"malformed: …"``).
    """
    if not isinstance(entry, dict) or not isinstance(entry.get("request"), dict):
        return "malformed: no request"
    request = entry["request"]
    url, method = request.get("url"), request.get("method")
    if not isinstance(url, str) or not isinstance(method, str) or not method:
        return "malformed: no url or method"
    try:
        parts = urlsplit(url.strip())
        host = (parts.hostname or "").rstrip(".").lower()
    except ValueError:
        return "malformed: unreadable url"
    ours = isinstance(entry.get(INSPECTOR_FIELD), dict)  # exported by this app: any host (e.g. the local mock)
    if host != REFINE_HOST and not ours:
        return "other host"
    # The raw query straight from the URL: DevTools keeps it as sent ('+' stays '+').
    query = parts.query
    if not query and "?" not in url and isinstance(request.get("queryString"), list):
        query = "&".join(f"{q.get('name', '')}={q.get('value', '')}" for q in request["queryString"]
                         if isinstance(q, dict))
    body = b""
    post = request.get("postData")
    if isinstance(post, dict):
        text = post.get("text")
        if isinstance(text, str) and post.get("encoding") == "base64":  # not in HAR 1.2, but some tools write it
            try:
                body = base64.b64decode(text)
            except ValueError:
                return "malformed: postData.text is not base64"
        elif isinstance(text, str):
            body = text.encode("utf-8", "surrogatepass")  # a lone "\ud800" must not stop the import
        elif isinstance(post.get("params"), list):
            body = "&".join(f"{p.get('name', '')}={p.get('value', '')}" for p in post["params"]
                            if isinstance(p, dict)).encode("utf-8")
    peer = entry[INSPECTOR_FIELD].get("client_ip") if ours else None
    return RawRequest(
        method=method.upper(),
        path=parts.path or "/",
        query=query[: MAX_QUERY * 2],  # capture() cuts at the cap and says so; this only bounds memory
        headers=_headers(request.get("headers"), parts.netloc),
        body=body,
        scheme=parts.scheme or "https",
        peer=peer if isinstance(peer, str) else None,
    )


def iter_har_requests(entries: list[Any]) -> Iterator[tuple[int, Any, RawRequest | str]]:
    """(index, entry, request or skip reason) for each entry."""
    for index, entry in enumerate(entries):
        yield index, entry, entry_request(entry)


def import_har(store: BeaconStore, path: str | Path, *, progress: ProgressCallback | None = None,
               session_label: str | None = None, keep_current_session: bool = True,
               trust_proxy: bool = False) -> ImportResult:
    """Import every telemetry.refine.dev request in the HAR file at ``path`` into ``store``.

    The records go into a new session labelled ``import: <file name>``.
    ``progress(done, total)`` is called per entry; returning ``False``
    stops the import with :class:`~mockserver.progress.Cancelled` (what was
    imported stays, committed). With ``keep_current_session`` the store's
    current session (where live requests go) is restored afterwards.
    Raises :class:`HarError` for files that are not HAR, before anything is
    written.
    """
    return import_entries(store, load_har_entries(path), str(path), progress=progress,
                          session_label=session_label, keep_current_session=keep_current_session,
                          trust_proxy=trust_proxy)


def import_entries(store: BeaconStore, entries: list[Any], file: str, *, progress: ProgressCallback | None = None,
                   session_label: str | None = None, keep_current_session: bool = True,
                   trust_proxy: bool = False) -> ImportResult:
    """:func:`import_har` for entries already read with :func:`load_har_entries`."""
    label = session_label or f"import: {Path(file).name}"
    # Kept current, a running server's live requests keep going to their own session.
    session = store.new_session(label, make_current=not keep_current_session)
    result = ImportResult(file=file, session=session, entries=len(entries))
    recorder = Recorder(store, trust_proxy=trust_proxy)  # its own duplicate detector: this file's beacons only
    total = len(entries)
    report(progress, 0, total)
    for index, entry, raw in iter_har_requests(entries):
        if isinstance(raw, str):
            if raw == "other host":
                result.skipped += 1
            else:
                result.malformed += 1
                result.warnings.append(f"entry {index}: {raw}")
        else:
            moment = _started(entry)
            if moment is None:
                moment = utc_now()
                result.warnings.append(f"entry {index}: no readable startedDateTime; recorded with the import time")
            beacon = recorder.record(raw, received_at=moment, session=session)
            result.imported += 1
            result.invalid += beacon.status != "ok"
            if beacon.id is not None:
                result.ids.append(beacon.id)
        report(progress, index + 1, total)
    return result


# -- the command -----------------------------------------------------------------

def add_command(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``import``."""
    from .cli import add_db_option

    parser = subparsers.add_parser(
        "import", help="decode the telemetry.refine.dev requests in a HAR file saved from DevTools",
        description="Read a HAR file (DevTools > Network > Export HAR) and record every request to "
                    f"{REFINE_HOST} in it exactly as if the mock had received it, with its original time, "
                    "into a new session 'import: FILE'. Other requests are skipped and counted.")
    parser.add_argument("file", metavar="FILE.har", help="the HAR file")
    add_db_option(parser)
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
    parser.set_defaults(handler=cmd_import)


def cmd_import(args: argparse.Namespace) -> int:
    """``import``: exit 0 when the file was read (even if it held no refine request), 2 when not HAR."""
    from .cli import UsageError, open_store
    from .progress import StderrProgress

    # Read and check the file before the database is opened: a wrong file changes nothing.
    if os.path.isfile(args.file) and os.path.getsize(args.file) > 20 * 1024 * 1024:
        print(f"reading {args.file} ({os.path.getsize(args.file) // (1024 * 1024)} MiB)…", file=sys.stderr)
    try:
        entries = load_har_entries(args.file)
    except HarError as exc:
        raise UsageError(f"import: {exc}") from None
    store = open_store(args.db)
    progress = StderrProgress("importing", "entries", min_total=500)
    try:
        result = import_entries(store, entries, args.file, progress=progress)
    finally:
        progress.finish()
        store.close()
    for warning in result.warnings[:20]:
        print(f"warning: {warning}", file=sys.stderr)
    if len(result.warnings) > 20:
        print(f"warning: … and {len(result.warnings) - 20} more", file=sys.stderr)
    if args.json:
        print(dumps_strict({"file": result.file, "session": result.session, "entries": result.entries,
                          "imported": result.imported, "invalid": result.invalid, "skipped": result.skipped,
                          "malformed": result.malformed, "ids": result.ids, "database": args.db},
                           ensure_ascii=True))
    else:
        print(result.summary())
        if result.imported == 0:
            print(f"no request to {REFINE_HOST} in this file: was the page loaded with DevTools open "
                  "and the Network panel recording?")
    return 0
