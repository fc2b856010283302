"""Exact decoding of what refine's packages put on the wire.

Pure functions, no I/O. Every failure is reported as a one-line problem that
says what failed and where; nothing here raises on bad input.

Facts honoured (see ``shared/refine-telemetry.md``):
- the payload arrives *un-escaped* in the query, so a ``+`` is a ``+``: the
  query string is split by hand, never form-decoded;
- browsers encode with ``btoa`` (one Latin-1 byte per character), Node with
  ``Buffer`` (UTF-8): bytes are UTF-8 when they are valid UTF-8, else Latin-1.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_to_bytes

from mockserver.core.jsontext import dumps_strict, loads_strict

STANDARD = "standard"
URL_SAFE = "url-safe"
UNPADDED = " unpadded"
PERCENT = "percent-encoded "

_STANDARD_RE = re.compile(r"[A-Za-z0-9+/]*={0,2}")
_URL_SAFE_RE = re.compile(r"[A-Za-z0-9\-_]*={0,2}")
_ALPHANUM = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")


@dataclass
class DecodedPayload:
    """The outcome of decoding one base64 JSON payload."""

    payload: dict[str, Any] | None = None
    encoding: str | None = None
    base64_variant: str | None = None
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def raw_query_values(query: str, name: str) -> list[str]:
    """Values of parameter ``name`` in a raw query string, *not* unescaped.

    ``parse_qs`` and friends turn ``+`` into a space; refine does not escape
    its base64, so the raw text is the truth.
    """
    values = []
    for part in query.split("&"):
        key, sep, value = part.partition("=")
        if key == name:
            values.append(value if sep else "")
    return values


def _describe_char(ch: str) -> str:
    return repr(ch) if ch.isprintable() else f"U+{ord(ch):04X}"


def _diagnose_base64(text: str, where: str = "") -> list[str]:
    """Explain why ``text`` is not base64: first illegal character and where."""
    problems = []
    saw_standard = saw_url_safe = False
    bad = []
    pad_start = len(text.rstrip("="))
    for offset, ch in enumerate(text):
        if ch in _ALPHANUM:
            continue
        if ch in "+/":
            saw_standard = True
        elif ch in "-_":
            saw_url_safe = True
        elif ch == "=" and offset >= pad_start:
            continue
        else:
            bad.append((offset, ch))
    if bad:
        offset, ch = bad[0]
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        hint = " (a '+' turned into a space by form decoding?)" if ch == " " else ""
        problems.append(f"base64: illegal character {_describe_char(ch)} at offset {offset}{where}{more}{hint}")
    if saw_standard and saw_url_safe:
        problems.append("base64: mixes the standard ('+', '/') and URL-safe ('-', '_') alphabets")
    if len(text) - pad_start > 2:
        problems.append(f"base64: {len(text) - pad_start} padding characters at the end (at most 2)")
    return problems


def _decode_base64(text: str, where: str = "") -> tuple[bytes | None, str | None, list[str]]:
    """Decode standard or URL-safe base64, padded or not. Returns (bytes, variant, problems)."""
    if _STANDARD_RE.fullmatch(text):
        variant, altchars = STANDARD, None
    elif _URL_SAFE_RE.fullmatch(text):
        variant, altchars = URL_SAFE, b"-_"
    else:
        return None, None, _diagnose_base64(text, where) or ["base64: not valid base64"]
    body = text.rstrip("=")
    padding = len(text) - len(body)
    if len(body) % 4 == 1:
        return None, variant, [
            f"base64: {len(body)} characters cannot be base64 (one too many or three missing: truncated?)"
        ]
    if padding and len(text) % 4:
        return None, variant, [
            f"base64: padding is wrong: {len(text)} characters with {padding} '=' is not a multiple of 4"
        ]
    if not padding and len(body) % 4:
        variant += UNPADDED
    try:
        data = base64.b64decode(body + "=" * (-len(body) % 4), altchars=altchars, validate=True)
    except (binascii.Error, ValueError) as exc:  # pragma: no cover - guarded by the checks above
        return None, variant, [f"base64: {exc}"]
    return data, variant, []


def decode_text(data: bytes) -> tuple[str, str]:
    """Bytes to text: strict UTF-8 when valid, else Latin-1 (what ``btoa`` writes)."""
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return data.decode("latin-1"), "latin-1"


def _shown_number(text: str) -> str:
    return text if len(text) <= 40 else f"{text[:20]}… ({len(text)} characters)"


def parse_json_object(text: str, where: str = "json") -> tuple[dict[str, Any] | None, list[str]]:
    """Parse ``text`` as a JSON object; (object, problems) or (None, [problem]).

    A number out of range (``1e400``, a 5000-digit integer) does not drop the
    object: it is kept as the string of its text, with a problem naming it.
    """
    try:
        value, kept = loads_strict(text)
    except json.JSONDecodeError as exc:
        return None, [f"{where}: {exc.msg} at line {exc.lineno} column {exc.colno} (char {exc.pos})"]
    except ValueError as exc:
        return None, [f"{where}: {exc}"]
    except RecursionError:
        return None, [f"{where}: nested too deeply"]
    if not isinstance(value, dict):
        return None, [f"{where}: top-level value is {json_type_name(value)}, expected an object"]
    return value, [f"{where}: number out of range at {number.path}: {_shown_number(number.text)}, kept as text"
                   for number in kept]


def json_type_name(value: Any) -> str:
    """The JSON type of a decoded value, as people say it ("a string", "an array")."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def decode_payload(raw: str) -> DecodedPayload:
    """Decode a raw beacon payload (base64 of JSON) exactly.

    ``raw`` is the value as it arrived: still percent-escaped if the sender
    escaped it, with any ``+`` intact.
    """
    result = DecodedPayload()
    if raw == "":
        result.problems.append("payload: empty")
        return result
    text = raw
    prefix = ""
    if "%" in raw:
        unescaped = unquote_to_bytes(raw)
        try:
            text = unescaped.decode("ascii")
        except UnicodeDecodeError:
            text = unescaped.decode("latin-1")
        if text != raw:
            prefix = PERCENT
    data, variant, problems = _decode_base64(text, " after percent-decoding" if prefix else "")
    if problems:
        result.problems.extend(problems)
        result.base64_variant = prefix + variant if variant else None
        return result
    assert data is not None and variant is not None
    result.base64_variant = prefix + variant
    decoded, result.encoding = decode_text(data)
    if result.encoding == "utf-8" and not data.isascii():
        # Valid UTF-8 is read as UTF-8, but btoa output can be valid UTF-8 by
        # chance ("Ã©" is C3 A9): show the other reading instead of guessing.
        other = data.decode("latin-1")
        result.notes.append(
            "text: read as UTF-8 (Node's Buffer); as Latin-1 (a browser's btoa) it would read "
            + dumps_strict(other[:200])
        )
    result.payload, problems = parse_json_object(decoded)
    result.problems.extend(problems)
    return result
