"""Text for people: untrusted text made safe to print in a terminal, counted nouns, the one form of a
command's messages on stderr."""

from __future__ import annotations

import re

from mockserver.core.config import APP_NAME
from mockserver.core.jsontext import escape_surrogates

# C0 and C1 controls (ESC starts terminal escape sequences) and DEL; tab stays.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")
# Where str.splitlines() breaks a line, with the blanks around it.
_LINE_BREAKS = re.compile(r"\s*[\r\n\v\f\x1c-\x1e\x85\u2028\u2029]+\s*")


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


def size_text(size: int) -> str:
    """A byte count as people read it: ``64 MiB``, ``4.5 KiB``, ``12 bytes``."""
    for unit, scale in (("MiB", 1024 * 1024), ("KiB", 1024)):
        if size >= scale:
            return f"{size / scale:.1f}".removesuffix(".0") + f" {unit}"
    return f"{size} bytes"


def one_line(exc: BaseException) -> str:
    """An exception as one line: its message with every run of whitespace made one space, or its type
    when it has no message."""
    return " ".join(str(exc).split()) or type(exc).__name__


def command_message(command: str | None, message: str) -> str:
    """What a command says about itself on stderr (an error, a warning), in the one form every command
    and the window use: ``telemetry-inspector COMMAND: message``, or ``telemetry-inspector: message``
    without a command (the window, or a command line that names none). Always one line: a line break
    in ``message`` becomes a space."""
    prefix = f"{APP_NAME} {command}" if command else APP_NAME
    return f"{prefix}: {_LINE_BREAKS.sub(' ', message).strip()}"
