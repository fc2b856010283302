"""HAR 1.2 out: one record as a HAR entry (:func:`har_entry`), whose response is what the mock
answered (:func:`mock_response`); ``export --format har`` writes a log of them.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from mockserver import __version__
from mockserver.core.beacon import Beacon
from mockserver.core.capture import MAX_BODY
from mockserver.core.config import DISPLAY_NAME
from mockserver.core.jsontext import dumps_strict
from mockserver.core.wire import GIF
from mockserver.records.collected import raw_url, request_target

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
    if beacon.kind in ("unknown", "preflight"):
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
