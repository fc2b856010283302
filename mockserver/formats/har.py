"""HAR 1.2 in: DevTools HAR files as records.

A HAR saved from a browser's DevTools (Chrome, Edge, Firefox) holds
every request the page made. Each one to telemetry.refine.dev is turned
back into a :class:`RawRequest` (method, raw query from ``request.url``,
headers, ``postData.text``) and goes through the same :class:`Recorder`
as a live request, with the entry's own time, so it is decoded exactly as
if it had been received. Everything else in the file is skipped and
counted: the URL's host decides, whatever else an entry says (even this
app's own ``_inspector`` field). ``telemetry-inspector import FILE.har``
and the window's File menu and drag-and-drop all call :func:`import_har`.
"""

from __future__ import annotations

import base64
import codecs
import ipaddress
import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlsplit, urlunsplit

from mockserver.core.capture import MAX_BODY, MAX_QUERY, RawRequest
from mockserver.core.clock import parse_iso, utc_now
from mockserver.core.config import REFINE_HOST
from mockserver.core.text import size_text
from mockserver.core.wire import MAX_HEADER_BYTES, MAX_HEADER_LINES, MAX_TARGET_BYTES, head_size
from mockserver.formats import MAX_HAR_ENTRY_CHARS
from mockserver.formats.har_export import INSPECTOR_FIELD
from mockserver.formats.progress import ProgressCallback, report
from mockserver.storage.recorder import Recorder
from mockserver.storage.store import BeaconStore

# -- import ----------------------------------------------------------------------
#
# The file is read as a stream, one entry at a time, twice: the first pass
# checks the whole file (JSON, HAR structure, the type of every field used)
# and counts the entries, so a bad file is refused before anything is
# written and progress has a total; the second pass records. Memory is
# bounded by the largest entry (MAX_ENTRY_CHARS), not by the file.

MAX_ENTRY_CHARS = MAX_HAR_ENTRY_CHARS  # read from here at run time (the tests lower it)
_CHUNK = 1024 * 1024  # bytes read at a time
_DECODER = json.JSONDecoder()
_WHITESPACE = re.compile(r"[ \t\n\r]*")
# A value that ends this close to the end of what was read may go on in the next chunk ("1." + "5").
_LOOKAHEAD = 3


class HarError(Exception):
    """The file cannot be imported as HAR; the message is one line."""


# What the live server refuses before anything is recorded (core.wire), in the order it checks: the
# reason's key, what the import summary says of the entries refused for it, and the server's answer.
REFUSALS = (
    ("headers", f"more than {MAX_HEADER_LINES} headers", 431),
    ("target", f"a request target over {MAX_TARGET_BYTES:,} bytes", 414),
    ("head", f"request line and headers over {MAX_HEADER_BYTES // 1024} KiB", 431),
)
#: the warning of an entry refused for each reason, and back
REFUSED_WARNINGS = {key: f"refused: {what} (the live server answers {status} and records nothing)"
                    for key, what, status in REFUSALS}
_REFUSAL_OF = {text: key for key, text in REFUSED_WARNINGS.items()}


