"""The main window: live table, detail pane, server status, sessions."""

from __future__ import annotations

import base64
import json
import logging
import shlex
from collections.abc import Callable
from datetime import datetime

from PySide6.QtCore import QByteArray, QEvent, QModelIndex, QSettings, Qt, QTimer
from PySide6.QtGui import QAction, QCloseEvent, QGuiApplication, QKeySequence, QPainter, QPaintEvent, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView, QApplication, QCheckBox, QComboBox, QHBoxLayout, QHeaderView, QLineEdit, QMainWindow,
    QMessageBox, QPushButton, QSizePolicy, QSplitter, QStackedWidget, QTableView, QToolBar, QToolButton,
    QVBoxLayout, QWidget,
)

from mockserver.beacon import KINDS, STATUSES
from mockserver.config import DEFAULT_PORT, DISPLAY_NAME
from mockserver.server import InspectorServer, ServerError
from mockserver.store import BeaconStore, StoreError

from . import theme
from .bridge import StoreBridge
from .detail import DetailPane, monospace, plain_label
from .dialogs import AboutDialog, PortsDialog, RoutingHelpDialog
from .icons import app_icon, status_icon
from .models import COLUMN_COUNT, BeaconTableModel, Column

log = logging.getLogger(__name__)

ORGANIZATION = "refine-telemetry-inspector"
APPLICATION = "telemetry-inspector"
DESKTOP_FILE = "telemetry-inspector"

# What a freshly generated refine 4 app sends (see the wire facts): the empty
# state offers it as a ready-made curl line.
SAMPLE_PAYLOAD = {
    "providers": {"auth": False, "auditLog": False, "live": False, "router": True, "data": True,
                  "i18n": False, "notification": False, "accessControl": False},
    "version": "4.58.0", "resourceCount": 2,
}

# Initial column widths, tuned for a 1280-pixel window (the user's layout is then remembered).
_WIDTHS = {Column.ID: 44, Column.TIME: 96, Column.KIND: 74, Column.STATUS: 78, Column.HOSTNAME: 132,
           Column.VERSION: 60, Column.RESOURCES: 40, Column.PROVIDERS: 222, Column.BROWSER: 118,
           Column.OS: 118, Column.IP: 82, Column.SESSION: 60, Column.PROJECT_ID: 150}

# Below this many rows a filter applies on every keystroke; above, after a short pause.
_INSTANT_FILTER_ROWS = 20_000


def sample_curl(http_url: str) -> str:
    """A curl line that sends the standard refine 4 beacon to ``http_url``."""
    encoded = base64.b64encode(json.dumps(SAMPLE_PAYLOAD, separators=(",", ":")).encode()).decode()
    return (f"curl -H {shlex.quote('Referer: http://localhost:5173/')} "
            f"{shlex.quote(f'{http_url}/telemetry?payload={encoded}')}")


