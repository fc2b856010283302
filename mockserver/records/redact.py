"""Redaction: mask IP addresses, hostnames, emails and projectIds with stable pseudonyms.

One :class:`Redactor` per run (an export, a screenshot, a GUI session with
the toggle on): the same original value always becomes the same token
(``ip-1``, ``host-1``, ``user-1@example.invalid``, ``project-1``), so
records stay comparable while nothing identifying is left. Records are
copied, never changed in place: the store keeps the truth.

A value is masked everywhere it appears in a record, not only in the
obvious field:

* ``client`` (ip, hostname, host) and ``contact.email``;
* headers: ``Origin``/``Referer`` (the app's host), ``Host`` (kept when it
  is telemetry.refine.dev), ``X-Forwarded-For`` and friends; ``Cookie`` and
  ``Authorization`` are withheld outright;
* the decoded ``payload`` (``projectId``, ``email``, ``anonymousId``, any
  email address in any string), and then the wire forms are **re-encoded**
  from the redacted payload: ``raw_payload``, the query's ``payload=``
  value (same text encoding and base64 variant as received) and JSON
  bodies. A payload that could not be decoded cannot be redacted safely, so
  its raw form is withheld;
* free text (other headers, notes, problems, unknown requests' query and
  body): every original value already masked is replaced by its token.
  Known values shorter than 3 characters are not searched for in free text
  (they would match everywhere); their structured fields are still masked.
"""

from __future__ import annotations

import base64
import copy
import ipaddress
import re
import threading
from collections.abc import Iterable
from functools import lru_cache
from typing import Any
from urllib.parse import quote, urlsplit

from mockserver.core.beacon import Beacon, Summary
from mockserver.core.config import REFINE_HOST
from mockserver.core.decode import PERCENT, URL_SAFE, decode_payload
from mockserver.core.payloads import js_stringify

IP, HOST, EMAIL, PROJECT, ANONYMOUS = "ip", "host", "email", "project", "anon"

WITHHELD = "withheld-by-redaction"  # stands in for raw text that could not be redacted safely
MIN_FREE_TEXT = 3

_EMAIL_RE = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")
_TEXT_NOTE = "text: read as UTF-8"  # decode.py's note quoting the whole payload in its other reading

# Headers that carry the client's address (masked item by item).
_ADDRESS_HEADERS = {"x-forwarded-for", "x-real-ip", "cf-connecting-ip", "true-client-ip", "x-client-ip"}
_URL_HEADERS = {"origin", "referer"}
_SECRET_HEADERS = {"cookie", "authorization", "proxy-authorization"}
_FORWARDED_RE = re.compile(r"(?i)\b(for|by)=(\"?)(\[?[^;,\"\]]+\]?)(\"?)")


SUMMARY_MASKS_KEPT = 65_536  # distinct masked-column combinations remembered


def _ip_key(value: str) -> str | None:
    """The canonical form of an IP literal (brackets and zone ids allowed), else None."""
    text = value.strip().strip("[]")
    try:
        return str(ipaddress.ip_address(text.split("%")[0]))
    except ValueError:
        return None


