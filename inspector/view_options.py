"""How the window shows things: redaction, presentation mode (larger text), the timeline, the theme.

Each choice is remembered in the window's settings; none of them changes the store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from inspector.widgets import theme
from inspector.widgets.models import COLUMN_COUNT
from mockserver.records.redact import Redactor

if TYPE_CHECKING:
    from inspector.window import MainWindow


class ViewOptions:
    """The window's view choices; ``window.redactor`` is set here (None when redaction is off)."""

    def __init__(self, window: MainWindow) -> None:
        self.window = window
        # One Redactor for the whole run, so a value keeps its token when toggled off and on.
        self._run_redactor: Redactor | None = None

    def set_redaction(self, on: bool) -> None:
        """Show pseudonyms for IP, hostname, email and projectId everywhere (remembered). The store is not changed."""
        on = bool(on)
        if on == (self.window.redactor is not None) and self.window.redact_action.isChecked() == on:
            return  # already so (the action and the check box both report a change)
        self.window.redactor = self.run_redactor() if on else None
        if self.window.redact_action.isChecked() != on:
            self.window.redact_action.setChecked(on)  # comes back here; harmless
        self.window.model.set_redactor(self.window.redactor)
        self.window.redacted_label.setVisible(on)
        self.update_redacted_badge()
        selection = self.window.selection
        if selection.current_id is not None:
            selection.show_record(selection.current_id)
        self.window.optout.refresh_view()
        if self.window.mode == "compare":
            self.window.update_compare()
        self.window.settings.setValue("view/redact", on)

    def set_presentation(self, on: bool, *, save: bool = True) -> None:
        """Presentation mode: every text larger (remembered)."""
        on = bool(on)
        self.apply_font_scale(theme.PRESENTATION_SCALE if on else 1.0, rescale_columns=True)
        if self.window.presentation_action.isChecked() != on:
            self.window.presentation_action.setChecked(on)
        if save:
            self.window.settings.setValue("view/presentation", on)

    def apply_font_scale(self, new: float, *, rescale_columns: bool) -> None:
        """Scale every text to ``new`` (columns and tree sections with it when ``rescale_columns``)."""
        app = QApplication.instance()
        old = theme.font_scale()
        if not isinstance(app, QApplication) or new == old:
            return
        theme.set_font_scale(app, new)
        theme.refresh_derived_fonts(self.window)
        if rescale_columns:
            header = self.window.table.horizontalHeader()
            for column in range(COLUMN_COUNT):
                if not header.isSectionHidden(column):
                    self.window.table.setColumnWidth(column, round(self.window.table.columnWidth(column) * new / old))
        for tree_header in (self.window.detail.collected.header(), self.window.compare.tree.header()):
            for column in range(tree_header.count() - 1):  # the last one stretches
                tree_header.resizeSection(column, round(tree_header.sectionSize(column) * new / old))
        # Item fonts follow the widgets' new fonts once Qt has delivered the change.
        QTimer.singleShot(0, self.window, self._after_font_change)

    def _after_font_change(self) -> None:
        self.window.detail.show_beacon(self.window.detail.beacon)
        self.window.optout.refresh_view()
        if self.window.mode == "compare":
            self.window.update_compare()

    def show_timeline(self, on: bool) -> None:
        """Show or hide the timeline strip (remembered)."""
        self.window.timeline.setVisible(bool(on) and self.window.model.total > 0)
        if on:
            self.window.timeline.schedule()
        self.window.settings.setValue("view/timeline", bool(on))

    def run_redactor(self) -> Redactor:
        """The run's one Redactor (made on first use): a value keeps its pseudonym all run long."""
        if self._run_redactor is None:
            self._run_redactor = Redactor()
        return self._run_redactor

    def set_theme(self, name: str) -> None:
        """Switch between the system, light and dark palettes (remembered)."""
        app = QApplication.instance()
        if isinstance(app, QApplication):
            theme.apply_theme(app, name)
        for key, action in self.window.theme_actions.items():
            action.setChecked(key == name)
        self.window.settings.setValue("view/theme", name)
        self.refresh_theme()

    def refresh_theme(self) -> None:
        """Re-pick the semantic colours after a palette change."""
        self.window.model.refresh_theme()
        self.window.detail.refresh_theme()
        self.window.optout.refresh_view()
        self.window.compare.refresh_theme()
        self.window.timeline.update()
        self.update_redacted_badge()
        self.window.server_panel.update_status()

    def update_redacted_badge(self) -> None:
        """The REDACTED badge in the theme's note colour."""
        pal = self.window.redacted_label.palette()
        pal.setColor(self.window.redacted_label.foregroundRole(), theme.scheme().note)
        self.window.redacted_label.setPalette(pal)
