"""Syntax colouring for plain-text editors (no HTML anywhere: untrusted text stays text)."""

from __future__ import annotations

import re

from PySide6.QtGui import QColor, QFont, QSyntaxHighlighter, QTextCharFormat, QTextDocument

from inspector.widgets import theme


def _format(colour: QColor, bold: bool = False) -> QTextCharFormat:
    fmt = QTextCharFormat()
    fmt.setForeground(colour)
    if bold:
        fmt.setFontWeight(QFont.Weight.Bold)
    return fmt


class JsonHighlighter(QSyntaxHighlighter):
    """Colours keys, strings, numbers and true/false/null of pretty-printed JSON, line by line."""

    _STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
    _KEY = re.compile(r'"(?:[^"\\]|\\.)*"(?=\s*:)')
    _NUMBER = re.compile(r"-?\b\d+(?:\.\d+)?(?:[eE][+-]?\d+)?\b")
    _LITERAL = re.compile(r"\b(?:true|false|null)\b")

    def __init__(self, document: QTextDocument) -> None:
        super().__init__(document)
        self.refresh_theme(rehighlight=False)

    def refresh_theme(self, rehighlight: bool = True) -> None:
        """Pick token colours for the current palette."""
        s = theme.scheme()
        self._formats = {
            "number": _format(s.json_number), "literal": _format(s.json_literal),
            "string": _format(s.json_string), "key": _format(s.json_key, bold=True),
        }
        if rehighlight:
            self.rehighlight()

    def highlightBlock(self, text: str) -> None:  # noqa: N802 - Qt override
        # Later rules win: a digit inside a string ends up string-coloured.
        for name, pattern in (("number", self._NUMBER), ("literal", self._LITERAL),
                              ("string", self._STRING), ("key", self._KEY)):
            fmt = self._formats[name]
            for match in pattern.finditer(text):
                self.setFormat(match.start(), match.end() - match.start(), fmt)


class RawRequestHighlighter(QSyntaxHighlighter):
    """Request line in bold, header names coloured, body left plain."""

    _HEADER = re.compile(r"^([A-Za-z0-9!#$%&'*+.^_`|~-]+):")

    def __init__(self, document: QTextDocument) -> None:
        super().__init__(document)
        self.refresh_theme(rehighlight=False)

    def refresh_theme(self, rehighlight: bool = True) -> None:
        """Pick colours for the current palette."""
        s = theme.scheme()
        self._name = _format(s.json_key, bold=True)
        self._first = QTextCharFormat()
        self._first.setFontWeight(QFont.Weight.Bold)
        if rehighlight:
            self.rehighlight()

    def highlightBlock(self, text: str) -> None:  # noqa: N802 - Qt override
        # Block state: 0 = request line or headers, 1 = body (after the blank line).
        if self.currentBlock().blockNumber() == 0:
            self.setFormat(0, len(text), self._first)
            self.setCurrentBlockState(0)
            return
        if self.previousBlockState() == 1 or text == "":
            self.setCurrentBlockState(1)
            return
        match = self._HEADER.match(text)
        if match:
            self.setFormat(0, match.end(1), self._name)
        self.setCurrentBlockState(0)
