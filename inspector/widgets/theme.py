"""Colours that read well on both light and dark palettes.

Widgets take their colours from the palette (roles, not literal black or
white); the few semantic colours (ok / invalid / note, JSON tokens) come in
a light and a dark variant chosen by the palette's window lightness.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont, QFontDatabase, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication, QStyleFactory, QWidget

W = TypeVar("W", bound=QWidget)

THEMES = ("system", "light", "dark")
PRESENTATION_SCALE = 1.4  # presentation mode: every text this much larger
_FONT_ROLE = "inspectorFontRole"  # dynamic property: (scale, bold, mono) of a widget's derived font


@dataclass(frozen=True)
class Scheme:
    """Semantic colours for one palette brightness."""

    dark: bool
    ok: QColor
    invalid: QColor
    note: QColor
    json_key: QColor
    json_string: QColor
    json_number: QColor
    json_literal: QColor
    muted: QColor


_LIGHT = dict(ok="#1a7f37", invalid="#cf222e", note="#9a6700", json_key="#0550ae",
              json_string="#116329", json_number="#953800", json_literal="#8250df", muted="#6e7781")
_DARK = dict(ok="#3fb950", invalid="#ff7b72", note="#d29922", json_key="#79c0ff",
             json_string="#7ee787", json_number="#ffa657", json_literal="#d2a8ff", muted="#8b949e")


def is_dark(palette: QPalette | None = None) -> bool:
    """True when the window background is darker than mid-grey."""
    palette = palette or QGuiApplication.palette()
    return palette.color(QPalette.ColorRole.Window).lightness() < 128


def scheme(palette: QPalette | None = None) -> Scheme:
    """The semantic colours for ``palette`` (the application's by default)."""
    dark = is_dark(palette)
    values = _DARK if dark else _LIGHT
    return Scheme(dark=dark, **{k: QColor(v) for k, v in values.items()})


def dark_palette() -> QPalette:
    """A neutral dark palette (used when the user asks for dark explicitly)."""
    p = QPalette()
    role = QPalette.ColorRole
    colours = {
        role.Window: "#1f2328", role.WindowText: "#e6edf3", role.Base: "#161a1f",
        role.AlternateBase: "#1c2127", role.ToolTipBase: "#2d333b", role.ToolTipText: "#e6edf3",
        role.PlaceholderText: "#8b949e", role.Text: "#e6edf3", role.Button: "#2a3038",
        role.ButtonText: "#e6edf3", role.BrightText: "#ffffff", role.Light: "#3d444d",
        role.Midlight: "#30363d", role.Mid: "#262c33", role.Dark: "#14171b", role.Shadow: "#0a0c0e",
        role.Highlight: "#2f6feb", role.HighlightedText: "#ffffff", role.Link: "#58a6ff",
        role.LinkVisited: "#bc8cff",
    }
    for r, c in colours.items():
        p.setColor(r, QColor(c))
    disabled = QPalette.ColorGroup.Disabled
    for r in (role.WindowText, role.Text, role.ButtonText):
        p.setColor(disabled, r, QColor("#6e7681"))
    p.setColor(disabled, role.Highlight, QColor("#30363d"))
    return p


_original: tuple[str, QPalette] | None = None  # the platform's style and palette, before we changed them


def apply_theme(app: QApplication, theme: str) -> None:
    """Apply ``system`` (the platform's look), ``light`` or ``dark``."""
    global _original
    if theme not in THEMES:
        raise ValueError(f"theme must be one of {', '.join(THEMES)}; got {theme!r}")
    if theme == "system":
        if _original is not None:
            app.setStyle(_original[0])
            app.setPalette(_original[1])
            hints = app.styleHints()
            if hasattr(hints, "unsetColorScheme"):
                hints.unsetColorScheme()
        return
    if _original is None:
        _original = (app.style().name(), QPalette(app.palette()))
    app.setStyle("Fusion")  # the same look everywhere once we pick the colours
    if theme == "dark":
        app.setPalette(dark_palette())
        hints = app.styleHints()
        if hasattr(hints, "setColorScheme"):
            hints.setColorScheme(Qt.ColorScheme.Dark)
    else:
        style = QStyleFactory.create("Fusion")
        app.setPalette(style.standardPalette())
        hints = app.styleHints()
        if hasattr(hints, "setColorScheme"):
            hints.setColorScheme(Qt.ColorScheme.Light)


# -- text size (presentation mode) ------------------------------------------------

_base_font: QFont | None = None  # the application font before any scaling
_scale = 1.0


def font_scale() -> float:
    """The current text scale (1.0 normally, :data:`PRESENTATION_SCALE` in presentation mode)."""
    return _scale


def set_font_scale(app: QApplication, scale: float) -> None:
    """Make every text ``scale`` times its normal size (application font and derived fonts).

    Widgets whose font was set with :func:`derive_font` are re-derived by
    :func:`refresh_derived_fonts`; everything else follows the application font.
    """
    global _base_font, _scale
    if _base_font is None:
        _base_font = QFont(app.font())
    _scale = scale
    font = QFont(_base_font)
    if _base_font.pointSizeF() > 0:
        font.setPointSizeF(_base_font.pointSizeF() * scale)
    else:
        font.setPixelSize(max(1, round(_base_font.pixelSize() * scale)))
    app.setFont(font)


def monospace() -> QFont:
    """The system's fixed-width font at the current text scale."""
    font = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
    if font.pointSizeF() > 0:
        font.setPointSizeF(font.pointSizeF() * _scale)
    return font


def _derived(scale: float, bold: bool, mono: bool) -> QFont:
    font = monospace() if mono else QFont(QApplication.font())
    if scale != 1.0 and font.pointSizeF() > 0:
        font.setPointSizeF(font.pointSizeF() * scale)
    if bold:
        font.setBold(True)
    return font


def derive_font(widget: W, scale: float = 1.0, *, bold: bool = False, mono: bool = False) -> W:
    """Give ``widget`` a font relative to the application font (bigger, bold, fixed-width),
    remembered so presentation mode can scale it too. Returns ``widget``."""
    widget.setProperty(_FONT_ROLE, [float(scale), bool(bold), bool(mono)])
    widget.setFont(_derived(scale, bold, mono))
    return widget


def refresh_derived_fonts(root: QWidget) -> None:
    """Re-derive the fonts of ``root`` and its descendants after the text scale changed."""
    for widget in [root, *root.findChildren(QWidget)]:
        role = widget.property(_FONT_ROLE)
        if role:
            scale, bold, mono = role
            widget.setFont(_derived(float(scale), bool(bold), bool(mono)))