class BeaconTable(QTableView):
    """The live table: fixed row heights, no per-row widgets, a message when a filter hides everything."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("beacons")
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setAlternatingRowColors(True)
        self.setShowGrid(False)
        self.setWordWrap(False)
        self.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerItem)
        self.setSortingEnabled(True)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        vertical = self.verticalHeader()
        vertical.setVisible(False)
        # Fixed heights: the view never measures 100,000 rows.
        vertical.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        vertical.setDefaultSectionSize(self.fontMetrics().height() + 8)
        horizontal = self.horizontalHeader()
        horizontal.setSectionsMovable(True)
        horizontal.setHighlightSections(False)
        horizontal.setStretchLastSection(True)  # projectId, the longest value, takes the rest
        horizontal.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        horizontal.setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        self.empty_message = "No records match the filter."

    def apply_default_widths(self) -> None:
        """The initial column widths (used until the user's own are saved)."""
        for column, width in _WIDTHS.items():
            self.setColumnWidth(column, width)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt override
        super().paintEvent(event)
        model = self.model()
        if model is not None and model.rowCount() == 0 and self.empty_message:
            painter = QPainter(self.viewport())
            painter.setPen(self.palette().color(self.palette().ColorRole.PlaceholderText))
            painter.drawText(self.viewport().rect().adjusted(0, 24, 0, 0),
                             Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop, self.empty_message)
            painter.end()


class EmptyState(QWidget):
    """What the table area shows before the first record: how to send one."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("emptyState")
        outer = QVBoxLayout(self)
        outer.addStretch(1)
        column = QVBoxLayout()
        column.setSpacing(10)
        icon = plain_label()
        icon.setPixmap(app_icon().pixmap(72, 72))
        icon.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        column.addWidget(icon)
        self.title = plain_label("Waiting for beacons…")
        font = self.title.font()
        font.setPointSizeF(font.pointSizeF() * 1.6)
        font.setBold(True)
        self.title.setFont(font)
        self.title.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        column.addWidget(self.title)
        self.subtitle = plain_label()
        self.subtitle.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        self.subtitle.setWordWrap(True)
        column.addWidget(self.subtitle)
        row = QHBoxLayout()
        self.curl = QLineEdit()
        self.curl.setReadOnly(True)
        self.curl.setFont(monospace())
        self.curl.setMinimumWidth(520)
        row.addWidget(self.curl, 1)
        self.copy = QPushButton("Copy")
        self.copy.clicked.connect(lambda: QGuiApplication.clipboard().setText(self.curl.text()))
        row.addWidget(self.copy)
        column.addLayout(row)
        self.hint = plain_label(
            "To capture a real refine app, the refine CLI or create-refine-app, route telemetry.refine.dev "
            "here: Routing help shows the exact browser flags for the current ports.")
        self.hint.setWordWrap(True)
        self.hint.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        column.addWidget(self.hint)
        button_row = QHBoxLayout()
        button_row.addStretch(1)
        self.routing = QPushButton("Routing help…")
        button_row.addWidget(self.routing)
        button_row.addStretch(1)
        column.addLayout(button_row)
        holder = QHBoxLayout()
        holder.addStretch(1)
        wrapper = QWidget()
        wrapper.setLayout(column)
        wrapper.setMaximumWidth(860)
        wrapper.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        holder.addWidget(wrapper, 4)
        holder.addStretch(1)
        outer.addLayout(holder)
        outer.addStretch(1)
        self.set_url(None)

    def set_url(self, http_url: str | None) -> None:
        """Show the curl line for the running server, or say it is stopped."""
        if http_url:
            self.subtitle.setText("Send one to check everything works:")
            self.curl.setText(sample_curl(http_url))
            self.curl.setCursorPosition(0)
            self.curl.setEnabled(True)
            self.copy.setEnabled(True)
        else:
            self.subtitle.setText("The server is stopped: start it from the status bar to receive beacons.")
            self.curl.setText("")
            self.curl.setEnabled(False)
            self.copy.setEnabled(False)


class MainWindow(QMainWindow):
    """refine Telemetry Inspector's main window over one store and one server."""

    def __init__(self, store: BeaconStore, server: InspectorServer | None, *,
                 settings: QSettings | None = None, start_server: bool = True) -> None:
        super().__init__()
        self.store = store
        self.server = server
        self.settings = settings if settings is not None else QSettings(ORGANIZATION, APPLICATION)
        self.last_error: str | None = None
        self._current_id: int | None = None
        self._message_box: QMessageBox | None = None

        self.setWindowTitle(DISPLAY_NAME)
        self.setWindowIcon(app_icon())
        self.resize(1280, 800)

        self.model = BeaconTableModel(store, self)
        self.bridge = StoreBridge(store, self)

        self._build_table_area()
        self._build_toolbar()
        self._build_status_bar()
        self._build_actions()
        self._build_menus()

        self.bridge.appended.connect(self._on_appended)
        self.bridge.reset.connect(self._on_store_reset)
        self.bridge.sessionStarted.connect(self._on_session_started)
        self.model.countsChanged.connect(self._on_counts)
        self.model.rowsAppended.connect(self._on_rows_appended)
        self.model.modelReset.connect(self._restore_selection)
        self.table.selectionModel().currentRowChanged.connect(self._on_current_row)
        self.detail.message.connect(self._flash)

        self._load()
        self._restore_settings()
        if start_server and server is not None:
            self.start_server()
        else:
            self._update_server_status()

    # -- construction ---------------------------------------------------------

    def _build_table_area(self) -> None:
        self.table = BeaconTable()
        self.table.setModel(self.model)
        self.table.apply_default_widths()
        self.table.sortByColumn(Column.ID, Qt.SortOrder.AscendingOrder)

        self.empty = EmptyState()
        self.empty.routing.clicked.connect(self.show_routing_help)
        self.table_stack = QStackedWidget()
        self.table_stack.addWidget(self.empty)
        self.table_stack.addWidget(self.table)

        self.detail = DetailPane(self._http_base)

        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.setObjectName("mainSplitter")
        self.splitter.setChildrenCollapsible(False)
        self.splitter.addWidget(self.table_stack)
        self.splitter.addWidget(self.detail)
        self.splitter.setStretchFactor(0, 1)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([290, 460])
        self.setCentralWidget(self.splitter)

    def _build_toolbar(self) -> None:
        bar = QToolBar("Filter")
        bar.setObjectName("filterBar")
        bar.setMovable(False)
        bar.setFloatable(False)
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, bar)

        self.filter_edit = QLineEdit()
        self.filter_edit.setObjectName("filter")
        self.filter_edit.setPlaceholderText("Filter (Ctrl+F): words in any column, e.g. 4.58 chrome invalid")
        self.filter_edit.setClearButtonEnabled(True)
        self.filter_edit.setMinimumWidth(300)
        self.filter_edit.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self._filter_timer = QTimer(self)
        self._filter_timer.setSingleShot(True)
        self._filter_timer.setInterval(200)
        self._filter_timer.timeout.connect(self.apply_text_filter)
        self.filter_edit.textChanged.connect(self._on_filter_text)
        QShortcut(QKeySequence(Qt.Key.Key_Escape), self.filter_edit, self.filter_edit.clear,
                  context=Qt.ShortcutContext.WidgetShortcut)
        bar.addWidget(self.filter_edit)

        self.kind_combo = QComboBox()
        self.kind_combo.setObjectName("kindFilter")
        self.kind_combo.setToolTip("Show one kind of request")
        self.kind_combo.addItem("All kinds", None)
        for kind in KINDS:
            self.kind_combo.addItem(kind, kind)
        self.kind_combo.currentIndexChanged.connect(
            lambda: self.model.set_filter(kind=self.kind_combo.currentData()))
        bar.addWidget(self.kind_combo)

        self.status_combo = QComboBox()
        self.status_combo.setObjectName("statusFilter")
        self.status_combo.setToolTip("Show only decoded (ok) or only invalid requests")
        self.status_combo.addItem("Any status", None)
        for status in STATUSES:
            self.status_combo.addItem(status_icon(status), status, status)
        self.status_combo.currentIndexChanged.connect(
            lambda: self.model.set_filter(status=self.status_combo.currentData()))
        bar.addWidget(self.status_combo)

        self.session_combo = QComboBox()
        self.session_combo.setObjectName("sessionFilter")
        self.session_combo.setToolTip("Earlier captures stay in the database, one session per start")
        self.session_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.session_combo.currentIndexChanged.connect(self._on_session_filter)
        bar.addWidget(self.session_combo)
        bar.addSeparator()
        self.toolbar = bar

    def _build_status_bar(self) -> None:
        status = self.statusBar()
        status.setSizeGripEnabled(True)
        self.server_label = plain_label()
        self.server_label.setObjectName("serverStatus")
        self.server_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.pin_button = QToolButton()
        self.pin_button.setObjectName("pin")
        self.pin_button.setAutoRaise(True)
        self.pin_button.clicked.connect(self._copy_pin)
        self.counts_label = plain_label()
        self.counts_label.setObjectName("counts")
        self.start_button = QPushButton("Stop")
        self.start_button.setObjectName("startStop")
        self.start_button.clicked.connect(self.toggle_server)
        self.ports_button = QPushButton("Ports…")
        self.ports_button.setToolTip("Change the HTTP and HTTPS ports")
        self.ports_button.clicked.connect(self.change_ports)
        self.routing_button = QPushButton("Routing help…")
        self.routing_button.setToolTip("The exact browser flags / hosts-file line that send a real app's beacons here")
        self.routing_button.clicked.connect(self.show_routing_help)
        for widget in (self.counts_label, self.server_label, self.pin_button, self.start_button,
                       self.ports_button, self.routing_button):
            status.addPermanentWidget(widget)

    def _action(self, text: str, slot: Callable[..., object],
                shortcut: QKeySequence | QKeySequence.StandardKey | str | None = None, *, tip: str = "",
                context: Qt.ShortcutContext = Qt.ShortcutContext.WindowShortcut) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
            action.setShortcutContext(context)
        if tip:
            action.setToolTip(tip)
            action.setStatusTip(tip)
        action.triggered.connect(slot)
        return action

    def _build_actions(self) -> None:
        table_only = Qt.ShortcutContext.WidgetWithChildrenShortcut
        self.find_action = self._action("Filter…", self.focus_filter, QKeySequence.StandardKey.Find)
        self.copy_json_action = self._action("Copy decoded JSON", self.detail.copy_json, QKeySequence.StandardKey.Copy,
                                             context=table_only)
        self.copy_url_action = self._action("Copy raw URL", self.detail.copy_url, "Ctrl+Shift+U")
        self.copy_curl_action = self._action("Copy curl command", self.detail.copy_curl, "Ctrl+Shift+C")
        self.copy_record_action = self._action("Copy record as JSON", self.detail.copy_record, "Ctrl+Alt+C")
        self.delete_action = self._action("Delete selected records", self.delete_selected,
                                          QKeySequence.StandardKey.Delete, context=table_only)
        # Copy and Delete act only while the table has focus (so they never
        # fire from the filter box); all of them form the table's context menu.
        for action in (self.copy_json_action, self.copy_url_action, self.copy_curl_action,
                       self.copy_record_action, self.delete_action):
            self.table.addAction(action)
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
        self.new_session_action = self._action("New session", self.new_session, "Ctrl+N",
                                               tip="Group the next records in a new session")
        self.clear_action = self._action("Clear…", self.clear_all, "Ctrl+L",
                                         tip="Delete every record from the database (asks first)")
        self.follow_action = self._action("Follow newest", lambda: None,
                                          tip="Keep the newest record in view as records arrive")
        self.follow_action.setCheckable(True)
        self.follow_action.setChecked(True)
        self.start_action = self._action("Stop server", self.toggle_server)
        self.ports_action = self._action("Change ports…", self.change_ports)
        self.routing_action = self._action("Routing help…", self.show_routing_help, QKeySequence.StandardKey.HelpContents)
        self.about_action = self._action(f"About {DISPLAY_NAME}", self.show_about)
        self.quit_action = self._action("Quit", self.close, QKeySequence.StandardKey.Quit)
        self.theme_actions: dict[str, QAction] = {}
        for name in theme.THEMES:
            action = self._action(name.capitalize(), lambda _=False, n=name: self.set_theme(n))
            action.setCheckable(True)
            self.theme_actions[name] = action
        # A check box reads as on/off in both themes (a checked tool button barely does in dark).
        self.follow_box = QCheckBox("Follow newest")
        self.follow_box.setToolTip(self.follow_action.toolTip())
        self.follow_box.setChecked(self.follow_action.isChecked())
        self.follow_box.toggled.connect(self.follow_action.setChecked)
        self.follow_action.toggled.connect(self.follow_box.setChecked)
        self.follow_action.toggled.connect(lambda on: on and self._on_rows_appended(1))
        self.toolbar.addWidget(self.follow_box)
        self.toolbar.addSeparator()
        self.toolbar.addAction(self.new_session_action)
        self.toolbar.addAction(self.clear_action)

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        file_menu.addAction(self.new_session_action)
        file_menu.addAction(self.clear_action)
        file_menu.addSeparator()
        file_menu.addAction(self.quit_action)
        edit = bar.addMenu("&Edit")
        edit.addAction(self.find_action)
        edit.addSeparator()
        for action in (self.copy_json_action, self.copy_url_action, self.copy_curl_action, self.copy_record_action):
            edit.addAction(action)
        edit.addSeparator()
        edit.addAction(self.delete_action)
        view = bar.addMenu("&View")
        view.addAction(self.follow_action)
        themes = view.addMenu("Theme")
        for action in self.theme_actions.values():
            themes.addAction(action)
        server = bar.addMenu("&Server")
        server.addAction(self.start_action)
        server.addAction(self.ports_action)
        server.addAction(self.routing_action)
        help_menu = bar.addMenu("&Help")
        help_menu.addAction(self.routing_action)
        help_menu.addAction(self.about_action)
        self.addActions([self.find_action, self.copy_url_action, self.copy_curl_action, self.copy_record_action,
                         self.new_session_action, self.clear_action, self.routing_action, self.quit_action])

    # -- loading and live updates ---------------------------------------------

    def _load(self) -> None:
        try:
            self.model.reload()
            self._refresh_sessions()
        except StoreError as exc:
            self.report_error("Cannot read the database", str(exc))

    def _on_appended(self, _ids: list[int]) -> None:
        try:
            self.model.fetch_new()
        except StoreError as exc:
            self.report_error("Cannot read the database", str(exc))

    def _on_store_reset(self) -> None:
        try:
            self.model.reload()
            self._refresh_sessions()
        except StoreError as exc:
            self.report_error("Cannot read the database", str(exc))

    def _on_session_started(self, session: int) -> None:
        self._refresh_sessions()
        self._flash(f"Session {session} started: new records go there")

    def _on_rows_appended(self, shown: int) -> None:
        if shown and self._current_id is None and not self.table.selectionModel().hasSelection():
            # Nothing chosen yet: show the newest record rather than an empty pane.
            newest = 0 if self.model.newest_on_top else self.model.rowCount() - 1
            self.select_record(self.model.record_id(newest))
        if shown and self.follow_action.isChecked():
            if self.model.newest_on_top:
                self.table.scrollToTop()
            else:
                self.table.scrollToBottom()

    def _on_counts(self, shown: int, total: int, ok: int, invalid: int) -> None:
        self.table_stack.setCurrentIndex(0 if total == 0 else 1)
        # Nothing to detail yet: the empty state gets the whole window.
        self.detail.setVisible(total > 0)
        records = f"{total} record{'s' if total != 1 else ''}"
        if shown != total:
            records = f"{shown} of {records} shown"
        self.counts_label.setText(f"{records}  ·  {ok} ok  ·  {invalid} invalid")

    # -- sessions -------------------------------------------------------------

    def _refresh_sessions(self) -> None:
        combo = self.session_combo
        wanted = combo.currentData()
        combo.blockSignals(True)
        combo.clear()
        combo.addItem("All sessions", None)
        combo.addItem("Current session", -1)
        current = self.store.session
        for info in reversed(self.store.sessions()):
            if info.count == 0 and info.id != current:
                continue  # an empty run: nothing to show
            started = _local_minute(info.started_at)
            label = f"Session {info.id} · {started}"
            label += " (current)" if info.id == current else f" · {info.count} record{'s' if info.count != 1 else ''}"
            if info.label:
                label += f" · {info.label}"
            combo.addItem(label, info.id)
        index = combo.findData(wanted)
        combo.setCurrentIndex(index if index >= 0 else 0)
        combo.blockSignals(False)
        self._on_session_filter()

    def _on_session_filter(self) -> None:
        value = self.session_combo.currentData()
        session = self.store.session if value == -1 else value
        self.model.set_filter(session=session)

    def new_session(self) -> None:
        """Start a new session: later records are grouped under it."""
        try:
            self.store.new_session()
        except StoreError as exc:
            self.report_error("Cannot start a new session", str(exc))

    # -- filter ---------------------------------------------------------------

    def focus_filter(self) -> None:
        """Ctrl+F: put the cursor in the filter box."""
        self.filter_edit.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.filter_edit.selectAll()

    def _on_filter_text(self, _text: str) -> None:
        if self.model.total < _INSTANT_FILTER_ROWS:
            self.apply_text_filter()
        else:
            self._filter_timer.start()

    def apply_text_filter(self) -> None:
        """Apply the filter box now (typing applies it by itself)."""
        self._filter_timer.stop()
        self.model.set_filter(self.filter_edit.text())

    # -- selection ------------------------------------------------------------

    def _on_current_row(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if not current.isValid():
            return
        record_id = self.model.record_id(current.row())
        if record_id == self._current_id and self.detail.beacon is not None:
            return
        self.show_record(record_id)

    def show_record(self, record_id: int | None) -> None:
        """Load one record from the store into the detail pane."""
        self._current_id = record_id
        beacon = None
        if record_id is not None:
            try:
                beacon = self.store.get(record_id)
            except StoreError as exc:
                self.report_error("Cannot read the record", str(exc))
        self.detail.show_beacon(beacon)

    def select_record(self, record_id: int) -> bool:
        """Select and show ``record_id`` in the table (False when it is filtered out)."""
        row = self.model.row_of(record_id)
        if row is None:
            return False
        self.table.selectRow(row)
        self.table.setCurrentIndex(self.model.index(row, 0))
        self.table.scrollTo(self.model.index(row, 0))
        self.show_record(record_id)
        return True

    def _restore_selection(self) -> None:
        if self._current_id is None:
            return
        row = self.model.row_of(self._current_id)
        if row is not None:
            self.table.selectionModel().setCurrentIndex(
                self.model.index(row, 0),
                self.table.selectionModel().SelectionFlag.ClearAndSelect
                | self.table.selectionModel().SelectionFlag.Rows)
        elif self.detail.beacon is not None:
            try:
                still_there = self.store.get(self._current_id) is not None
            except StoreError:
                still_there = False
            if not still_there:
                self.show_record(None)

    def selected_ids(self) -> list[int]:
        """Record ids of the selected rows."""
        rows = {index.row() for index in self.table.selectionModel().selectedRows()}
        return sorted(self.model.record_id(row) for row in rows)

    def delete_selected(self, confirm: bool = True) -> int:
        """Delete the selected records (asks first when more than one)."""
        ids = self.selected_ids()
        if not ids:
            return 0
        if confirm and len(ids) > 1:
            answer = QMessageBox.question(self, "Delete records",
                                          f"Delete {len(ids)} records from the database? This cannot be undone.")
            if answer != QMessageBox.StandardButton.Yes:
                return 0
        try:
            removed = self.store.delete(ids)
        except StoreError as exc:
            self.report_error("Cannot delete", str(exc))
            return 0
        self._flash(f"Deleted {removed} record{'s' if removed != 1 else ''}")
        return removed

    def clear_all(self, confirm: bool = True) -> int:
        """Delete every record (after a confirmation)."""
        total = self.model.total
        if confirm:
            answer = QMessageBox.question(
                self, "Clear all records",
                f"Delete all {total} records from {self.store.path}? Sessions are kept; this cannot be undone.")
            if answer != QMessageBox.StandardButton.Yes:
                return 0
        try:
            removed = self.store.clear()
        except StoreError as exc:
            self.report_error("Cannot clear the database", str(exc))
            return 0
        self.show_record(None)
        self._flash(f"Cleared {removed} record{'s' if removed != 1 else ''}")
        return removed

    # -- server -----------------------------------------------------------------

    def _http_base(self) -> str:
        listening = self.server.listening if self.server is not None else None
        if listening is not None:
            return listening.http_url
        port = self.server.port if self.server is not None and self.server.port else DEFAULT_PORT
        return f"http://127.0.0.1:{port}"

    def start_server(self) -> bool:
        """Start listening; a port in use is reported, never raised."""
        if self.server is None:
            return False
        try:
            self.server.start()
        except Exception as exc:  # noqa: BLE001 - a port in use or an unwritable certificate folder: say so
            text = str(exc) if isinstance(exc, ServerError) else f"{type(exc).__name__}: {exc}"
            self.report_error("The server could not start", f"{text}\n\nChange the ports in Server ▸ Change ports.")
            self._update_server_status()
            return False
        self._update_server_status()
        return True

    def stop_server(self) -> None:
        """Stop listening (records stay)."""
        if self.server is not None:
            self.server.stop()
        self._update_server_status()

    def toggle_server(self) -> None:
        """Start when stopped, stop when running."""
        if self.server is not None and self.server.listening is not None:
            self.stop_server()
            self._flash("Server stopped")
        elif self.start_server():
            self._flash("Server started")

    def change_ports(self) -> None:
        """Ask for new ports and restart on them (back to the old ones if they fail)."""
        if self.server is None:
            return
        listening = self.server.listening
        port = listening.port if listening else self.server.port
        https = (listening.https_port if listening else self.server.https_port) if (
            listening is None or listening.https_port is not None) else None
        dialog = PortsDialog(port, https, self)
        if dialog.exec() != PortsDialog.DialogCode.Accepted:
            return
        self.restart_on(*dialog.values())

    def restart_on(self, port: int, https_port: int | None) -> bool:
        """Restart the server on new ports; on failure, report and go back to the old ones."""
        if self.server is None:
            return False
        old = (self.server.port, self.server.https_port)
        was_running = self.server.listening is not None
        self.server.stop()
        self.server.port, self.server.https_port = port, https_port
        try:
            self.server.start()
        except Exception as exc:  # noqa: BLE001 - reported, and the old ports come back
            self.server.port, self.server.https_port = old
            if was_running:
                try:
                    self.server.start()
                except Exception:  # noqa: BLE001 - the first error is the one to show
                    pass
            self._update_server_status()
            self.report_error("Cannot use those ports",
                              str(exc) if isinstance(exc, ServerError) else f"{type(exc).__name__}: {exc}")
            return False
        self._update_server_status()
        self._flash("Server restarted on the new ports")
        return True

    def _update_server_status(self) -> None:
        listening = self.server.listening if self.server is not None else None
        if listening is None:
            self.server_label.setText("○ stopped")
            self.server_label.setToolTip("The mock is not listening")
            self.pin_button.setVisible(False)
            self.start_button.setText("Start")
            self.start_action.setText("Start server")
        else:
            urls = [listening.http_url] + ([listening.https_url] if listening.https_url else [])
            self.server_label.setText("● listening  " + "  ".join(urls))
            self.server_label.setToolTip("The mock of telemetry.refine.dev answers on these addresses")
            self.pin_button.setVisible(bool(listening.spki_pin))
            if listening.spki_pin:
                self.pin_button.setText(f"pin {listening.spki_pin[:10]}…")
                self.pin_button.setToolTip(f"HTTPS certificate SPKI pin (click to copy):\n{listening.spki_pin}")
            self.start_button.setText("Stop")
            self.start_action.setText("Stop server")
        pal = self.server_label.palette()
        s = theme.scheme()
        pal.setColor(self.server_label.foregroundRole(),
                     s.ok if listening is not None else self.palette().color(self.foregroundRole()))
        self.server_label.setPalette(pal)
        self.empty.set_url(listening.http_url if listening is not None else None)
        self.ports_action.setEnabled(self.server is not None)
        self.ports_button.setEnabled(self.server is not None)
        self.start_button.setEnabled(self.server is not None)

    def _copy_pin(self) -> None:
        listening = self.server.listening if self.server is not None else None
        if listening is not None and listening.spki_pin:
            QGuiApplication.clipboard().setText(listening.spki_pin)
            self._flash("Copied the HTTPS SPKI pin")

    def show_routing_help(self) -> None:
        """The routing help dialog for the current ports."""
        listening = self.server.listening if self.server is not None else None
        dialog = RoutingHelpDialog(listening, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        self.routing_dialog = dialog

    def show_about(self) -> None:
        """The About box (icon, name, version, database)."""
        dialog = AboutDialog(self.store.path, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()

    # -- messages -------------------------------------------------------------

    def _flash(self, text: str) -> None:
        self.statusBar().showMessage(text, 4000)

    def report_error(self, title: str, message: str) -> None:
        """Tell the user (status bar + a non-blocking dialog); never raise."""
        log.warning("%s: %s", title, message)
        self.last_error = f"{title}: {message}"
        self.statusBar().showMessage(f"{title}: {message.splitlines()[0]}", 10000)
        if self._message_box is not None:
            self._message_box.close()
        box = QMessageBox(QMessageBox.Icon.Warning, title, message, QMessageBox.StandardButton.Ok, self)
        box.setTextFormat(Qt.TextFormat.PlainText)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()  # not exec(): a background error must not block the event loop
        self._message_box = box
        box.destroyed.connect(lambda *_: setattr(self, "_message_box", None))

    # -- theme ----------------------------------------------------------------

    def set_theme(self, name: str) -> None:
        """Switch between the system, light and dark palettes (remembered)."""
        app = QApplication.instance()
        if isinstance(app, QApplication):
            theme.apply_theme(app, name)
        for key, action in self.theme_actions.items():
            action.setChecked(key == name)
        self.settings.setValue("view/theme", name)
        self.refresh_theme()

    def refresh_theme(self) -> None:
        """Re-pick the semantic colours after a palette change."""
        self.model.refresh_theme()
        self.detail.refresh_theme()
        self._update_server_status()

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt override
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange):
            self.refresh_theme()
        super().changeEvent(event)

    # -- settings -------------------------------------------------------------

    def _restore_settings(self) -> None:
        s = self.settings
        geometry = s.value("window/geometry")
        if isinstance(geometry, QByteArray) and not geometry.isEmpty():
            self.restoreGeometry(geometry)
        state = s.value("window/state")
        if isinstance(state, QByteArray) and not state.isEmpty():
            self.restoreState(state)
        for key, splitter in (("splitter/main", self.splitter), ("splitter/detail", self.detail.splitter)):
            value = s.value(key)
            if isinstance(value, QByteArray) and not value.isEmpty():
                splitter.restoreState(value)
        header = s.value("table/header")
        if isinstance(header, QByteArray) and not header.isEmpty():
            self.table.horizontalHeader().restoreState(header)
            if self.table.horizontalHeader().count() != COLUMN_COUNT:
                self.table.apply_default_widths()
            # Re-apply the restored sort to our model.
            h = self.table.horizontalHeader()
            self.model.sort(h.sortIndicatorSection(), h.sortIndicatorOrder())
        follow = s.value("view/follow")
        if follow is not None:
            self.follow_action.setChecked(str(follow).lower() in ("true", "1"))
        name = str(s.value("view/theme", "system"))
        for key, action in self.theme_actions.items():
            action.setChecked(key == (name if name in theme.THEMES else "system"))

    def save_settings(self) -> None:
        """Remember geometry, splitters, columns and toggles."""
        s = self.settings
        s.setValue("window/geometry", self.saveGeometry())
        s.setValue("window/state", self.saveState())
        s.setValue("splitter/main", self.splitter.saveState())
        s.setValue("splitter/detail", self.detail.splitter.saveState())
        s.setValue("table/header", self.table.horizontalHeader().saveState())
        s.setValue("view/follow", self.follow_action.isChecked())
        s.sync()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        self.save_settings()
        self.bridge.close()
        super().closeEvent(event)


def _local_minute(iso: str) -> str:
    try:
        return datetime.fromisoformat(iso).astimezone().strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return iso
