"""refine's beacon payload and its encoders, byte for byte: the one builder for the composer,
redaction, the demo data, the benchmarks and the tests.

* :func:`beacon_payload`: the object ``useTelemetryData()`` builds, keys in
  refine's order (``providers`` with all eight keys in refine's order,
  ``version``, ``resourceCount``, then ``projectId`` only when set:
  ``JSON.stringify`` drops ``undefined``);
* :func:`js_stringify`: ``JSON.stringify`` (compact, non-ASCII written as is);
* :func:`btoa` (one Latin-1 byte per character, throws above U+00FF) in a
  browser, :func:`buffer_base64` (``Buffer.from(s).toString("base64")``,
  UTF-8) in Node; :func:`encode_payload` picks one.

When ``btoa`` would throw, refine's ``encode()`` catches it and the beacon is
simply not sent; :class:`BtoaRefused` says so.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from typing import Any

from mockserver.core.checks import PROVIDERS
from mockserver.core.jsontext import escape_surrogates

BROWSER = "browser"  # btoa: Latin-1
NODE = "node"  # Buffer: UTF-8
ENCODINGS = (BROWSER, NODE)

DEFAULT_VERSION = "4.58.0"
DEFAULT_PROVIDERS = ("data", "router")  # what a minimal 4.x app reports
DEFAULT_RESOURCES = 0


class BtoaRefused(ValueError):
    """``btoa`` throws for this payload, so refine sends nothing at all."""

    def __init__(self, character: str, offset: int, text: str, where: str | None = None) -> None:
        self.character = character
        self.offset = offset  # in the JSON text
        self.text = text
        self.where = where  # the input that holds the character, when known
        place = where or f"the JSON at offset {offset}"
        super().__init__(
            f"{place} contains {character!r} (U+{ord(character):04X}), which btoa cannot encode: "
            "refine's encode() catches the error and sends no beacon at all"
        )


def js_stringify(value: Any) -> str:
    """``JSON.stringify`` for plain JSON data: compact, insertion order, non-ASCII as is.

    Python's ``json.dumps`` escapes exactly what ``JSON.stringify`` escapes
    (``"``, ``\\``, controls below U+0020 with the same short forms) once
    ``ensure_ascii`` is off; lone surrogates, which ``JSON.stringify`` writes
    as ``\\udXXX``, are escaped the same way here.
    """
    return escape_surrogates(json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False))


def providers_object(on: Iterable[str] = DEFAULT_PROVIDERS) -> dict[str, bool]:
    """refine's ``providers`` object: all eight keys in refine's order, ``true`` for those in ``on``.

    Unknown names raise ``ValueError``.
    """
    names = set(on)
    unknown = sorted(names - set(PROVIDERS))
    if unknown:
        raise ValueError(f"unknown {'provider' if len(unknown) == 1 else 'providers'} {', '.join(unknown)}; "
                         f"refine reports {', '.join(PROVIDERS)}")
    return {name: name in names for name in PROVIDERS}


def beacon_payload(version: str = DEFAULT_VERSION, providers: Iterable[str] = DEFAULT_PROVIDERS,
                   resources: int = DEFAULT_RESOURCES, project_id: str | None = None) -> dict[str, Any]:
    """The payload object ``useTelemetryData()`` builds, keys in refine's order.

    ``providers`` names the providers that are on; every other one of the
    eight is sent as ``false``. Unknown names raise ``ValueError``.
    """
    payload: dict[str, Any] = {
        "providers": providers_object(providers),
        "version": version,
        "resourceCount": resources,
    }
    if project_id is not None:  # JSON.stringify drops undefined
        payload["projectId"] = project_id
    return payload


def btoa(text: str) -> str:
    """The browser's ``btoa``: one Latin-1 byte per character; throws above U+00FF."""
    for offset, ch in enumerate(text):
        if ord(ch) > 0xFF:
            raise BtoaRefused(ch, offset, text)
    return base64.b64encode(text.encode("latin-1")).decode("ascii")


def buffer_base64(text: str) -> str:
    """Node's ``Buffer.from(text).toString("base64")``: UTF-8 bytes.

    Node writes a lone surrogate as U+FFFD; so does this.
    """
    data = "".join("\ufffd" if "\ud800" <= ch <= "\udfff" else ch for ch in text).encode("utf-8")
    return base64.b64encode(data).decode("ascii")


def btoa_json(value: Any) -> str:
    """``btoa(JSON.stringify(value))``: what a browser puts in the query. Raises :class:`BtoaRefused`."""
    return btoa(js_stringify(value))


def buffer_json(value: Any) -> str:
    """``Buffer.from(JSON.stringify(value)).toString("base64")``: what Node sends."""
    return buffer_base64(js_stringify(value))


def encode_payload(payload: Any, encoding: str = BROWSER) -> str:
    """``btoa(JSON.stringify(payload))`` (``browser``) or the Buffer form (``node``).

    Raises :class:`BtoaRefused` where refine's browser path would send nothing.
    """
    if encoding == BROWSER:
        return btoa_json(payload)
    if encoding == NODE:
        return buffer_json(payload)
    raise ValueError(f"encoding must be one of {', '.join(ENCODINGS)}, got {encoding!r}")
