"""Which record the window shows: the table's selection, the detail card, and the commands on
records (delete the selected, clear all, start a new session)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from PySide6.QtCore import QModelIndex
from PySide6.QtWidgets import QMessageBox

from mockserver.core.clock import parse_iso
from mockserver.core.text import plural
from mockserver.storage.store import StoreError

if TYPE_CHECKING:
    from inspector.window import MainWindow


def _moment(iso: str) -> datetime | None:
    try:
        return parse_iso(iso)
    except ValueError:
        return None


class RecordSelection:
    """The shown record (``current_id``) and the selection's commands."""

    def __init__(self, window: MainWindow) -> None:
        self.window = window
        self.current_id: int | None = None

    def on_current_row(self, current: QModelIndex, _previous: QModelIndex) -> None:
        """The table's current row moved: show its record."""
        if not current.isValid():
            return
        record_id = self.window.model.record_id(current.row())
        if record_id == self.current_id and self.window.detail.beacon is not None:
            return
        self.show_record(record_id)

    def show_record(self, record_id: int | None) -> None:
        """Load one record from the store into the detail pane (redacted when redaction is on)."""
        self.current_id = record_id
        beacon = None
        if record_id is not None:
            try:
                beacon = self.window.store.get(record_id)
            except StoreError as exc:
                self.window.report_error("Cannot read the record", str(exc))
        self.window.detail.show_beacon(self.window.present(beacon) if beacon is not None else None)
        self.window.timeline.set_marker(_moment(beacon.received_at) if beacon is not None else None)

    def show_record_details(self, record_id: int) -> None:
        """Select ``record_id`` and show it in the Details mode."""
        if self.select_or_say(record_id):
            self.window.set_mode("details")

    def select_record(self, record_id: int) -> bool:
        """Select and show ``record_id`` in the table (False when it is filtered out)."""
        row = self.window.model.row_of(record_id)
        if row is None:
            return False
        self.window.table.selectRow(row)
        self.window.table.setCurrentIndex(self.window.model.index(row, 0))
        self.window.table.scrollTo(self.window.model.index(row, 0))
        self.show_record(record_id)
        return True

    def restore_selection(self) -> None:
        """After the model was reset: select the shown record again, or let it go when it is gone."""
        if self.current_id is None:
            return
        row = self.window.model.row_of(self.current_id)
        if row is not None:
            self.window.table.selectionModel().setCurrentIndex(
                self.window.model.index(row, 0),
                self.window.table.selectionModel().SelectionFlag.ClearAndSelect
                | self.window.table.selectionModel().SelectionFlag.Rows)
        elif self.window.detail.beacon is not None:
            try:
                still_there = self.window.store.get(self.current_id) is not None
            except StoreError:
                still_there = False
            if not still_there:
                self.show_record(None)

    def selected_ids(self) -> list[int]:
        """Record ids of the selected rows."""
        rows = {index.row() for index in self.window.table.selectionModel().selectedRows()}
        return sorted(self.window.model.record_id(row) for row in rows)

    def delete_selected(self, confirm: bool = True) -> int:
        """Delete the selected records (asks first when more than one)."""
        ids = self.selected_ids()
        if not ids:
            return 0
        if confirm and len(ids) > 1:
            answer = QMessageBox.question(self.window, "Delete records",
                                          f"Delete {len(ids)} records from the database? This cannot be undone.")
            if answer != QMessageBox.StandardButton.Yes:
                return 0
        try:
            removed = self.window.store.delete(ids)
        except StoreError as exc:
            self.window.report_error("Cannot delete", str(exc))
            return 0
        self.window.flash(f"Deleted {plural(removed, 'record')}")
        return removed

    def clear_all(self, confirm: bool = True) -> int:
        """Delete every record (after a confirmation)."""
        total = self.window.model.total
        if confirm:
            answer = QMessageBox.question(
                self.window, "Clear all records",
                f"Delete all {total} records from {self.window.store.path}? Sessions are kept; this cannot be undone.")
            if answer != QMessageBox.StandardButton.Yes:
                return 0
        try:
            removed = self.window.store.clear()
        except StoreError as exc:
            self.window.report_error("Cannot clear the database", str(exc))
            return 0
        self.show_record(None)
        self.window.flash(f"Cleared {plural(removed, 'record')}")
        return removed

    def select_or_say(self, record_id: int) -> bool:
        """Select ``record_id`` in the table, or say why it cannot be."""
        if self.window.model.row_of(record_id) is None:
            self.window.bridge.drain()  # the verdict can be quicker than the table's next batch
        if self.select_record(record_id):
            return True
        self.window.flash(f"#{record_id} is hidden by the filter; clear the filter to see it")
        return False

    def new_session(self) -> None:
        """Start a new session: later records are grouped under it."""
        try:
            self.window.store.new_session()
        except StoreError as exc:
            self.window.report_error("Cannot start a new session", str(exc))