class Redactor:
    """Stable pseudonyms for one run. Thread-safe; never sees the store."""

    def __init__(self) -> None:
        self._tokens: dict[str, str] = {}  # normalised original -> token
        self._originals: dict[str, str] = {}  # original text as seen -> token (for free-text search)
        self._counts: dict[str, int] = {}
        self._lock = threading.RLock()
        # Values masked while redacting the current record (per thread): free
        # text is searched for these, not for every value of the run, which
        # keeps the search pattern small on exports with thousands of clients.
        self._local = threading.local()
        # (hostname, ip, projectId, problem) -> the same masked: tokens never change within a run
        self._summary_masks: dict[tuple[Any, ...], tuple[str | None, ...]] = {}

    # -- tokens ----------------------------------------------------------

    def token(self, value: Any, kind: str) -> str:
        """The pseudonym for ``value``; the same value always gets the same token.

        IP literals are always ``ip-N`` and email addresses always
        ``user-N@example.invalid``, whatever field they were found in, so a
        hostname that is an IP gets the same token as that IP.
        """
        text = value if isinstance(value, str) else js_stringify(value)
        ip = _ip_key(text)
        if ip is not None:
            kind, key = IP, f"ip:{ip}"
        elif _EMAIL_RE.fullmatch(text.strip()):
            kind, key = EMAIL, f"email:{text.strip().lower()}"
        elif kind == HOST:
            key = f"host:{text.strip().lower().rstrip('.')}"
        else:
            key = f"{kind}:{text}"
        with self._lock:
            token = self._tokens.get(key)
            if token is None:
                number = self._counts[kind] = self._counts.get(kind, 0) + 1
                token = f"user-{number}@example.invalid" if kind == EMAIL else f"{kind}-{number}"
                self._tokens[key] = token
            if len(text) >= MIN_FREE_TEXT:
                self._originals.setdefault(text, token)
                seen = getattr(self._local, "seen", None)
                if seen is not None:
                    seen[text] = token
            return token

    def mapping(self) -> dict[str, str]:
        """Original text -> token for everything masked so far (for a local legend; never export it)."""
        with self._lock:
            return dict(self._originals)

    def scrub(self, text: str, originals: dict[str, str] | None = None) -> str:
        """``text`` with every email address, and every value in ``originals``
        (default: the record being redacted, else all masked so far), replaced by its token."""
        if not text:
            return text
        text = _EMAIL_RE.sub(lambda m: self.token(m.group(), EMAIL), text)
        if originals is None:
            originals = getattr(self._local, "seen", None)
            if originals is None:
                originals = self.mapping()
        if not originals:
            return text
        folded = text.lower()
        present = [k for k in originals if k.lower() in folded]  # cheap test first: most text holds none
        if not present:
            return text
        lowered = {k.lower(): originals[k] for k in present}
        return _pattern(frozenset(present)).sub(lambda m: lowered.get(m.group().lower(), m.group()), text)

    # -- pieces ------------------------------------------------------------

    def mask_host_port(self, value: str) -> str:
        """``host[:port]`` with the host masked (refine's own host is kept)."""
        host, port = value, ""
        if value.startswith("["):  # [v6]:port
            end = value.find("]")
            host, port = value[: end + 1], value[end + 1:]
        elif value.count(":") == 1:
            host, _, rest = value.partition(":")
            port = ":" + rest
        if host.lower().rstrip(".") == REFINE_HOST or not host:
            return value
        return self.token(host, HOST) + port

    def mask_url(self, value: str) -> str:
        """A URL (``Origin``/``Referer``) with its host masked and the rest scrubbed."""
        if value in ("", "null"):
            return value
        try:
            parts = urlsplit(value)
            host = parts.hostname
        except ValueError:
            host = None
        if not host:
            return self.scrub(value)
        host_port = parts.netloc.rpartition("@")[2]  # user:password@ is dropped: never needed, maybe secret
        start = value.find(parts.netloc)
        rest = value[start + len(parts.netloc):] if start >= 0 else ""
        return f"{parts.scheme}://{self.mask_host_port(host_port)}{self.scrub(rest)}"

    def _mask_addresses(self, value: str) -> str:
        items = []
        for item in value.split(","):
            stripped = item.strip()
            items.append(item.replace(stripped, self.token(stripped, IP)) if stripped else item)
        return ",".join(items)

    def _mask_forwarded(self, value: str) -> str:
        return _FORWARDED_RE.sub(lambda m: f"{m.group(1)}={m.group(2)}{self.token(m.group(3), IP)}{m.group(4)}", value)

    def _header(self, name: str, value: str) -> str:
        lowered = name.lower()
        if lowered in _SECRET_HEADERS:
            return WITHHELD
        if lowered == "host":
            return self.mask_host_port(value)
        if lowered in _URL_HEADERS:
            return self.mask_url(value)
        if lowered in _ADDRESS_HEADERS:
            return self._mask_addresses(value)
        if lowered == "forwarded":
            return self._mask_forwarded(value)
        return self.scrub(value)

    def _payload(self, value: Any, key: str | None = None) -> Any:
        """The decoded payload with identifying values masked (structure and key order kept)."""
        if isinstance(value, dict):
            return {k: self._payload(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [self._payload(v) for v in value]
        if key == "projectId" and value is not None and value != "":
            return self.token(value, PROJECT)
        if key == "anonymousId" and value is not None and value != "":
            return self.token(value, ANONYMOUS)
        if key == "email" and isinstance(value, str) and value:
            return self.token(value, EMAIL)
        if isinstance(value, str):
            return self.scrub(value)
        return value

    # -- records -----------------------------------------------------------

    def _learn(self, beacon: Beacon) -> None:
        """Register every identifying value of ``beacon`` first, so free text anywhere
        in it is scrubbed even where the value appears before its own field."""
        client = beacon.client or {}
        if client.get("ip"):
            self.token(client["ip"], IP)
        if client.get("hostname"):
            self.token(client["hostname"], HOST)
        for name, value in beacon.request.headers.items():
            lowered = name.lower()
            if lowered in _ADDRESS_HEADERS:
                self._mask_addresses(value)
            elif lowered == "forwarded":
                self._mask_forwarded(value)
            elif lowered == "host":
                self.mask_host_port(value)
            elif lowered in _URL_HEADERS:
                try:
                    host = urlsplit(value).hostname
                except ValueError:
                    host = None
                if host and host != REFINE_HOST:
                    self.token(host, HOST)
        if beacon.contact and isinstance(beacon.contact.get("email"), str) and beacon.contact["email"]:
            self.token(beacon.contact["email"], EMAIL)
        if isinstance(beacon.payload, dict):
            self._payload(beacon.payload)

    def redact(self, beacon: Beacon) -> Beacon:
        """A redacted copy of ``beacon``; the original is not touched."""
        self._local.seen = {}
        try:
            self._learn(beacon)
            return self._redacted_copy(beacon)
        finally:
            self._local.seen = None

    def _redacted_copy(self, beacon: Beacon) -> Beacon:
        out = Beacon.from_dict(copy.deepcopy(beacon.to_dict()))
        request = out.request
        request.headers = {name: self._header(name, value) for name, value in beacon.request.headers.items()}

        client = out.client or {}
        if client.get("ip"):
            client["ip"] = self.token(client["ip"], IP)
        if client.get("hostname"):
            client["hostname"] = self.token(client["hostname"], HOST)
        if client.get("host"):
            client["host"] = self.mask_host_port(client["host"])
        for key in ("user_agent",):
            if isinstance(client.get(key), str):
                client[key] = self.scrub(client[key])
        if isinstance(client.get("client_hints"), dict):
            client["client_hints"] = {k: self.scrub(v) if isinstance(v, str) else v
                                      for k, v in client["client_hints"].items()}
        if out.contact:
            out.contact = self._payload(out.contact)

        if isinstance(beacon.payload, dict):
            out.payload = self._payload(beacon.payload)
        self._rewrite_wire(beacon, out)
        out.notes = [self.scrub(n) for n in out.notes]
        out.problems = [self.scrub(p) for p in out.problems]
        return out

    def redact_all(self, beacons: Iterable[Beacon]) -> list[Beacon]:
        """Redacted copies, in order (tokens are numbered in first-seen order)."""
        return [self.redact(b) for b in beacons]

    def redact_summary(self, summary: Summary) -> Summary:
        """A table row with the same tokens its full record gets."""
        hostname, ip, project_id, problem = self.masked_columns(summary)
        return summary._replace(hostname=hostname, ip=ip, project_id=project_id, problem=problem)

    def masked_columns(self, summary: Summary) -> tuple[str | None, ...]:
        """(hostname, ip, project_id, problem) of ``summary`` as :meth:`redact_summary` shows them."""
        # They repeat across rows (a few hosts, IPs, projects): masking each
        # combination once makes redacting 100,000 rows ~10x faster.
        key = (summary.hostname, summary.ip, summary.project_id, summary.problem)
        masked = self._summary_masks.get(key)
        if masked is None:
            masked = self._mask_summary_columns(*key)
            if len(self._summary_masks) < SUMMARY_MASKS_KEPT:
                self._summary_masks[key] = masked
        return masked

    def _mask_summary_columns(self, hostname: str | None, ip: str | None, project_id: str | None,
                              problem: str | None) -> tuple[str | None, ...]:
        self._local.seen = {}
        try:
            return (self.token(hostname, HOST) if hostname else hostname,
                    self.token(ip, IP) if ip else ip,
                    self.token(project_id, PROJECT) if project_id else project_id,
                    self.scrub(problem) if problem else problem)
        finally:
            self._local.seen = None

    # -- the wire forms ----------------------------------------------------

    def _rewrite_wire(self, original: Beacon, out: Beacon) -> None:
        """Make raw_payload, query and body say what the redacted payload says."""
        request = out.request
        decoded = isinstance(original.payload, dict)
        if original.kind == "beacon":
            new_raw = _reencode(out.payload, original.encoding, original.base64_variant) if decoded else None
            old_raw = original.raw_payload
            out.raw_payload = new_raw if new_raw is not None else (WITHHELD if old_raw is not None else None)
            if original.request.method == "GET":
                request.query = self._query(original.request.query, out.raw_payload)
                if request.body is not None:
                    request.body = self.scrub(request.body)
            else:
                request.query = self._query(original.request.query, None)
                if request.body is not None:
                    body = original.request.body or ""
                    if new_raw is not None and old_raw and old_raw in body:
                        request.body = body.replace(old_raw, new_raw, 1)
                    else:
                        request.body = WITHHELD
                    _set_body_size(request)
            if new_raw is not None:
                out.notes = [n for n in out.notes if not n.startswith(_TEXT_NOTE)]
                out.notes[0:0] = [n for n in decode_payload(new_raw).notes if n.startswith(_TEXT_NOTE)]
            return
        request.query = self._query(original.request.query, None)
        if original.kind in ("cli", "project", "superplate"):
            if decoded:
                # These bodies are JSON.stringify output (node-fetch); the redacted payload is re-serialised.
                text = js_stringify(out.payload)
                out.raw_payload = text
                request.body = text
            elif original.request.body is not None:
                out.raw_payload = WITHHELD if original.raw_payload is not None else None
                request.body = WITHHELD
            _set_body_size(request)
            return
        # encrypted (ciphertext plus a clear header of alg/enc), location, unknown: free text
        if request.body is not None:
            request.body = self.scrub(request.body)
        if out.raw_payload is not None:
            out.raw_payload = self.scrub(out.raw_payload)

    def _query(self, query: str, payload_value: str | None) -> str:
        """The raw query with the first ``payload=`` value replaced and everything else scrubbed."""
        if not query:
            return query
        parts, replaced = [], False
        for part in query.split("&"):
            key, sep, _ = part.partition("=")
            if key == "payload" and sep:
                # Only the first payload= is decoded (and so re-encoded); any other is withheld.
                parts.append(f"payload={payload_value if payload_value is not None and not replaced else WITHHELD}")
                replaced = True
            else:
                parts.append(self.scrub(part))
        return "&".join(parts)


@lru_cache(maxsize=1024)
def _pattern(originals: frozenset[str]) -> re.Pattern[str]:
    """One search for all of ``originals``: longest first (so "a.example.com" wins over
    "example.com"), case-insensitive, never inside a longer word."""
    alternatives = "|".join(re.escape(k) for k in sorted(originals, key=lambda k: (-len(k), k)))
    return re.compile(rf"(?<![A-Za-z0-9])(?:{alternatives})(?![A-Za-z0-9])", re.IGNORECASE)


def _set_body_size(request: Any) -> None:
    """Keep body_size and Content-Length true to the rewritten body."""
    size = len(request.body.encode("utf-8", "surrogatepass")) if request.body is not None else 0
    request.body_size = size
    for name in list(request.headers):
        if name.lower() == "content-length":
            request.headers[name] = str(size)


def _reencode(payload: Any, encoding: str | None, variant: str | None) -> str:
    """Base64 of the payload the way it arrived: same text encoding, same base64 variant.

    The JSON is written as ``JSON.stringify`` would (what refine sends); a
    payload that arrived formatted otherwise is re-serialised compactly.
    """
    text = js_stringify(payload)
    try:
        data = text.encode("latin-1" if encoding == "latin-1" else "utf-8")
    except UnicodeEncodeError:
        data = text.encode("utf-8")
    encoded = base64.b64encode(data).decode("ascii")
    variant = variant or ""
    percent = variant.startswith(PERCENT)
    if URL_SAFE in variant:
        encoded = encoded.translate(str.maketrans("+/", "-_"))
    if "unpadded" in variant:
        encoded = encoded.rstrip("=")
    if percent:
        encoded = quote(encoded, safe="")
    return encoded


def redact_records(beacons: Iterable[Beacon], redactor: Redactor | None = None) -> list[Beacon]:
    """Redacted copies of ``beacons`` with one shared set of tokens (a new one unless given)."""
    return (redactor or Redactor()).redact_all(beacons)


def redact_record(beacon: Beacon, redactor: Redactor | None = None) -> Beacon:
    """A redacted copy of one record (a fresh :class:`Redactor` unless given)."""
    return (redactor or Redactor()).redact(beacon)

