"""What the window remembers between runs (QSettings): geometry, splitters, columns, toggles, theme.

The folders and the last app URL that jobs remember are written where they are chosen
(:mod:`inspector.window_jobs`); this module restores and saves the window's own state.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QByteArray

from inspector.widgets import theme
from inspector.widgets.models import COLUMN_COUNT

if TYPE_CHECKING:
    from inspector.window import MainWindow

ORGANIZATION = "refine-telemetry-inspector"
APPLICATION = "telemetry-inspector"
DESKTOP_FILE = "telemetry-inspector"


def flag(value: object, default: bool) -> bool:
    """A boolean from QSettings (INI files give back strings)."""
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    return str(value).lower() in ("true", "1")


def restore_settings(window: MainWindow) -> None:
    """Put back what ``window.settings`` remembers: geometry, splitters, columns and sort, presentation
    mode, follow, timeline, redaction and theme."""
    s = window.settings
    geometry = s.value("window/geometry")
    if isinstance(geometry, QByteArray) and not geometry.isEmpty():
        window.restoreGeometry(geometry)
    state = s.value("window/state")
    if isinstance(state, QByteArray) and not state.isEmpty():
        window.restoreState(state)
    for key, splitter in (("splitter/main", window.splitter), ("splitter/detail", window.detail.splitter)):
        value = s.value(key)
        if isinstance(value, QByteArray) and not value.isEmpty():
            splitter.restoreState(value)
    presentation = flag(s.value("view/presentation"), False)
    header = s.value("table/header")
    restored_header = False
    if isinstance(header, QByteArray) and not header.isEmpty():
        window.table.horizontalHeader().restoreState(header)  # widths as saved, at the saved text size
        restored_header = window.table.horizontalHeader().count() == COLUMN_COUNT
        if not restored_header:
            window.table.apply_default_widths()
        # Re-apply the restored sort to our model.
        h = window.table.horizontalHeader()
        window.model.sort(h.sortIndicatorSection(), h.sortIndicatorOrder())
    if presentation:
        window.view_options.apply_font_scale(theme.PRESENTATION_SCALE, rescale_columns=not restored_header)
        window.presentation_action.blockSignals(True)
        window.presentation_action.setChecked(True)
        window.presentation_action.blockSignals(False)
    follow = s.value("view/follow")
    if follow is not None:
        window.follow_action.setChecked(flag(follow, True))
    window.timeline_action.setChecked(flag(s.value("view/timeline"), True))
    if flag(s.value("view/redact"), False):
        window.redact_action.setChecked(True)
    name = str(s.value("view/theme", "system"))
    for key, action in window.theme_actions.items():
        action.setChecked(key == (name if name in theme.THEMES else "system"))


def save_settings(window: MainWindow) -> None:
    """Remember geometry, splitters, columns and toggles."""
    s = window.settings
    s.setValue("window/geometry", window.saveGeometry())
    s.setValue("window/state", window.saveState())
    s.setValue("splitter/main", window.splitter.saveState())
    s.setValue("splitter/detail", window.detail.splitter.saveState())
    s.setValue("table/header", window.table.horizontalHeader().saveState())
    s.setValue("view/follow", window.follow_action.isChecked())
    s.sync()
