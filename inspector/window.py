"""The main window: it composes the parts and wires their signals.

The parts, each in a module of its own: the filter bar (:mod:`inspector.filter_bar`), the table and
the empty state (:mod:`inspector.widgets`), the lower pane's pages (:mod:`inspector.panes`) and
modes (:mod:`inspector.modes`), the server panel (:mod:`inspector.server_panel`), the actions and
menus (:mod:`inspector.actions`), reading the journal in steps (:mod:`inspector.loading`), the
background jobs (:mod:`inspector.window_jobs`), the view options (:mod:`inspector.view_options`)
and what is remembered (:mod:`inspector.settings`). What stays here: live updates, selection and
the detail card, deleting, messages, closing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QEvent, QSettings, Qt, QThreadPool
from PySide6.QtGui import (
    QAction,
    QActionGroup,
    QCloseEvent,
    QDragEnterEvent,
    QDragMoveEvent,
    QDropEvent,
)
from PySide6.QtWidgets import (
    QApplication,
    QCheckBox,
    QMainWindow,
    QMessageBox,
    QSplitter,
    QStackedWidget,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from inspector.actions import build_actions, build_menus, build_toolbars
from inspector.bridge import StoreBridge
from inspector.dialogs.about import AboutDialog
from inspector.dialogs.composer import ComposerDialog
from inspector.dialogs.export import ExportDialog
from inspector.dialogs.server import RoutingHelpDialog
from inspector.filter_bar import FilterBar
from inspector.geometry import place_new_window
from inspector.jobs import Job
from inspector.loading import JournalLoader
from inspector.modes import LowerPaneModes
from inspector.panes.compare import ComparePanel
from inspector.panes.detail import DetailPane
from inspector.panes.optout import OptOutPanel
from inspector.panes.routeproof import RouteProver, probe_waiter
from inspector.panes.timeline import TimelineStrip
from inspector.record_selection import RecordSelection
from inspector.server_panel import ServerPanel
from inspector.settings import APPLICATION, ORGANIZATION, restore_settings, save_settings
from inspector.view_options import ViewOptions
from inspector.widgets import theme
from inspector.widgets.empty_state import EmptyState
from inspector.widgets.icons import app_icon
from inspector.widgets.models import BeaconTableModel, Column
from inspector.widgets.plaintext import plain_label, plain_message_box
from inspector.widgets.status_bar import FittingStatusBar
from inspector.widgets.table import BeaconTable, CurrentPageStack
from inspector.window_jobs import WindowJobs
from mockserver.core.beacon import Beacon
from mockserver.core.config import DISPLAY_NAME
from mockserver.core.text import plural
from mockserver.records.redact import Redactor
from mockserver.serving.server import InspectorServer
from mockserver.storage.store import BeaconStore, StoreError

log = logging.getLogger(__name__)


class MainWindow(QMainWindow):
    """refine Telemetry Inspector's main window over one store and one server."""

    # Made by inspector.actions from its tables: one attribute per ActionSpec id.
    find_action: QAction
    copy_json_action: QAction
    copy_url_action: QAction
    copy_curl_action: QAction
    copy_record_action: QAction
    copy_markdown_action: QAction
    compare_selected_action: QAction
    delete_action: QAction
    new_session_action: QAction
    clear_action: QAction
    follow_action: QAction
    timeline_action: QAction
    start_action: QAction
    ports_action: QAction
    routing_action: QAction
    browser_action: QAction
    compose_action: QAction
    import_action: QAction
    export_action: QAction
    save_window_action: QAction
    save_card_action: QAction
    redact_action: QAction
    presentation_action: QAction
    about_action: QAction
    quit_action: QAction
    theme_actions: dict[str, QAction]
    mode_actions: dict[str, QAction]
    mode_group: QActionGroup
    follow_box: QCheckBox
    redact_box: QCheckBox
    main_toolbar: QToolBar

    def __init__(self, store: BeaconStore, server: InspectorServer | None, *,
                 settings: QSettings | None = None, start_server: bool = True,
                 clock: Callable[[], float] | None = None) -> None:
        super().__init__()
        self.store = store
        self.server = server
        self.settings = settings if settings is not None else QSettings(ORGANIZATION, APPLICATION)
        self.last_error: str | None = None
        self._message_box: QMessageBox | None = None
        # Background work: one pool per window, so closing waits for exactly its own jobs.
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(4)
        self.window_jobs = WindowJobs(self)
        self.browsers = self.window_jobs.browsers  # the routed browsers this window started
        self.route_prover = RouteProver(self.pool, self.browsers, self.window_jobs.browsers_lock,
                                        lambda: probe_waiter(self.server), lambda: getattr(self.server, "egress", None))
        self.closing = False
        self.redactor: Redactor | None = None  # set by view_options while redaction is on
        self.view_options = ViewOptions(self)
        self.modes = LowerPaneModes(self)
        self.selection = RecordSelection(self)

        self.setWindowTitle(DISPLAY_NAME)
        self.setWindowIcon(app_icon())
        place_new_window(self)  # at most 90 % of the screen; saved settings may replace it
        self.setAcceptDrops(True)  # HAR files dropped anywhere on the window are imported

        # Widgets are built at the normal text size; presentation mode is applied with the settings.
        app = QApplication.instance()
        if isinstance(app, QApplication) and theme.font_scale() != 1.0:
            theme.set_font_scale(app, 1.0)

        self.model = BeaconTableModel(store, self)
        self.bridge = StoreBridge(store, self)
        self._clock = clock

        self.server_panel = ServerPanel(self)
        self._build_table_area()
        self.toolbar = FilterBar(self.model, store)
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, self.toolbar)
        self.filter_edit = self.toolbar.filter_edit  # the parts tests and the screenshot read
        self.kind_combo = self.toolbar.kind_combo
        self.status_combo = self.toolbar.status_combo
        self.session_combo = self.toolbar.session_combo
        self._build_status_bar()
        build_actions(self)
        build_toolbars(self)
        build_menus(self)
        self.loader = JournalLoader(store, self.model, self.statusBar(), sessions_changed=self.toolbar.refresh_sessions,
                                    report_error=self.report_error, parent=self)

        self.bridge.appended.connect(self._on_appended)
        self.bridge.reset.connect(self._on_store_reset)
        self.bridge.removed.connect(self._on_store_removed)
        self.bridge.sessionStarted.connect(self._on_session_started)
        self.model.countsChanged.connect(self._on_counts)
        self.model.rowsAppended.connect(self._on_rows_appended)
        self.model.rowsAppended.connect(self._chart_batch)
        self.model.modelReset.connect(self.selection.restore_selection)
        # The timeline charts the shown set: a reset changes it (a re-sort only reorders it; appended
        # rows are added one batch at a time, in _chart_batch).
        self.model.modelReset.connect(self.timeline.schedule)
        self.table.selectionModel().currentRowChanged.connect(self.selection.on_current_row)
        self.table.selectionModel().selectionChanged.connect(self.modes.on_selection_changed)
        self.detail.message.connect(self.flash)

        self.loader.load()
        restore_settings(self)
        if start_server and server is not None:
            self.server_panel.start()
        else:
            self.server_panel.update_status()

    # -- construction ---------------------------------------------------------

    def _build_table_area(self) -> None:
        self.table = BeaconTable()
        self.table.setModel(self.model)
        self.table.apply_default_widths()
        self.table.sortByColumn(Column.ID, Qt.SortOrder.AscendingOrder)

        self.empty = EmptyState()
        self.empty.routing.clicked.connect(self.show_routing_help)
        self.empty.browser.clicked.connect(lambda: self.open_routed_browser())
        self.table_stack = CurrentPageStack()
        self.table_stack.addWidget(self.empty)
        self.table_stack.addWidget(self.table)

        self.timeline = TimelineStrip(self.model.shown_summaries, count=self.model.rowCount)
        self.timeline.bucketClicked.connect(self.selection.select_record)
        top = QWidget()
        top_layout = QVBoxLayout(top)
        top_layout.setContentsMargins(0, 0, 0, 0)
        top_layout.setSpacing(0)
        top_layout.addWidget(self.timeline)
        top_layout.addWidget(self.table_stack, 1)
        self.top_area = top

        self.detail = DetailPane(self.server_panel.http_base)
        clock_option: dict[str, Any] = {"clock": self._clock} if self._clock else {}
        self.optout = OptOutPanel(self.store, self.present, prover=self.route_prover, **clock_option)
        self.optout.recordClicked.connect(self.selection.select_or_say)
        self.optout.recordActivated.connect(self.selection.show_record_details)
        self.optout.stateChanged.connect(self.modes.on_optout_state)
        self.compare = ComparePanel()
        self.compare.swapRequested.connect(self.modes.swap_compare)
        self.bottom = QStackedWidget()
        self.bottom.setObjectName("lowerPane")
        for page in (self.detail, self.optout, self.compare):
            self.bottom.addWidget(page)

        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.setObjectName("mainSplitter")
        self.splitter.setChildrenCollapsible(False)
        self.splitter.addWidget(self.top_area)
        self.splitter.addWidget(self.bottom)
        self.splitter.setStretchFactor(0, 1)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([320, 430])
        self.setCentralWidget(self.splitter)

    def _build_status_bar(self) -> None:
        status = FittingStatusBar(self)  # long messages cut with … rather than clipped by the widgets
        self.setStatusBar(status)
        status.setSizeGripEnabled(True)
        self.server_label = self.server_panel.label  # the parts tests and the screenshot read
        self.pin_button = self.server_panel.pin_button
        self.start_button = self.server_panel.start_button
        self.counts_label = plain_label()
        self.counts_label.setObjectName("counts")
        self.redacted_label = theme.derive_font(plain_label("REDACTED"), bold=True)
        self.redacted_label.setObjectName("redactedBadge")
        self.redacted_label.setToolTip("IP addresses, hostnames, emails and projectIds are shown as pseudonyms "
                                       "(View ▸ Redact); the database keeps the real values")
        self.redacted_label.setVisible(False)
        panel = self.server_panel
        for widget in (self.redacted_label, self.counts_label, panel.label, panel.pin_button, panel.start_button):
            status.addPermanentWidget(widget)
        for widget in (panel.ports_button, panel.routing_button):  # both are in the Server menu too
            status.add_optional(widget)

    # -- loading and live updates ---------------------------------------------

    def _on_appended(self, _ids: list[int]) -> None:
        try:
            self.model.fetch_new()
        except StoreError as exc:
            self.report_error("Cannot read the database", str(exc))

    def _on_store_reset(self) -> None:
        self.loader.load()

    @property
    def loading(self) -> bool:
        """True while a large journal is still being read in steps."""
        return self.loader.loading

    def _on_store_removed(self, ids: list[int]) -> None:
        """Records were deleted (here or through the journal API): drop exactly their rows."""
        if self.model.remove_ids(ids):
            if self.selection.current_id is not None and self.selection.current_id in set(ids):
                self.selection.show_record(None)
            self.timeline.schedule()

    def _on_session_started(self, session: int) -> None:
        self.toolbar.refresh_sessions()
        if session == self.store.session:
            self.flash(f"Session {session} started: new records go there")

    def _chart_batch(self, shown: int) -> None:
        if shown:
            self.timeline.append(self.model.last_batch)

    def _on_rows_appended(self, shown: int) -> None:
        if self.loader.loading:  # the steps of a journal being opened: as if read at once (no jump, no pick)
            return
        if not shown:
            return
        following = self.follow_action.isChecked()
        selection = self.table.selectionModel()
        # Following selects the newest row, so the detail shows it, but keeps a choice of several rows
        # (for compare or delete). With nothing chosen yet the newest record is shown, not an empty pane.
        if (following and len(selection.selectedRows()) < 2) or (
                self.selection.current_id is None and not selection.hasSelection()):
            newest = self.model.newest_id()
            if newest is not None:
                self.select_record(newest)  # scrolls to it, wherever the sort put it

    def _on_counts(self, shown: int, total: int, ok: int, invalid: int) -> None:
        self.table_stack.setCurrentIndex(0 if total == 0 else 1)
        self.timeline.setVisible(total > 0 and self.timeline_action.isChecked())
        # Nothing to detail yet: the empty state gets the whole window (unless a check or comparison is open).
        self.modes.update_visibility()
        records = f"{plural(total, 'record')}"
        if shown != total:
            records = f"{shown:,} of {records} shown"
        self.counts_label.setText(f"{records}  ·  {ok:,} ok  ·  {invalid:,} invalid")
        self.table.fit_growing_columns()

    # -- filter (inspector.filter_bar) ---------------------------------------------

    def apply_text_filter(self) -> None:
        """Apply the filter box now (typing applies it by itself)."""
        self.toolbar.apply_text_filter()

    # -- selection (inspector.record_selection) -----------------------------------------

    @property
    def _current_id(self) -> int | None:
        """The record the detail card shows (tests read it)."""
        return self.selection.current_id

    def select_record(self, record_id: int) -> bool:
        """Select and show ``record_id`` in the table (False when it is filtered out)."""
        return self.selection.select_record(record_id)

    def selected_ids(self) -> list[int]:
        """Record ids of the selected rows."""
        return self.selection.selected_ids()

    def clear_all(self, confirm: bool = True) -> int:
        """Delete every record (after a confirmation)."""
        return self.selection.clear_all(confirm)

    def new_session(self) -> None:
        """Start a new session: later records are grouped under it."""
        self.selection.new_session()

    def present(self, beacon: Beacon) -> Beacon:
        """``beacon`` as the window shows, copies and exports it: redacted when redaction is on."""
        return self.redactor.redact(beacon) if self.redactor is not None else beacon

    # -- server (inspector.server_panel) -------------------------------------------

    def toggle_server(self) -> None:
        """Start when stopped, stop when running."""
        self.server_panel.toggle()

    def restart_on(self, port: int, https_port: int | None) -> bool:
        """Restart the server on new ports; on failure, report and go back to the old ones."""
        return self.server_panel.restart_on(port, https_port)

    def show_routing_help(self) -> None:
        """The routing help dialog for the current ports."""
        self.server_panel.show_routing_help()

    @property
    def routing_dialog(self) -> RoutingHelpDialog | None:
        """The routing help dialog opened last."""
        return self.server_panel.routing_dialog

    def show_about(self) -> None:
        """The About box (icon, name, version, database)."""
        dialog = AboutDialog(self.store.path, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()

    # -- lower pane modes (inspector.modes) -----------------------------------------

    @property
    def mode(self) -> str:
        """The lower pane's mode: details, optout or compare."""
        return self.modes.mode

    def set_mode(self, name: str) -> None:
        """Show ``details``, ``optout`` or ``compare`` in the lower pane (the opt-out check starts watching)."""
        self.modes.set_mode(name)

    def start_opt_out_check(self) -> bool:
        """(Re)start the opt-out check: only requests from now on count."""
        return self.modes.start_opt_out_check()

    def update_compare(self) -> None:
        """Compare the two selected records (oldest first unless swapped)."""
        self.modes.update_compare()

    # -- view options (inspector.view_options) ---------------------------------------

    def set_redaction(self, on: bool) -> None:
        """Show pseudonyms for IP, hostname, email and projectId everywhere (remembered). The store is not changed."""
        self.view_options.set_redaction(on)

    def set_presentation(self, on: bool, *, save: bool = True) -> None:
        """Presentation mode: every text larger (remembered)."""
        self.view_options.set_presentation(on, save=save)

    def set_theme(self, name: str) -> None:
        """Switch between the system, light and dark palettes (remembered)."""
        self.view_options.set_theme(name)

    # -- background jobs (inspector.window_jobs) ---------------------------------

    @property
    def jobs(self) -> list[Job]:
        """The jobs running now."""
        return self.window_jobs.jobs

    @property
    def last_job(self) -> Job | None:
        """The job started last."""
        return self.window_jobs.last_job

    def show_export_dialog(self) -> ExportDialog:
        """The export dialog (all / shown / selected; JSON, NDJSON, CSV, HAR; redaction)."""
        return self.window_jobs.show_export_dialog()

    def export_to(self, path: str, fmt: str, scope: str = "all", redact: bool = False) -> Job | None:
        """Write the records of ``scope`` (all, shown, selected) to ``path`` on a worker thread."""
        return self.window_jobs.export_to(path, fmt, scope, redact)

    def import_har(self, path: str | None = None) -> Job | None:
        """Import a HAR file (asks for one when ``path`` is None) on a worker thread."""
        return self.window_jobs.import_har(path)

    def open_routed_browser(self, url: str | None = None) -> Job | None:
        """Start a routed Chrome/Chromium/Edge at the app ``url`` (asked for when not given)."""
        return self.window_jobs.open_routed_browser(url)

    def save_png(self, which: str = "window", path: str | None = None) -> Job | None:
        """Save the window (``window``) or the lower pane (``card``) as PNG (asks for a file when not given)."""
        return self.window_jobs.save_png(which, path)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt override
        if dropped_files(event):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:  # noqa: N802 - Qt override
        if dropped_files(event):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 - Qt override
        files = dropped_files(event)
        if not files:
            event.ignore()
            return
        event.acceptProposedAction()
        for path in files:
            self.window_jobs.import_har(path)

    def show_composer(self) -> ComposerDialog:
        """The composer dialog (non-modal; one per window)."""
        return self.window_jobs.show_composer()

    # -- messages -------------------------------------------------------------

    def flash(self, text: str) -> None:
        """Say ``text`` in the status bar for a few seconds."""
        self.statusBar().showMessage(text, 4000)

    def report_error(self, title: str, message: str) -> None:
        """Tell the user (status bar + a non-blocking dialog); never raise."""
        log.warning("%s: %s", title, message)
        self.last_error = f"{title}: {message}"
        self.statusBar().showMessage(f"{title}: {message.splitlines()[0]}", 10000)
        if self._message_box is not None:
            self._message_box.close()
        box = plain_message_box(QMessageBox.Icon.Warning, title, message, parent=self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()  # not exec(): a background error must not block the event loop
        self._message_box = box
        box.destroyed.connect(lambda *_: setattr(self, "_message_box", None))

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt override
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange) \
                and hasattr(self, "compare"):
            self.view_options.refresh_theme()
        super().changeEvent(event)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        self.closing = True
        save_settings(self)
        self.optout.stop(prove=False)
        self.bridge.close()
        for job in list(self.jobs):
            job.cancel()
        self.pool.waitForDone(15000)  # an export finishes its file or removes it; nothing half-written
        self.window_jobs.stop_browsers()
        super().closeEvent(event)


def dropped_files(event: QDragEnterEvent | QDragMoveEvent | QDropEvent) -> list[str]:
    """The local files a drag carries (HAR files to import)."""
    mime = event.mimeData()
    if mime is None or not mime.hasUrls():
        return []
    return [url.toLocalFile() for url in mime.urls() if url.isLocalFile()]
