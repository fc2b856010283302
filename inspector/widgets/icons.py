"""Icons: the application icon (shipped in ``inspector/resources``) and small drawn status marks.

Status marks are painted at run time in the palette's status colours, so
they match light and dark themes without shipping two sets of images.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPainterPath, QPen, QPixmap

from inspector.widgets import theme

RESOURCES = Path(__file__).resolve().parents[1] / "resources"
ICON_SVG = RESOURCES / "icon.svg"
ICON_PNG = RESOURCES / "icon.png"


def resource_path(name: str) -> Path:
    """A file shipped in ``inspector/resources`` (package data, so it works when installed)."""
    return RESOURCES / name


@lru_cache(maxsize=1)
def app_icon() -> QIcon:
    """The application icon: the SVG when Qt can render it, plus the PNG as a fallback size."""
    icon = QIcon()
    if ICON_PNG.exists():
        icon.addFile(str(ICON_PNG))
    if ICON_SVG.exists():
        icon.addFile(str(ICON_SVG))
    return icon


def _mark(colour: QColor, kind: str, size: int = 16) -> QPixmap:
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(colour)
    painter.drawEllipse(QRectF(1, 1, size - 2, size - 2))
    pen = QPen(QColor("#ffffff"), size / 8, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap,
               Qt.PenJoinStyle.RoundJoin)
    painter.setPen(pen)
    painter.setBrush(Qt.BrushStyle.NoBrush)
    s = size / 16
    if kind == "ok":  # a tick
        path = QPainterPath(QPointF(4.5 * s, 8.5 * s))
        path.lineTo(7 * s, 11 * s)
        path.lineTo(11.5 * s, 5.5 * s)
        painter.drawPath(path)
    elif kind == "invalid":  # a cross
        painter.drawLine(QPointF(5.5 * s, 5.5 * s), QPointF(10.5 * s, 10.5 * s))
        painter.drawLine(QPointF(10.5 * s, 5.5 * s), QPointF(5.5 * s, 10.5 * s))
    else:  # "note": an exclamation mark
        painter.drawLine(QPointF(8 * s, 4.5 * s), QPointF(8 * s, 8.8 * s))
        painter.drawPoint(QPointF(8 * s, 11.5 * s))
    painter.end()
    return pixmap


@lru_cache(maxsize=32)
def _status_icon(kind: str, colour: str) -> QIcon:
    icon = QIcon()
    for size in (16, 32):
        icon.addPixmap(_mark(QColor(colour), kind, size))
    return icon


def status_icon(status: str, scheme: theme.Scheme | None = None) -> QIcon:
    """A round tick (ok), cross (invalid) or exclamation mark (note) in the status colour."""
    scheme = scheme or theme.scheme()
    colour = {"ok": scheme.ok, "invalid": scheme.invalid}.get(status, scheme.note)
    return _status_icon(status if status in ("ok", "invalid") else "note", colour.name())
