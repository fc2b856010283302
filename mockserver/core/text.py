"""Text for people: untrusted text made safe to print in a terminal, counted nouns."""

from __future__ import annotations

import re

from mockserver.core.jsontext import escape_surrogates

# C0 and C1 controls (ESC starts terminal escape sequences) and DEL; tab stays.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """``text`` with control characters shown as ``\\xNN`` so a payload cannot
    move the cursor, recolour or retitle the user's terminal, and a lone
    surrogate as ``\\udXXX`` so the line can be written as UTF-8 at all."""
    return escape_surrogates(_CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text))


def plural(count: int | str, noun: str, nouns: str | None = None) -> str:
    """``"1 request"``, ``"2 requests"``, ``"1,024 records"``: a count with its noun agreeing.

    ``count`` may be the text of a number (a payload's ``resourceCount`` as shown);
    text that is not a whole number keeps the plural.
    """
    try:
        number = int(count)
    except (TypeError, ValueError):
        return f"{count} {nouns or noun + 's'}"
    shown = f"{number:,}" if isinstance(count, int) else str(count)
    return f"{shown} {noun if number == 1 else nouns or noun + 's'}"


def one_line(exc: BaseException) -> str:
    """An exception as one line: its message with every run of whitespace made one space, or its type
    when it has no message."""
    return " ".join(str(exc).split()) or type(exc).__name__
