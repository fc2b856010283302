"""Untrusted text in Qt widgets, shown exactly as it is: never as HTML.

Qt guesses. A QLabel or QMessageBox in its default ``Qt.AutoText`` format, a
tooltip and a What's This text are rendered as HTML (images, links and headings
included) when ``Qt.mightBeRichText`` finds a known tag or ``&lt;`` in their
first line. Every record comes from the network, so labels and message boxes
here are switched to plain text, and tooltips, which have no such switch, are
escaped into one fixed rich form that Qt always renders literally.
"""

from __future__ import annotations

import html

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QMessageBox, QWidget

# Always rich (a <p> is a known tag), so Qt never guesses; pre-wrap keeps newlines and runs of
# spaces as they are and still lets a long line wrap.
_TOOLTIP = "<p style='white-space:pre-wrap'>{}</p>"


def plain_tooltip(text: str | None) -> str:
    """``text`` as a tooltip that Qt shows literally, markup and entities included ("" for no tooltip).

    Making the text look plain to ``Qt.mightBeRichText`` instead would depend
    on a heuristic that looks at the first line only and may change between Qt
    versions; escaped text in a known rich form renders the same everywhere.
    """
    if not text:
        return ""
    return _TOOLTIP.format(html.escape(text, quote=False))


def plain_label(text: str = "", parent: QWidget | None = None) -> QLabel:
    """A QLabel that never interprets its text as HTML."""
    label = QLabel(parent)
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setText(text)
    return label


def plain_message_box(icon: QMessageBox.Icon, title: str, text: str,
                      buttons: QMessageBox.StandardButton = QMessageBox.StandardButton.Ok,
                      parent: QWidget | None = None) -> QMessageBox:
    """A QMessageBox whose text is shown as plain text (its title always is)."""
    box = QMessageBox(icon, title, text, buttons, parent)
    box.setTextFormat(Qt.TextFormat.PlainText)
    return box


__all__ = ["plain_label", "plain_message_box", "plain_tooltip"]
