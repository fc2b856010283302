"""'Copy as Markdown': the "What was collected" card as Markdown tables, like the docs page.

Built from :func:`mockserver.records.collected.collected_fields`, one table per
section in the docs page's order (application attributes, from the request
headers, contact information; other endpoints' sections first). Every piece
of text, including what a client sent, is escaped so the Markdown shows it
literally: it cannot inject HTML, links, emphasis, GitHub @-mentions or
issue references, or break the table. That holds under GitHub-flavoured
Markdown too: no autolink (``https://``, ``www.``, emails), math (``$``) or
emoji (``:smile:``) forms from a value. Pass a redacted record (see
:mod:`mockserver.records.redact`) to copy without identifying values.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from mockserver.core.beacon import Beacon
from mockserver.core.text import printable
from mockserver.records.collected import CollectedField, collected_fields

COLUMNS = ("Value", "Sent", "Source", "On the docs page", "Description")

# Inline Markdown/GFM syntax characters (cells hold inline content only),
# each escaped with a backslash: '|' would end the cell; ':' stops GFM's
# scheme autolinks (https://, mailto:) and '$' math; the '.' after "www"
# stops www. autolinks. A backslash escape renders as the character itself.
_SPECIAL = re.compile(r"(?i)[\\`*_\[\]()<>&|~!#@$:]|(?<=www)\.")
# Email autolinks, @-mentions, #123 references and :emoji: are found in the
# rendered text, where escapes are gone: an empty HTML comment (invisible;
# a sanitizer removes it but the text stays split) follows the '@', '#' or
# opening ':' so no such form is whole. Digits-only ":00:" (times) is no emoji.
_BREAK = "<!-- -->"
_BREAK_AFTER = {"@": re.compile(r"[\w.+-]"), "#": re.compile(r"\d"),
                ":": re.compile(r"[\w+-]*[A-Za-z_+-][\w+-]*:")}


def _escaped(match: re.Match[str]) -> str:
    char = match.group()
    follows = _BREAK_AFTER.get(char)
    split = follows is not None and follows.match(match.string, match.end()) is not None
    return "\\" + char + (_BREAK if split else "")


def _visible(text: str) -> str:
    """Controls as \\xNN (no line breaks inside a row), invisible format characters
    (bidi overrides, zero-width), lone surrogates and line/paragraph separators as \\uXXXX."""
    text = printable(text)
    return "".join(f"\\u{ord(ch):04x}" if unicodedata.category(ch) in ("Cf", "Cs", "Zl", "Zp") else ch for ch in text)


def escape_markdown(text: str) -> str:
    """``text`` as literal Markdown inline text, safe inside a table cell."""
    return _SPECIAL.sub(_escaped, _visible(text))


def _sent(value: str | None) -> str:
    if value is None:
        return "*(not sent)*"
    if value == "":
        return "*(empty)*"
    return escape_markdown(value)


def fields_markdown(fields: Sequence[CollectedField]) -> str:
    """The rows as one Markdown table per section (``####`` heading each), sections in order."""
    sections: dict[str, list[CollectedField]] = {}
    for row in fields:
        sections.setdefault(row.section, []).append(row)
    blocks = []
    for section, rows in sections.items():
        lines = [f"#### {escape_markdown(section)}", "",
                 "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
        for row in rows:
            cells = (escape_markdown(row.name), _sent(row.value), escape_markdown(row.source),
                     "yes" if row.documented else "no", escape_markdown(row.explanation))
            lines.append("| " + " | ".join(cells) + " |")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def collected_markdown(beacon: Beacon, *, heading: bool = True) -> str:
    """The record's "What was collected" card as Markdown (what "Copy as Markdown" puts on the clipboard)."""
    body = fields_markdown(collected_fields(beacon))
    if not heading:
        return body
    what = f"#{beacon.id} " if beacon.id is not None else ""
    title = escape_markdown(f"What was collected: {what}{beacon.kind} {beacon.request.method} "
                            f"{beacon.request.path}, {beacon.received_at}")
    return f"### {title}\n\n{body}"