@dataclass
class ImportResult:
    """What an import did."""

    file: str
    session: int | None = None  # None: nothing was imported, so no session was made
    entries: int = 0  # entries in the file
    imported: int = 0  # recorded (ok or invalid)
    invalid: int = 0  # of the imported, how many did not decode
    skipped: int = 0  # requests to other hosts
    malformed: int = 0  # entries without a usable request (unreadable URL, bad base64 body)
    refused: int = 0  # requests the live server would have refused (REFUSALS): it would have recorded nothing
    # of the refused, how many for each reason (REFUSALS' keys, in its order)
    refused_by: dict[str, int] = field(default_factory=lambda: {key: 0 for key, _, _ in REFUSALS})
    ids: list[int] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line for people: ``imported 3 (1 invalid) into session 5, skipped 12 …``."""
        text = f"imported {self.imported}"
        if self.invalid:
            text += f" ({self.invalid} invalid)"
        if self.session is not None:
            text += f" into session {self.session}"
        text += f", skipped {self.skipped} (not {REFINE_HOST})"
        if self.malformed:
            text += f", {self.malformed} malformed"
        if self.refused:
            reasons = ", ".join(f"{self.refused_by[key]} with {what}" for key, what, _ in REFUSALS
                                if self.refused_by[key])
            text += f", refused {self.refused} as the live server would ({reasons})"
        return text + f" of {self.entries} entries in {self.file}"


class _JsonStream:
    """Just enough of an incremental JSON reader to walk ``{"log": {"entries": [...]}}``.

    Each value is parsed by the standard library's decoder once it is wholly
    in the buffer; the buffer only ever holds the value being read.
    """

    def __init__(self, handle: BinaryIO, name: str) -> None:
        self.handle = handle
        self.name = name
        self.decoder = codecs.getincrementaldecoder("utf-8-sig")()
        self.buf = ""
        self.pos = 0
        self.eof = False
        self.bytes_read = 0
        self.lines = 0  # newlines before buf[0], for error positions
        self.column_base = 0  # characters between the last of those newlines and buf[0]

    def _more(self, at_least: int = 0) -> None:
        data = self.handle.read(max(_CHUNK, at_least))
        try:
            text = self.decoder.decode(data, final=not data)
        except UnicodeDecodeError as exc:
            raise HarError(f"{self.name} is not a HAR file: not UTF-8 text (byte {self.bytes_read + exc.start})") \
                from None
        self.bytes_read += len(data)
        self.eof = not data
        done = self.buf[:self.pos]
        newline = done.rfind("\n")
        self.lines += done.count("\n")
        self.column_base = len(done) - newline - 1 if newline >= 0 else self.column_base + len(done)
        self.buf = self.buf[self.pos:] + text
        self.pos = 0

    def not_json(self, msg: str, at: int) -> HarError:
        """``not JSON (msg at line L column C)`` for buffer position ``at``."""
        newline = self.buf.rfind("\n", 0, at)
        line = self.lines + self.buf.count("\n", 0, at) + 1
        column = at - newline if newline >= 0 else self.column_base + at + 1
        return HarError(f"{self.name} is not a HAR file: not JSON ({msg} at line {line} column {column})")

    def peek(self) -> str:
        """The next character that is not whitespace ('' at the end of the file)."""
        while True:
            blank = _WHITESPACE.match(self.buf, self.pos)
            assert blank is not None  # \s* matches anywhere
            self.pos = blank.end()
            if self.pos < len(self.buf) or self.eof:
                return self.buf[self.pos:self.pos + 1]
            self._more()

    def take(self, char: str, expected: str) -> None:
        """Consume ``char``, or fail with ``Expecting <expected>``."""
        if self.peek() != char:
            raise self.not_json(f"Expecting {expected}", self.pos)
        self.pos += 1

    def value(self, what: str) -> Any:
        """The next JSON value, parsed; at most MAX_ENTRY_CHARS of text."""
        self.peek()
        while True:
            try:
                value, end = _DECODER.raw_decode(self.buf, self.pos)
                if end - self.pos > MAX_ENTRY_CHARS:
                    break
                if self.eof or end + _LOOKAHEAD <= len(self.buf):
                    self.pos = end
                    return value
            except json.JSONDecodeError as exc:
                if self.eof or not (exc.msg.startswith("Unterminated string")
                                    or exc.pos + 12 >= len(self.buf)):  # cut short, not wrong
                    raise self.not_json(exc.msg, exc.pos) from None
            except RecursionError:
                raise HarError(f"{self.name} is not a HAR file: JSON nested too deeply") from None
            if len(self.buf) - self.pos > MAX_ENTRY_CHARS:
                break
            self._more(len(self.buf) - self.pos)  # doubles: a large value is parsed O(1) times over
        size = os.fstat(self.handle.fileno()).st_size
        raise HarError(f"{self.name}: {what} is over {size_text(MAX_ENTRY_CHARS)} of JSON, the most one "
                       f"entry may take (the file is {size_text(size)}); nothing was imported")

    def members(self) -> Iterator[str]:
        """The keys of the object starting here; the caller reads each value."""
        self.take("{", "'{'")
        if self.peek() == "}":
            self.pos += 1
            return
        while True:
            if self.peek() != '"':
                raise self.not_json("Expecting property name enclosed in double quotes", self.pos)
            key = self.value("a key")
            self.take(":", "':' delimiter")
            yield key
            if self.peek() == "}":
                self.pos += 1
                return
            self.take(",", "',' delimiter")

    def items(self, what: str) -> Iterator[Any]:
        """The values of the array starting here, parsed one by one."""
        self.take("[", "'['")
        if self.peek() == "]":
            self.pos += 1
            return
        index = 0
        while True:
            yield self.value(f"{what} {index}")
            index += 1
            if self.peek() == "]":
                self.pos += 1
                return
            self.take(",", "',' delimiter")


def _stream_entries(handle: BinaryIO, name: str) -> Iterator[Any]:
    """Each of ``log.entries``, parsed one at a time; :class:`HarError` when the file is not HAR."""
    stream = _JsonStream(handle, name)
    no_entries = HarError(f"{name} is not a HAR file: JSON without log.entries "
                          "(save it from DevTools' Network panel: Export HAR)")
    seen = False
    if stream.peek() != "{":
        stream.value("the document")  # not JSON, or JSON of another shape
        raise no_entries
    for key in stream.members():
        if key != "log":
            stream.value("a value beside log")
        elif seen or stream.peek() != "{":
            stream.value("log")
            raise no_entries if not seen else HarError(f"{name} is not a HAR file: more than one log")
        else:
            for log_key in stream.members():
                if log_key != "entries":
                    stream.value("a value in log")
                elif seen:
                    raise HarError(f"{name} is not a HAR file: more than one log.entries")
                elif stream.peek() != "[":
                    stream.value("log.entries")
                    raise HarError(f"{name} is not a HAR file: log.entries is not a list")
                else:
                    seen = True
                    yield from stream.items("entry")
    if stream.peek():
        raise stream.not_json("Extra data", stream.pos)
    if not seen:
        raise no_entries


class HarFile:
    """A HAR file checked from end to end; :meth:`entries` then reads it again, entry by entry.

    Opening reads the whole file once as a stream and raises
    :class:`HarError` (one line) for anything that is not importable: not
    UTF-8, not JSON, no ``log.entries`` list, a field of the wrong type, an
    entry over MAX_ENTRY_CHARS. ``progress(entries read, 0)`` is called as
    it goes (returning ``False`` cancels). The file stays open until
    :meth:`close`.
    """

    def __init__(self, path: str | Path, *, progress: ProgressCallback | None = None) -> None:
        self.path = str(path)
        try:
            self._handle: BinaryIO = open(path, "rb")  # noqa: SIM115 - kept open for the second pass
            self.size = os.fstat(self._handle.fileno()).st_size
        except IsADirectoryError:
            raise HarError(f"{self.path} is a folder, not a HAR file") from None
        except FileNotFoundError:
            raise HarError(f"no such file: {self.path}") from None
        except OSError as exc:
            raise HarError(f"cannot read {self.path}: {exc.strerror or exc}") from None
        try:
            self.count = 0
            for index, entry in self.entries():
                entry_request(entry, index, self.path)  # every type checked now, before anything is written
                self.count = index + 1
                report(progress, self.count, 0)
        except BaseException:
            self.close()
            raise

    def entries(self) -> Iterator[tuple[int, Any]]:
        """(index, entry) for each entry, read from the start of the file."""
        self._handle.seek(0)
        try:
            yield from enumerate(_stream_entries(self._handle, self.path))
        except OSError as exc:
            raise HarError(f"cannot read {self.path}: {exc.strerror or exc}") from None

    def close(self) -> None:
        """Close the file."""
        self._handle.close()

    def __enter__(self) -> HarFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- one entry -------------------------------------------------------------------

_JSON_TYPES = {dict: "an object", list: "a list", str: "a string", bool: "true or false", int: "a number",
               float: "a number", type(None): "null"}


def _typed(container: dict[str, Any], key: str, kind: type, where: str, problem: Callable[[str], HarError],
           *, required: bool = False) -> Any:
    """``container[key]`` when it is a ``kind`` (None when absent or null and not required)."""
    value = container.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, kind):
        got = "missing" if key not in container else _JSON_TYPES.get(type(value), type(value).__name__)
        raise problem(f"{where}{key} is {got}, not {_JSON_TYPES[kind]}")
    return value


def _pairs_of(container: dict[str, Any], key: str, where: str, problem: Callable[[str], HarError]) -> list[
        tuple[str, str]]:
    """A HAR list of ``{"name", "value"}`` objects (headers, queryString, params) as checked pairs."""
    pairs = []
    for n, item in enumerate(_typed(container, key, list, where, problem) or []):
        spot = f"{where}{key}[{n}]."
        if not isinstance(item, dict):
            raise problem(f"{where}{key}[{n}] is {_JSON_TYPES.get(type(item), 'not an object')}, not an object")
        pairs.append((_typed(item, "name", str, spot, problem, required=True),
                      _typed(item, "value", str, spot, problem) or ""))
    return pairs


def _without_userinfo(netloc: str) -> str:
    # user:pass@host -> host: credentials are never stored
    return netloc.rpartition("@")[2]


def _url_without_userinfo(url: str) -> str:
    try:
        parts = urlsplit(url)
    except ValueError:
        return url.rpartition("@")[2] if "@" in url.partition("?")[0] else url
    return urlunsplit(parts._replace(netloc=_without_userinfo(parts.netloc))) if "@" in parts.netloc else url


_URL_HEADERS = frozenset(("Referer", "Origin"))


def _headers(pairs: list[tuple[str, str]], authority: str) -> dict[str, str]:
    """Headers as the mock's WSGI layer presents them, ``Host`` from the URL (the URL decides)."""
    headers: dict[str, str] = {"Host": authority}
    for name, value in pairs:
        if name.startswith(":"):  # HTTP/2 pseudo-headers in Chrome's HAR; :authority is the URL's
            continue
        key = name.title()  # HTTP/2 HARs have lower-case names
        if key == "Host":
            continue
        if key in _URL_HEADERS:
            value = _url_without_userinfo(value)
        if key in headers:
            headers[key] += ("; " if key == "Cookie" else ", ") + value
        else:
            headers[key] = value
    return headers


