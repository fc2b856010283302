"""Strict JSON text (RFC 8259): the one writer, and the reader of untrusted JSON.

Python's ``json`` module writes ``NaN``/``Infinity`` and lone surrogates
(``"\\ud800"`` in the input reads back as one), neither of which a strict
parser (Node's ``JSON.parse``) or a UTF-8 encoder accepts. Every JSON the
inspector writes (journal API, ``serve --json``, exports, the window's JSON
views) goes through :func:`dumps_strict`; every untrusted JSON it reads goes
through :func:`loads_strict`, which keeps a number no reader could hold as
its original text.
"""

from __future__ import annotations

import json
import math
import re
import sys
from dataclasses import dataclass
from typing import Any

_SURROGATE = re.compile("[\ud800-\udfff]")
_LARGEST_FLOAT = int(sys.float_info.max)
_FLOAT_DIGITS = len(str(_LARGEST_FLOAT))  # an integer with fewer digits always fits a double


def escape_surrogates(text: str) -> str:
    """``text`` with each lone surrogate written as its JSON escape ``\\udXXX``, so it encodes as UTF-8."""
    if text.isascii():
        return text
    try:
        text.encode()  # a C loop: far cheaper than the search below, and it fails only on a surrogate
        return text
    except UnicodeEncodeError:
        pass
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _finite(value: Any) -> Any:
    """``value`` with what JSON cannot hold as a number as text: ``Infinity``, ``-Infinity``,
    ``NaN``, and integers too long for Python to write in decimal as ``0x...``."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            str(value)
        except ValueError:
            return hex(value)
        return value
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def dumps_strict(value: Any, **kwargs: Any) -> str:
    """``json.dumps(value, **kwargs)`` that is always strict JSON and always encodes as UTF-8.

    Non-ASCII is kept as is unless ``ensure_ascii=True`` is passed; a lone
    surrogate is written as ``\\udXXX``. It never raises on data: a
    non-finite float (only in records written before strict JSON) is written
    as the string ``"Infinity"``, ``"-Infinity"`` or ``"NaN"``.
    """
    kwargs.setdefault("ensure_ascii", False)
    try:
        text = json.dumps(value, allow_nan=False, **kwargs)
    except ValueError:  # out-of-range float, or an int too long to write
        text = json.dumps(_finite(value), allow_nan=False, **kwargs)
    return escape_surrogates(text)


def key_path(prefix: str, key: str) -> str:
    """``prefix.key``; a key that would make the dotted path ambiguous is written as ``prefix["a.b"]``."""
    if not key or any(c in key for c in ".[]\" "):
        return f"{prefix}[{dumps_strict(key)}]"
    return escape_surrogates(f"{prefix}.{key}" if prefix else key)


@dataclass(frozen=True)
class OutOfRange:
    """A number in the input that no reader can hold: where it was and its text as sent."""

    path: str  # e.g. ``resourceCount`` or ``items[2]``
    text: str


class _KeptText(str):
    """A number's text kept instead of its value; replaced by a plain ``str`` once found."""


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _parse_float(text: str) -> Any:
    value = float(text)
    return _KeptText(text) if math.isinf(value) else value


def _parse_int(text: str) -> Any:
    digits = len(text) - text.startswith("-")
    limit = sys.get_int_max_str_digits()
    if limit and digits > limit:  # int() would raise
        return _KeptText(text)
    value = int(text)
    if digits >= _FLOAT_DIGITS and abs(value) > _LARGEST_FLOAT:  # JavaScript reads it as Infinity
        return _KeptText(text)
    return value


def _collect_kept(value: Any) -> tuple[Any, list[OutOfRange]]:
    """Replace every kept number text in ``value`` by a plain string; list them in document order."""
    if type(value) is _KeptText:
        return str(value), [OutOfRange("", str(value))]
    found: list[OutOfRange] = []
    # Iterative and depth first, children pushed last first: document order, and
    # nesting as deep as json.loads allows cannot overflow the stack here.
    stack: list[tuple[Any, Any, str]] = []

    def push_children(node: Any, path: str) -> None:
        if isinstance(node, dict):
            stack.extend((node, key, key_path(path, key)) for key in reversed(list(node)))
        elif isinstance(node, list):
            stack.extend((node, index, f"{path}[{index}]") for index in reversed(range(len(node))))

    push_children(value, "")
    while stack:
        container, slot, path = stack.pop()
        item = container[slot]
        if type(item) is _KeptText:
            container[slot] = str(item)
            found.append(OutOfRange(path, str(item)))
        else:
            push_children(item, path)
    return value, found


def loads_strict(text: str) -> tuple[Any, list[OutOfRange]]:
    """Parse untrusted JSON text exactly; returns (value, the numbers kept as text).

    ``NaN``, ``Infinity`` and ``-Infinity`` are not JSON and raise
    :class:`ValueError` (``json.JSONDecodeError`` for a syntax error). A
    number out of range (``1e400``, an integer longer than Python reads or
    beyond a double) is kept as the string of its original text, and listed.
    A lone surrogate escape (``"\\ud800"``) stays in the value.
    """
    kept: list[Any] = []

    def parse_float(number: str) -> Any:
        value = _parse_float(number)
        if type(value) is _KeptText:
            kept.append(value)
        return value

    def parse_int(number: str) -> Any:
        value = _parse_int(number)
        if type(value) is _KeptText:
            kept.append(value)
        return value

    value = json.loads(text, parse_constant=_reject_constant, parse_float=parse_float, parse_int=parse_int)
    if not kept:  # the usual case: no walk over the whole value to find none
        return value, []
    return _collect_kept(value)
