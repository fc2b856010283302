"""The lower pane's modes: Details (one record), Opt-out check (a live verdict), Compare (two records).

Which page shows, when the pane shows at all, starting the opt-out check, and the comparison of
the two selected records.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QTimer

from inspector.actions import MODES
from mockserver.storage.store import StoreError

if TYPE_CHECKING:
    from inspector.window import MainWindow


class LowerPaneModes:
    """The lower pane's mode (``mode``) and what each mode needs from the window."""

    def __init__(self, window: MainWindow) -> None:
        self.window = window
        self.mode = "details"
        self.compare_swapped = False
        self.compare_timer = QTimer(window)
        self.compare_timer.setSingleShot(True)
        self.compare_timer.setInterval(0)
        self.compare_timer.timeout.connect(self.update_compare)

    def set_mode(self, name: str) -> None:
        """Show ``details``, ``optout`` or ``compare`` in the lower pane.

        Opening the opt-out check the first time starts watching.
        """
        if name not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}; got {name!r}")
        self.mode = name
        self.window.mode_actions[name].setChecked(True)
        window = self.window
        pages = {"details": window.detail, "optout": window.optout, "compare": window.compare}
        window.bottom.setCurrentWidget(pages[name])
        if name == "optout" and self.window.optout.watch is None:
            self.start_opt_out_check()
        if name == "compare":
            self.update_compare()
        self.update_visibility()

    def update_visibility(self) -> None:
        """The lower pane shows once there is a record, or while a check or a comparison is open."""
        self.window.bottom.setVisible(self.window.model.total > 0 or self.mode != "details")

    def start_opt_out_check(self) -> bool:
        """(Re)start the opt-out check: only requests from now on count."""
        listening = self.window.server.listening if self.window.server is not None else None
        if listening is None:
            self.window.report_error("Cannot start the opt-out check",
                              "The server is stopped, so nothing could arrive: start it first (Server ▸ Start server).")
            return False
        if self.mode != "optout":
            self.mode = "optout"
            self.window.mode_actions["optout"].setChecked(True)
            self.window.bottom.setCurrentWidget(self.window.optout)
            self.update_visibility()
        started = self.window.optout.restart()
        if started and not listening.https_port:
            self.window.flash("Opt-out check started, but HTTPS is off: a browser's beacon cannot reach the inspector")
        elif started:
            self.window.flash("Opt-out check started: reload your app now")
        return started

    def stop_opt_out_check(self) -> None:
        """Stop watching; the verdict stays."""
        self.window.optout.stop()

    def on_optout_state(self) -> None:
        """The opt-out mode's action says the check's state."""
        self.window.mode_actions["optout"].setText(self.window.optout.mode_text())

    def update_compare(self) -> None:
        """Compare the two selected records (oldest first unless swapped)."""
        ids = self.window.selected_ids()
        if len(ids) != 2:
            self.window.compare.set_records(None, None)
            if len(ids) > 2:
                self.window.compare.title.setText(f"Compare: {len(ids)} records are selected; select exactly two")
            return
        try:
            a, b = (self.window.store.get(i) for i in ids)
        except StoreError as exc:
            self.window.report_error("Cannot read the records", str(exc))
            return
        if a is None or b is None:
            self.window.compare.set_records(None, None)
            return
        if self.compare_swapped:
            a, b = b, a
        self.window.compare.set_records(self.window.present(a), self.window.present(b))

    def swap_compare(self) -> None:
        """Swap the compared records' sides."""
        self.compare_swapped = not self.compare_swapped
        self.update_compare()

    def on_selection_changed(self, *_args: object) -> None:
        """A comparison follows the selection (once per turn of the event loop)."""
        if self.mode == "compare":
            self.compare_timer.start()