def _header_lines(pairs: list[tuple[str, str]]) -> int:
    """How many header lines the request carried over HTTP/1.1, as hyper counts them against
    MAX_HEADER_LINES: each pair but HTTP/2's pseudo-headers, its Cookie crumbs as one line (RFC 9113
    8.2.3), and Host once."""
    names = [name.lower() for name, _ in pairs if not name.startswith(":") and name.lower() != "host"]
    cookies = names.count("cookie")
    return len(names) - cookies + (1 if cookies else 0) + 1


def _target_bytes(target: str) -> int:
    """Bytes of the request target as a browser sends it: a character outside ASCII percent-encoded."""
    return len(target) + sum(3 * len(_utf8(char)) - 1 for char in target if ord(char) > 0x7F)


def server_refusal(method: str, target: str, pairs: list[tuple[str, str]], headers: dict[str, str]) -> str | None:
    """The key (in REFUSALS) of why the live server would refuse this request before recording it, or None.

    ``pairs`` are the headers as the HAR lists them, ``headers`` as the server's WSGI layer joins them.
    """
    if _header_lines(pairs) > MAX_HEADER_LINES:
        return "headers"
    if _target_bytes(target) > MAX_TARGET_BYTES:
        return "target"
    if head_size(_utf8(method), _utf8(target), ((_utf8(n), _utf8(v)) for n, v in headers.items())) > MAX_HEADER_BYTES:
        return "head"
    return None


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def _body(request: dict[str, Any], where: str, problem: Callable[[str], HarError]) -> bytes | str:
    """``postData`` as bytes, or a reason it cannot be read."""
    post = _typed(request, "postData", dict, where, problem)
    if post is None:
        return b""
    text: str | None = _typed(post, "text", str, where + "postData.", problem)
    encoding = _typed(post, "encoding", str, where + "postData.", problem)
    params = _pairs_of(post, "params", where + "postData.", problem)
    if text is not None and encoding == "base64":  # not in HAR 1.2, but some tools write it
        try:
            return base64.b64decode(text)
        except ValueError:
            return "malformed: postData.text is not base64"
    if text is not None:
        return text.encode("utf-8", "surrogatepass")  # a lone "\ud800" must not stop the import
    return "&".join(f"{name}={value}" for name, value in params).encode("utf-8", "surrogatepass")


def entry_request(entry: Any, index: int = 0, file: str = "the HAR file") -> RawRequest | str:
    """The request of one HAR entry as it went on the wire, or why it is not imported.

    Returns ``"other host"`` for a request whose URL is not on
    telemetry.refine.dev (whatever else the entry says), ``"malformed: …"``
    for one that cannot be read and one of :data:`REFUSED_WARNINGS` for one
    the live server would have refused before recording it (too many
    headers, too long a target, a head over MAX_HEADER_BYTES). Raises
    :class:`HarError` for a field of the wrong type: the file is not HAR then.
    """
    def problem(text: str) -> HarError:
        return HarError(f"{file} is not a HAR file: entry {index}: {text}")

    if not isinstance(entry, dict):
        raise problem(f"is {_JSON_TYPES.get(type(entry), 'not an object')}, not an object")
    request = _typed(entry, "request", dict, "", problem, required=True)
    url = _typed(request, "url", str, "request.", problem, required=True)
    method = _typed(request, "method", str, "request.", problem, required=True)
    _typed(entry, "startedDateTime", str, "", problem)
    header_pairs = _pairs_of(request, "headers", "request.", problem)
    query_pairs = _pairs_of(request, "queryString", "request.", problem)
    body = _body(request, "request.", problem)
    if not method.strip():
        raise problem("request.method is empty")
    try:
        parts = urlsplit(url.strip())
        host = (parts.hostname or "").rstrip(".").lower()
        port = parts.port
    except ValueError:
        return "malformed: unreadable url"
    if host != REFINE_HOST:
        return "other host"
    if isinstance(body, str):
        return body
    # The raw query straight from the URL: DevTools keeps it as sent ('+' stays '+').
    query = parts.query
    if not query and "?" not in url:
        query = "&".join(f"{name}={value}" for name, value in query_pairs)
    authority = _without_userinfo(parts.netloc)
    if port is None and authority.endswith(":"):  # "host:" with an empty port
        authority = authority[:-1]
    method, path = method.upper(), parts.path or "/"
    headers = _headers(header_pairs, authority)
    refusal = server_refusal(method, f"{path}?{query}" if query else path, header_pairs, headers)
    if refusal is not None:
        return REFUSED_WARNINGS[refusal]
    return RawRequest(
        method=method,
        path=path,
        query=query[: MAX_QUERY * 2],  # capture() cuts at the cap and says so; this only bounds memory
        headers=headers,
        body=body[:MAX_BODY],
        body_size=len(body) if len(body) > MAX_BODY else None,  # as the server reads a long body
        scheme=parts.scheme or "https",
        peer=_exported_client_ip(entry),
    )


def _exported_client_ip(entry: dict[str, Any]) -> str | None:
    """The client IP this app wrote into its own export (``_inspector.client_ip``), if it is one."""
    extra = entry.get(INSPECTOR_FIELD)
    value = extra.get("client_ip") if isinstance(extra, dict) else None
    try:
        return str(ipaddress.ip_address(value)) if isinstance(value, str) else None
    except ValueError:
        return None


def started_at(entry: dict[str, Any]) -> datetime | str:
    """The entry's ``startedDateTime`` as a UTC time, or what is wrong with it."""
    text = entry.get("startedDateTime")
    if text is None:
        return "no startedDateTime"
    shown = repr(text[:40] + ("…" if len(text) > 40 else ""))
    try:
        moment = parse_iso(text)
    except ValueError:
        return f"startedDateTime {shown} is not an ISO 8601 date"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        return f"startedDateTime {shown} is out of range (before 0001-01-01 or after 9999-12-31 in UTC)"


# -- the import ------------------------------------------------------------------

def import_har(store: BeaconStore, har: str | Path | HarFile, *, progress: ProgressCallback | None = None,
               session_label: str | None = None, keep_current_session: bool = True,
               trust_proxy: bool = False) -> ImportResult:
    """Import every telemetry.refine.dev request in a HAR file into ``store``.

    ``har`` is a path, or a :class:`HarFile` already checked (then it is
    closed afterwards). A path is checked first: :class:`HarError` for a
    file that is not HAR, before anything is written. The records go into a
    new session labelled ``import: <file name>``, made with the first
    record: an import of nothing makes no session. ``progress(done, total)``
    is called per entry; returning ``False`` stops the import with
    :class:`~mockserver.formats.progress.Cancelled` (what was imported stays,
    committed). With ``keep_current_session`` the store's current session
    (where live requests go) stays as it is.
    """
    with har if isinstance(har, HarFile) else HarFile(har, progress=progress) as checked:
        return _record_entries(store, checked, progress=progress, label=session_label or
                               f"import: {Path(checked.path).name}", make_current=not keep_current_session,
                               trust_proxy=trust_proxy)


def _record_entries(store: BeaconStore, har: HarFile, *, progress: ProgressCallback | None, label: str,
                    make_current: bool, trust_proxy: bool) -> ImportResult:
    result = ImportResult(file=har.path, entries=har.count)
    recorder = Recorder(store, trust_proxy=trust_proxy)  # its own duplicate detector: this file's beacons only
    report(progress, 0, har.count)
    for index, entry in har.entries():
        raw = entry_request(entry, index, har.path)
        if raw == "other host":
            result.skipped += 1
        elif isinstance(raw, str):
            refusal = _REFUSAL_OF.get(raw)
            if refusal is not None:
                result.refused += 1
                result.refused_by[refusal] += 1
            result.malformed += raw.startswith("malformed:")
            result.warnings.append(f"entry {index}: {raw}")
        else:
            moment = started_at(entry)
            if isinstance(moment, str):
                result.warnings.append(f"entry {index}: {moment}; recorded with the import time")
                moment = utc_now()
            if result.session is None:
                # Kept current, a running server's live requests keep going to their own session.
                result.session = store.new_session(label, make_current=make_current)
            beacon = recorder.record(raw, received_at=moment, session=result.session)
            result.imported += 1
            result.invalid += beacon.status != "ok"
            if beacon.id is not None:
                result.ids.append(beacon.id)
        report(progress, index + 1, har.count)
    return result
