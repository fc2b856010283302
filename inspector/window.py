"""The main window: live table, detail pane, server status, sessions.

Modes of the lower pane: Details (one record), Opt-out check (a live
PASS/FAIL verdict) and Compare (two records field by field). Long jobs
(export, HAR import, saving PNGs, sending a composed beacon, starting a
routed browser) run on the window's thread pool (:mod:`inspector.jobs`).
"""

from __future__ import annotations

import base64
import gc
import json
import logging
import os
import shlex
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from PySide6.QtCore import QByteArray, QEvent, QModelIndex, QSettings, QSize, Qt, QThreadPool, QTimer
from PySide6.QtGui import (
    QAction,
    QActionGroup,
    QCloseEvent,
    QDragEnterEvent,
    QDragMoveEvent,
    QDropEvent,
    QGuiApplication,
    QImage,
    QKeySequence,
    QPainter,
    QPaintEvent,
    QShortcut,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLineEdit,
    QMainWindow,
    QMessageBox,
    QProgressDialog,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QStackedWidget,
    QStyle,
    QTableView,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from mockserver.core.beacon import KINDS, STATUSES, Beacon
from mockserver.core.clock import parse_iso
from mockserver.core.config import DEFAULT_PORT, DISPLAY_NAME
from mockserver.core.text import plural
from mockserver.formats.export import ExportError, export_records
from mockserver.formats.har import HarError, ImportResult, import_har
from mockserver.reach.browser import RoutedBrowser
from mockserver.records.collected import CURL_DISCARD_BODY
from mockserver.records.redact import Redactor
from mockserver.records.view import RecordFilter
from mockserver.serving.server import InspectorServer, ServerError
from mockserver.storage.store import BeaconStore, StoreError

from . import theme
from .bridge import StoreBridge
from .compare import ComparePanel
from .composer import ComposerDialog
from .detail import DetailPane
from .dialogs import AboutDialog, ExportDialog, PortsDialog, RoutingHelpDialog
from .geometry import place_new_window
from .icons import app_icon, status_icon
from .jobs import Job
from .models import COLUMN_COUNT, BeaconTableModel, Column
from .optout import OptOutPanel
from .plaintext import plain_label, plain_message_box
from .routeproof import Launched, RouteProver, probe_waiter
from .timeline import TimelineStrip

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

# Below this many rows a filter applies on every keystroke; from it on, after a short pause, and the
# filter's search text is made ahead, in steps, once the journal is read.
_INSTANT_FILTER_ROWS = 20_000
# Rows read per step when a journal opens (~50 ms each): the window shows the
# first step at once and reads on between events instead of freezing until every row is in.
LOAD_STEP = 10_000

MODES = ("details", "optout", "compare")
DEFAULT_APP_URL = "http://localhost:5173/"


def filters_instantly(total: int) -> bool:
    """True when a journal of ``total`` rows is filtered on every keystroke (its search text made by
    the first filter); False when the filter waits for a pause and the search text is made ahead."""
    return total < _INSTANT_FILTER_ROWS


def _freeze_rows() -> None:
    """The journal's rows are in: out of the cyclic collector's sight from now on.

    Rows are tuples of strings that no cycle can hold, freed as ever when dropped;
    but every full collection scanned them all, with the GIL held (100,000 rows:
    ~20 ms each time, the window frozen meanwhile). See ``create_application``.
    """
    gc.freeze()


def _server_error_text(exc: Exception) -> str:
    """Why the server did not start, for a dialog: no command-line flags in it."""
    return exc.reason if isinstance(exc, ServerError) else f"{type(exc).__name__}: {exc}"


def sample_curl(http_url: str) -> str:
    """A curl line that sends the standard refine 4 beacon to ``http_url``."""
    encoded = base64.b64encode(json.dumps(SAMPLE_PAYLOAD, separators=(",", ":")).encode()).decode()
    return (f"curl {' '.join(CURL_DISCARD_BODY)} -H {shlex.quote('Referer: http://localhost:5173/')} "
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
            self.setColumnWidth(column, round(width * theme.font_scale()))

    def fit_growing_columns(self) -> None:
        """Widen # and Time when their text outgrows them (ids past 9,999; records from another day
        show the date too); never narrower than the user made them otherwise."""
        model = self.model()
        rows = model.rowCount() if model is not None else 0
        if not rows:
            return
        metrics = self.fontMetrics()
        # What the item delegate keeps either side of a cell's text, and a pixel of slack.
        padding = 2 * (self.style().pixelMetric(QStyle.PixelMetric.PM_FocusFrameHMargin, None, self) + 1) + 2
        for column in (Column.ID, Column.TIME):
            text = max((str(model.index(r, column).data() or "") for r in (0, rows - 1)), key=len)
            needed = metrics.horizontalAdvance(text) + padding
            if self.columnWidth(column) < needed:
                self.setColumnWidth(column, needed)

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt override
        if event.type() == QEvent.Type.FontChange:
            self.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 8)
        super().changeEvent(event)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt override
        super().paintEvent(event)
        model = self.model()
        if model is not None and model.rowCount() == 0 and self.empty_message:
            painter = QPainter(self.viewport())
            painter.setPen(self.palette().color(self.palette().ColorRole.PlaceholderText))
            painter.drawText(self.viewport().rect().adjusted(0, 24, 0, 0),
                             Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop, self.empty_message)
            painter.end()


class CurrentPageStack(QStackedWidget):
    """A stack that asks for the room of its current page only.

    QStackedWidget asks for the largest page's: the hidden empty state's wrapped
    text would otherwise set the table area's minimum height and hold the splitter.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.currentChanged.connect(lambda _index: self.updateGeometry())

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override
        """The current page's size hint."""
        page = self.currentWidget()
        return page.sizeHint() if page is not None else super().sizeHint()

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt override
        """The current page's minimum size hint."""
        page = self.currentWidget()
        return page.minimumSizeHint() if page is not None else super().minimumSizeHint()


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
        theme.derive_font(self.title, 1.6, bold=True)
        self.title.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        column.addWidget(self.title)
        self.subtitle = plain_label()
        self.subtitle.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        self.subtitle.setWordWrap(True)
        column.addWidget(self.subtitle)
        row = QHBoxLayout()
        self.curl = QLineEdit()
        self.curl.setReadOnly(True)
        theme.derive_font(self.curl, mono=True)
        self.curl.setMinimumWidth(520)
        row.addWidget(self.curl, 1)
        self.copy = QPushButton("Copy")
        self.copy.clicked.connect(lambda: QGuiApplication.clipboard().setText(self.curl.text()))
        row.addWidget(self.copy)
        column.addLayout(row)
        self.hint = plain_label(
            "To capture a real refine app, open it in a routed browser, or route telemetry.refine.dev here "
            "yourself (Routing help shows the exact flags for the current ports). A HAR file saved from "
            "DevTools can be dropped on this window.")
        self.hint.setWordWrap(True)
        self.hint.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        column.addWidget(self.hint)
        button_row = QHBoxLayout()
        button_row.addStretch(1)
        self.browser = QPushButton("Open app in routed browser…")
        button_row.addWidget(self.browser)
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
                 settings: QSettings | None = None, start_server: bool = True,
                 clock: Callable[[], float] | None = None) -> None:
        super().__init__()
        self.store = store
        self.server = server
        self.settings = settings if settings is not None else QSettings(ORGANIZATION, APPLICATION)
        self.last_error: str | None = None
        self._current_id: int | None = None
        self._message_box: QMessageBox | None = None
        self.mode = "details"
        # Background work: one pool per window, so closing waits for exactly its own jobs.
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(4)
        self.jobs: list[Job] = []
        self.last_job: Job | None = None
        self._imports: list[str] = []  # HAR files waiting for the running import
        # Routed browsers this window started (appended by a worker, stopped on quit).
        self.browsers: list[RoutedBrowser] = []
        self._browsers_lock = threading.Lock()
        self.route_prover = RouteProver(self.pool, self.browsers, self._browsers_lock,
                                        lambda: probe_waiter(self.server))
        self._closing = False
        # Redaction: one Redactor for the whole run, so a value keeps its token when toggled off and on.
        self._run_redactor: Redactor | None = None
        self.redactor: Redactor | None = None
        self._compare_swapped = False
        self.composer: ComposerDialog | None = None

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

        self._build_table_area()
        self._build_toolbar()
        self._build_status_bar()
        self._build_actions()
        self._build_menus()

        self.bridge.appended.connect(self._on_appended)
        self.bridge.reset.connect(self._on_store_reset)
        self.bridge.removed.connect(self._on_store_removed)
        self.bridge.sessionStarted.connect(self._on_session_started)
        self.model.countsChanged.connect(self._on_counts)
        self.model.rowsAppended.connect(self._on_rows_appended)
        self.model.rowsAppended.connect(self._chart_batch)
        self.model.modelReset.connect(self._restore_selection)
        # The timeline charts the shown set: a reset changes it (a re-sort only reorders it; appended
        # rows are added one batch at a time, in _chart_batch).
        self.model.modelReset.connect(self.timeline.schedule)
        self.table.selectionModel().currentRowChanged.connect(self._on_current_row)
        self.table.selectionModel().selectionChanged.connect(self._on_selection_changed)
        self.detail.message.connect(self._flash)

        self.loading = False  # True while a large journal is still being read in steps
        self._load_generation = 0
        self._load_total = 0  # records in the journal when a read in steps began (for its progress)
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
        self.empty.browser.clicked.connect(lambda: self.open_routed_browser())
        self.table_stack = CurrentPageStack()
        self.table_stack.addWidget(self.empty)
        self.table_stack.addWidget(self.table)

        self.timeline = TimelineStrip(self.model.shown_summaries, count=self.model.rowCount)
        self.timeline.bucketClicked.connect(self.select_record)
        top = QWidget()
        top_layout = QVBoxLayout(top)
        top_layout.setContentsMargins(0, 0, 0, 0)
        top_layout.setSpacing(0)
        top_layout.addWidget(self.timeline)
        top_layout.addWidget(self.table_stack, 1)
        self.top_area = top

        self.detail = DetailPane(self._http_base)
        clock_option: dict[str, Any] = {"clock": self._clock} if self._clock else {}
        self.optout = OptOutPanel(self.store, self.present, prover=self.route_prover, **clock_option)
        self.optout.recordClicked.connect(self._select_or_say)
        self.optout.recordActivated.connect(self._show_record_details)
        self.optout.stateChanged.connect(self._on_optout_state)
        self.compare = ComparePanel()
        self.compare.swapRequested.connect(self._swap_compare)
        self.bottom = QStackedWidget()
        self.bottom.setObjectName("lowerPane")
        for page in (self.detail, self.optout, self.compare):
            self.bottom.addWidget(page)
        self._compare_timer = QTimer(self)
        self._compare_timer.setSingleShot(True)
        self._compare_timer.setInterval(0)
        self._compare_timer.timeout.connect(self.update_compare)

        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.setObjectName("mainSplitter")
        self.splitter.setChildrenCollapsible(False)
        self.splitter.addWidget(self.top_area)
        self.splitter.addWidget(self.bottom)
        self.splitter.setStretchFactor(0, 1)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([320, 430])
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
        self.filter_edit.setAcceptDrops(False)  # a dropped HAR file is for the window, not the filter
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
        # Long session labels (times, import file names) open in the popup, not across the toolbar.
        self.session_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.session_combo.setMinimumContentsLength(22)
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
        # A whole word, not a cut-off pin: the full pin is in the tooltip, the clipboard and Routing help.
        self.pin_button = QPushButton("Copy pin")
        self.pin_button.setObjectName("pin")
        self.pin_button.clicked.connect(self._copy_pin)
        self.counts_label = plain_label()
        self.counts_label.setObjectName("counts")
        self.redacted_label = theme.derive_font(plain_label("REDACTED"), bold=True)
        self.redacted_label.setObjectName("redactedBadge")
        self.redacted_label.setToolTip("IP addresses, hostnames, emails and projectIds are shown as pseudonyms "
                                       "(View ▸ Redact); the database keeps the real values")
        self.redacted_label.setVisible(False)
        self.start_button = QPushButton("Stop")
        self.start_button.setObjectName("startStop")
        self.start_button.clicked.connect(self.toggle_server)
        self.ports_button = QPushButton("Ports…")
        self.ports_button.setToolTip("Change the HTTP and HTTPS ports")
        self.ports_button.clicked.connect(self.change_ports)
        self.routing_button = QPushButton("Routing help…")
        self.routing_button.setToolTip("The exact browser flags / hosts-file line that send a real app's beacons here")
        self.routing_button.clicked.connect(self.show_routing_help)
        for widget in (self.redacted_label, self.counts_label, self.server_label, self.pin_button,
                       self.start_button, self.ports_button, self.routing_button):
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
        self.copy_markdown_action = self._action(
            "Copy as Markdown", self.detail.copy_markdown, "Ctrl+Shift+M",
            tip="Copy the \"What was collected\" card as Markdown tables, in the docs page's format")
        self.compare_selected_action = self._action(
            "Compare the two selected", lambda: self.set_mode("compare"), "Ctrl+D",
            tip="Field-level differences between the two selected records")
        self.delete_action = self._action("Delete selected records", self.delete_selected,
                                          QKeySequence.StandardKey.Delete, context=table_only)
        # Copy and Delete act only while the table has focus (so they never
        # fire from the filter box); all of them form the table's context menu.
        for action in (self.copy_json_action, self.copy_url_action, self.copy_curl_action,
                       self.copy_record_action, self.copy_markdown_action, self.compare_selected_action,
                       self.delete_action):
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
        self.timeline_action = self._action("Timeline", lambda: None, tip="Show requests over time above the table")
        self.timeline_action.setCheckable(True)
        self.timeline_action.setChecked(True)
        self.timeline_action.toggled.connect(self._show_timeline)
        self.start_action = self._action("Stop server", self.toggle_server)
        self.ports_action = self._action("Change ports…", self.change_ports)
        self.routing_action = self._action("Routing help…", self.show_routing_help,
                                           QKeySequence.StandardKey.HelpContents)
        self.browser_action = self._action(
            "Open app in routed browser…", lambda: self.open_routed_browser(), "Ctrl+B",
            tip="Start Chrome/Chromium/Edge with telemetry.refine.dev routed to this inspector and open your app")
        self.compose_action = self._action("Compose beacon…", self.show_composer, "Ctrl+Shift+N",
                                           tip="Send the exact beacon @refinedev/core sends for inputs you choose")
        self.import_action = self._action("Import HAR…", lambda: self.import_har(), QKeySequence.StandardKey.Open,
                                          tip="Decode the telemetry.refine.dev requests in a HAR file saved from "
                                              "DevTools (or drop the file on the window)")
        self.export_action = self._action("Export…", self.show_export_dialog, "Ctrl+E",
                                          tip="Write all, filtered or selected records as JSON, NDJSON, CSV or HAR")
        self.save_window_action = self._action("Save window as PNG…", lambda: self.save_png("window"),
                                               tip="A picture of the whole window")
        self.save_card_action = self._action("Save lower pane as PNG…", lambda: self.save_png("card"),
                                             tip="A picture of the lower pane only: the detail card, the opt-out "
                                                 "verdict or the comparison")
        self.redact_action = self._action(
            "Redact", lambda: None, "Ctrl+Shift+R",
            tip="Show IP addresses, hostnames, emails and projectIds as stable pseudonyms in the table, the "
                "details, copies and exports (the database keeps the real values)")
        self.redact_action.setCheckable(True)
        self.redact_action.toggled.connect(self.set_redaction)
        self.presentation_action = self._action("Presentation mode", lambda: None, "Ctrl+Shift+P",
                                                tip="Larger text everywhere, for screen sharing and projectors")
        self.presentation_action.setCheckable(True)
        self.presentation_action.toggled.connect(self.set_presentation)
        self.about_action = self._action(f"About {DISPLAY_NAME}", self.show_about)
        self.quit_action = self._action("Quit", self.close, QKeySequence.StandardKey.Quit)
        self.theme_actions: dict[str, QAction] = {}
        for name in theme.THEMES:
            action = self._action(name.capitalize(), lambda _=False, n=name: self.set_theme(n))
            action.setCheckable(True)
            self.theme_actions[name] = action
        self.mode_group = QActionGroup(self)
        self.mode_group.setExclusive(True)
        self.mode_actions: dict[str, QAction] = {}
        for name, text, key, tip in (
                ("details", "Details", "Ctrl+1", "The selected record: what was collected, JSON, raw request"),
                ("optout", "Opt-out check", "Ctrl+2",
                 "Watch from now on, reload your app: PASS when nothing is sent, FAIL with what was"),
                ("compare", "Compare", "Ctrl+3", "Select two records: their field-level differences")):
            action = self._action(text, lambda _=False, n=name: self.set_mode(n), key, tip=tip)
            action.setCheckable(True)
            self.mode_group.addAction(action)
            self.mode_actions[name] = action
        self.mode_actions["details"].setChecked(True)
        # A check box reads as on/off in both themes (a checked tool button barely does in dark).
        self.follow_box = QCheckBox("Follow newest")
        self.follow_box.setToolTip(self.follow_action.toolTip())
        self.follow_box.setChecked(self.follow_action.isChecked())
        self.follow_box.toggled.connect(self.follow_action.setChecked)
        self.follow_action.toggled.connect(self.follow_box.setChecked)
        self.follow_action.toggled.connect(lambda on: self._on_rows_appended(1) if on else None)
        self.toolbar.addWidget(self.follow_box)
        self.toolbar.addSeparator()
        self.toolbar.addAction(self.new_session_action)
        self.toolbar.addAction(self.clear_action)

        main = QToolBar("Main")
        main.setObjectName("mainBar")
        main.setMovable(False)
        main.setFloatable(False)
        main.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        for action in self.mode_actions.values():
            main.addAction(action)
        main.addSeparator()
        main.addAction(self.browser_action)
        main.addAction(self.compose_action)
        main.addSeparator()
        main.addAction(self.import_action)
        main.addAction(self.export_action)
        main.addSeparator()
        self.redact_box = QCheckBox("Redact")
        self.redact_box.setObjectName("redactBox")
        self.redact_box.setToolTip(self.redact_action.toolTip())
        self.redact_box.toggled.connect(self.redact_action.setChecked)
        self.redact_action.toggled.connect(self.redact_box.setChecked)
        main.addWidget(self.redact_box)
        self.main_toolbar = main
        self.insertToolBar(self.toolbar, main)
        self.insertToolBarBreak(self.toolbar)

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        file_menu.addAction(self.browser_action)
        file_menu.addSeparator()
        file_menu.addAction(self.import_action)
        file_menu.addAction(self.export_action)
        file_menu.addSeparator()
        file_menu.addAction(self.save_window_action)
        file_menu.addAction(self.save_card_action)
        file_menu.addSeparator()
        file_menu.addAction(self.new_session_action)
        file_menu.addAction(self.clear_action)
        file_menu.addSeparator()
        file_menu.addAction(self.quit_action)
        edit = bar.addMenu("&Edit")
        edit.addAction(self.find_action)
        edit.addSeparator()
        for action in (self.copy_json_action, self.copy_url_action, self.copy_curl_action, self.copy_record_action,
                       self.copy_markdown_action):
            edit.addAction(action)
        edit.addSeparator()
        edit.addAction(self.compare_selected_action)
        edit.addAction(self.delete_action)
        view = bar.addMenu("&View")
        for action in self.mode_actions.values():
            view.addAction(action)
        view.addSeparator()
        view.addAction(self.follow_action)
        view.addAction(self.timeline_action)
        view.addSeparator()
        view.addAction(self.redact_action)
        view.addAction(self.presentation_action)
        themes = view.addMenu("Theme")
        for action in self.theme_actions.values():
            themes.addAction(action)
        server = bar.addMenu("&Server")
        server.addAction(self.start_action)
        server.addAction(self.ports_action)
        server.addAction(self.routing_action)
        server.addSeparator()
        server.addAction(self.browser_action)
        server.addAction(self.compose_action)
        help_menu = bar.addMenu("&Help")
        help_menu.addAction(self.routing_action)
        help_menu.addAction(self.about_action)
        self.addActions([self.find_action, self.copy_url_action, self.copy_curl_action, self.copy_record_action,
                         self.copy_markdown_action, self.new_session_action, self.clear_action, self.routing_action,
                         self.quit_action, self.browser_action, self.compose_action, self.import_action,
                         self.export_action, self.redact_action, self.presentation_action,
                         self.compare_selected_action, *self.mode_actions.values()])

    # -- loading and live updates ---------------------------------------------

    def _load(self) -> None:
        """Read the journal: the first LOAD_STEP rows now (the window paints with them), the rest
        a step per turn of the event loop, so a large journal never freezes the window."""
        self._load_generation += 1  # a read still in steps stops here
        try:
            more = self.model.reload(limit=LOAD_STEP)
            self._refresh_sessions()
        except StoreError as exc:
            more = False
            self.report_error("Cannot read the database", str(exc))
        self.loading = more
        generation = self._load_generation
        if more:
            try:
                self._load_total = self.store.count()
            except StoreError:  # only the progress message needs it
                self._load_total = 0
            QTimer.singleShot(0, self, lambda: self._load_more(generation))
        else:
            self._loaded(generation)

    def _loaded(self, generation: int) -> None:
        """Every row is in: freeze them (see _freeze_rows), then make the filter's search text
        a step at a time, so that the first filter need not."""
        _freeze_rows()
        if not filters_instantly(self.model.total):  # small journals: the first filter makes it at once
            QTimer.singleShot(0, self, lambda: self._prepare_search(generation))

    def _prepare_search(self, generation: int) -> None:
        if generation == self._load_generation and not self.model.prepare_search_text(LOAD_STEP):
            QTimer.singleShot(0, self, lambda: self._prepare_search(generation))

    def _load_more(self, generation: int) -> None:
        if generation != self._load_generation:  # the journal was read again meanwhile (cleared)
            return
        try:
            more = self.model.fetch_new(limit=LOAD_STEP) == LOAD_STEP
        except StoreError as exc:
            more = False
            self.report_error("Cannot read the database", str(exc))
        if more:
            of = f" of {self._load_total:,}" if self._load_total > self.model.total else ""
            self.statusBar().showMessage(f"Reading the journal: {self.model.total:,}{of} records…")
            QTimer.singleShot(0, self, lambda: self._load_more(generation))
        else:
            self.loading = False
            self.statusBar().clearMessage()
            self._refresh_sessions()
            self._loaded(generation)

    def _on_appended(self, _ids: list[int]) -> None:
        try:
            self.model.fetch_new()
        except StoreError as exc:
            self.report_error("Cannot read the database", str(exc))

    def _on_store_reset(self) -> None:
        self._load()

    def _on_store_removed(self, ids: list[int]) -> None:
        """Records were deleted (here or through the journal API): drop exactly their rows."""
        if self.model.remove_ids(ids):
            if self._current_id is not None and self._current_id in set(ids):
                self.show_record(None)
            self.timeline.schedule()

    def _on_session_started(self, session: int) -> None:
        self._refresh_sessions()
        if session == self.store.session:
            self._flash(f"Session {session} started: new records go there")

    def _chart_batch(self, shown: int) -> None:
        if shown:
            self.timeline.append(self.model.last_batch)

    def _on_rows_appended(self, shown: int) -> None:
        if self.loading:  # the steps of a journal being opened: as if read at once (no jump, no pick)
            return
        if not shown:
            return
        following = self.follow_action.isChecked()
        selection = self.table.selectionModel()
        # Following selects the newest row, so the detail shows it, but keeps a choice of several rows
        # (for compare or delete). With nothing chosen yet the newest record is shown, not an empty pane.
        if (following and len(selection.selectedRows()) < 2) or (
                self._current_id is None and not selection.hasSelection()):
            newest = self.model.newest_id()
            if newest is not None:
                self.select_record(newest)  # scrolls to it, wherever the sort put it

    def _on_counts(self, shown: int, total: int, ok: int, invalid: int) -> None:
        self.table_stack.setCurrentIndex(0 if total == 0 else 1)
        self.timeline.setVisible(total > 0 and self.timeline_action.isChecked())
        # Nothing to detail yet: the empty state gets the whole window (unless a check or comparison is open).
        self._update_bottom_visibility()
        records = f"{plural(total, 'record')}"
        if shown != total:
            records = f"{shown:,} of {records} shown"
        self.counts_label.setText(f"{records}  ·  {ok:,} ok  ·  {invalid:,} invalid")
        self.table.fit_growing_columns()

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
            label += " (current)" if info.id == current else f" · {plural(info.count, 'record')}"
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
        if filters_instantly(self.model.total):
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
        """Load one record from the store into the detail pane (redacted when redaction is on)."""
        self._current_id = record_id
        beacon = None
        if record_id is not None:
            try:
                beacon = self.store.get(record_id)
            except StoreError as exc:
                self.report_error("Cannot read the record", str(exc))
        self.detail.show_beacon(self.present(beacon) if beacon is not None else None)
        self.timeline.set_marker(_moment(beacon.received_at) if beacon is not None else None)

    def present(self, beacon: Beacon) -> Beacon:
        """``beacon`` as the window shows, copies and exports it: redacted when redaction is on."""
        return self.redactor.redact(beacon) if self.redactor is not None else beacon

    def _show_record_details(self, record_id: int) -> None:
        if self._select_or_say(record_id):
            self.set_mode("details")

    def _on_selection_changed(self, *_args: object) -> None:
        if self.mode == "compare":
            self._compare_timer.start()

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
        self._flash(f"Deleted {plural(removed, 'record')}")
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
        self._flash(f"Cleared {plural(removed, 'record')}")
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
            self.report_error("The server could not start",
                              f"{_server_error_text(exc)}.\n\nChoose other ports in Server ▸ Change ports…")
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
            self.report_error("Cannot use those ports", f"{_server_error_text(exc)}.")
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
            # The green dot says "listening" (its tooltip in words): the URLs get the room of a small screen.
            self.server_label.setText("● " + "  ".join(urls))
            self.server_label.setToolTip("Listening: the mock of telemetry.refine.dev answers on these addresses")
            self.pin_button.setVisible(bool(listening.spki_pin))
            if listening.spki_pin:
                self.pin_button.setToolTip(f"Copy the HTTPS certificate's SPKI pin:\n{listening.spki_pin}")
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

    # -- modes: details, opt-out check, compare ---------------------------------

    def set_mode(self, name: str) -> None:
        """Show ``details``, ``optout`` or ``compare`` in the lower pane.

        Opening the opt-out check the first time starts watching.
        """
        if name not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}; got {name!r}")
        self.mode = name
        self.mode_actions[name].setChecked(True)
        self.bottom.setCurrentWidget({"details": self.detail, "optout": self.optout, "compare": self.compare}[name])
        if name == "optout" and self.optout.watch is None:
            self.start_opt_out_check()
        if name == "compare":
            self.update_compare()
        self._update_bottom_visibility()

    def _update_bottom_visibility(self) -> None:
        self.bottom.setVisible(self.model.total > 0 or self.mode != "details")

    def start_opt_out_check(self) -> bool:
        """(Re)start the opt-out check: only requests from now on count."""
        listening = self.server.listening if self.server is not None else None
        if listening is None:
            self.report_error("Cannot start the opt-out check",
                              "The server is stopped, so nothing could arrive: start it first (Server ▸ Start server).")
            return False
        if self.mode != "optout":
            self.mode = "optout"
            self.mode_actions["optout"].setChecked(True)
            self.bottom.setCurrentWidget(self.optout)
            self._update_bottom_visibility()
        started = self.optout.restart()
        if started and not listening.https_port:
            self._flash("Opt-out check started, but HTTPS is off: a browser's beacon cannot reach the inspector")
        elif started:
            self._flash("Opt-out check started: reload your app now")
        return started

    def stop_opt_out_check(self) -> None:
        """Stop watching; the verdict stays."""
        self.optout.stop()

    def _on_optout_state(self) -> None:
        self.mode_actions["optout"].setText(self.optout.mode_text())

    def _select_or_say(self, record_id: int) -> bool:
        """Select ``record_id`` in the table, or say why it cannot be."""
        if self.model.row_of(record_id) is None:
            self.bridge.drain()  # the verdict can be quicker than the table's next batch
        if self.select_record(record_id):
            return True
        self._flash(f"#{record_id} is hidden by the filter; clear the filter to see it")
        return False

    def update_compare(self) -> None:
        """Compare the two selected records (oldest first unless swapped)."""
        ids = self.selected_ids()
        if len(ids) != 2:
            self.compare.set_records(None, None)
            if len(ids) > 2:
                self.compare.title.setText(f"Compare: {len(ids)} records are selected; select exactly two")
            return
        try:
            a, b = (self.store.get(i) for i in ids)
        except StoreError as exc:
            self.report_error("Cannot read the records", str(exc))
            return
        if a is None or b is None:
            self.compare.set_records(None, None)
            return
        if self._compare_swapped:
            a, b = b, a
        self.compare.set_records(self.present(a), self.present(b))

    def _swap_compare(self) -> None:
        self._compare_swapped = not self._compare_swapped
        self.update_compare()

    # -- redaction, presentation, timeline --------------------------------------

    def set_redaction(self, on: bool) -> None:
        """Show pseudonyms for IP, hostname, email and projectId everywhere (remembered). The store is not changed."""
        on = bool(on)
        if on == (self.redactor is not None) and self.redact_action.isChecked() == on:
            return  # already so (the action and the check box both report a change)
        if on and self._run_redactor is None:
            self._run_redactor = Redactor()
        self.redactor = self._run_redactor if on else None
        if self.redact_action.isChecked() != on:
            self.redact_action.setChecked(on)  # comes back here; harmless
        self.model.set_redactor(self.redactor)
        self.redacted_label.setVisible(on)
        self._update_redacted_badge()
        if self._current_id is not None:
            self.show_record(self._current_id)
        self.optout.refresh_view()
        if self.mode == "compare":
            self.update_compare()
        self.settings.setValue("view/redact", on)

    def set_presentation(self, on: bool, *, save: bool = True) -> None:
        """Presentation mode: every text larger (remembered)."""
        on = bool(on)
        self._apply_font_scale(theme.PRESENTATION_SCALE if on else 1.0, rescale_columns=True)
        if self.presentation_action.isChecked() != on:
            self.presentation_action.setChecked(on)
        if save:
            self.settings.setValue("view/presentation", on)

    def _apply_font_scale(self, new: float, *, rescale_columns: bool) -> None:
        app = QApplication.instance()
        old = theme.font_scale()
        if not isinstance(app, QApplication) or new == old:
            return
        theme.set_font_scale(app, new)
        theme.refresh_derived_fonts(self)
        if rescale_columns:
            header = self.table.horizontalHeader()
            for column in range(COLUMN_COUNT):
                if not header.isSectionHidden(column):
                    self.table.setColumnWidth(column, round(self.table.columnWidth(column) * new / old))
        for tree_header in (self.detail.collected.header(), self.compare.tree.header()):
            for column in range(tree_header.count() - 1):  # the last one stretches
                tree_header.resizeSection(column, round(tree_header.sectionSize(column) * new / old))
        # Item fonts follow the widgets' new fonts once Qt has delivered the change.
        QTimer.singleShot(0, self._after_font_change)

    def _after_font_change(self) -> None:
        self.detail.show_beacon(self.detail.beacon)
        self.optout.refresh_view()
        if self.mode == "compare":
            self.update_compare()

    def _show_timeline(self, on: bool) -> None:
        self.timeline.setVisible(bool(on) and self.model.total > 0)
        if on:
            self.timeline.schedule()
        self.settings.setValue("view/timeline", bool(on))

    # -- background jobs --------------------------------------------------------

    def _run_job(self, job: Job, label: str | None = None, *, error_title: str | None = None) -> Job:
        """Start ``job`` on the window's pool; with ``label``, a progress dialog that can cancel it.

        A failure is reported as ``error_title`` (default "<job> failed") with the job's one-line message.
        """
        self.jobs.append(job)
        self.last_job = job
        job.failed.connect(lambda message: self.report_error(error_title or f"{job.title} failed", message))
        job.finished.connect(lambda: self.jobs.remove(job) if job in self.jobs else None)
        if label is not None:
            dialog = QProgressDialog("", "Cancel", 0, 0, self)
            dialog.setLabel(plain_label(label))  # its own label guesses HTML; a file name is untrusted
            dialog.setWindowTitle(job.title)
            dialog.setMinimumDuration(400)  # quick jobs never flash a dialog
            dialog.setAutoClose(False)
            dialog.setAutoReset(False)
            dialog.setWindowModality(Qt.WindowModality.WindowModal)
            dialog.canceled.connect(job.cancel)

            def progressed(done: int, total: int) -> None:
                if total > 0:
                    dialog.setMaximum(total)
                    dialog.setValue(min(done, total))
                self.statusBar().showMessage(f"{label} {done}/{total}" if total else label, 2000)

            def finished() -> None:
                dialog.canceled.disconnect(job.cancel)
                dialog.close()
                dialog.deleteLater()

            job.progressed.connect(progressed)
            job.finished.connect(finished)
            job.progress_dialog = dialog  # type: ignore[attr-defined]  # the dialog lives as long as its job
        return job.start(self.pool)

    # -- export -----------------------------------------------------------------

    def _export_counts(self) -> dict[str, int]:
        return {"all": self.model.total, "shown": self.model.rowCount(), "selected": len(self.selected_ids())}

    def show_export_dialog(self) -> ExportDialog:
        """The export dialog (all / shown / selected; JSON, NDJSON, CSV, HAR; redaction)."""
        folder = str(self.settings.value("export/folder", "") or Path.home())
        fmt = str(self.settings.value("export/format", "json") or "json")
        dialog = ExportDialog(self._export_counts(), redact=self.redactor is not None, folder=folder, fmt=fmt,
                              parent=self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        def accepted() -> None:
            scope, fmt, path, redact = dialog.values()
            self.export_to(path, fmt, scope, redact)

        dialog.accepted.connect(accepted)
        dialog.open()
        self.export_dialog = dialog
        return dialog

    def _selection_for(self, scope: str) -> tuple[RecordFilter, int]:
        if scope == "selected":
            ids = tuple(self.selected_ids())
            return RecordFilter(ids=ids), len(ids)
        if scope == "shown" and self.model.filtered:  # the table's own rules select the same records
            return self.model.record_filter, self.model.rowCount()
        return RecordFilter(), self.model.total

    def export_to(self, path: str, fmt: str, scope: str = "all", redact: bool = False) -> Job | None:
        """Write the records of ``scope`` (all, shown, selected) to ``path`` on a worker thread."""
        selection, total = self._selection_for(scope)
        if scope == "selected" and not total:
            self.report_error("Nothing to export", "No record is selected.")
            return None
        self.settings.setValue("export/folder", str(Path(path).parent))
        self.settings.setValue("export/format", fmt)
        # The window's own redactor: the file uses the same pseudonyms the screen shows.
        redactor = (self._run_redactor or Redactor()) if redact else None
        if redact and self._run_redactor is None:
            self._run_redactor = redactor
        store = self.store

        def work(progress: Callable[[int, int], bool]) -> int:
            return export_records(selection.records(store), fmt, path, redactor=redactor, total=total,
                                  progress=progress)

        job = Job("Export", work, expected=(ExportError, StoreError))
        job.succeeded.connect(lambda count: self._flash(
            f"Exported {plural(count, 'record')}{', redacted,' if redact else ''} "
            f"as {fmt.upper()} to {path}"))
        job.cancelled.connect(lambda: self._flash("Export cancelled; no file was written"))
        return self._run_job(job, f"Exporting {plural(total, 'record')}…", error_title="Cannot export")

    # -- HAR import ---------------------------------------------------------------

    def import_har(self, path: str | None = None) -> Job | None:
        """Import a HAR file (asks for one when ``path`` is None) on a worker thread."""
        if path is None:
            folder = str(self.settings.value("import/folder", "") or Path.home())
            path, _ = QFileDialog.getOpenFileName(self, "Import HAR", folder, "HAR files (*.har);;All files (*)")
            if not path:
                return None
        if self.optout.watching:
            self.report_error("Not imported", "An opt-out check is running: imported records would count as sent. "
                                              "Stop the check first.")
            return None
        if any(job.title == "Import" and not job.done for job in self.jobs):
            self._imports.append(path)  # one import at a time; this one follows
            self._flash(f"{Path(path).name} will be imported next")
            return None
        self.settings.setValue("import/folder", str(Path(path).parent))
        store = self.store

        def work(progress: Callable[[int, int], bool]) -> ImportResult:
            return import_har(store, path, progress=progress)  # checks the whole file before writing

        job = Job("Import", work, expected=(HarError, StoreError))
        job.succeeded.connect(self._on_imported)
        job.finished.connect(self._next_import)
        job.cancelled.connect(lambda: self._flash("Import cancelled; what was imported so far stays"))
        return self._run_job(job, f"Importing {Path(path).name}…", error_title="Cannot import")

    def _on_imported(self, result: ImportResult) -> None:
        self.bridge.drain()
        self.model.fetch_new()
        self._refresh_sessions()  # the import's own session (added without becoming the current one)
        text = result.summary()
        if result.warnings:
            text += f" ({result.warnings[0]}{' …' if len(result.warnings) > 1 else ''})"
        if result.imported == 0:
            text += ": no request to telemetry.refine.dev in this file"
        self._flash(text)
        self.statusBar().showMessage(text, 10000)
        if result.ids and not self.select_record(result.ids[0]):
            self.statusBar().showMessage(text + " (hidden by the filter)", 10000)

    def _next_import(self) -> None:
        if self._imports and not self._closing:
            self.import_har(self._imports.pop(0))

    @staticmethod
    def _dropped_files(event: QDragEnterEvent | QDragMoveEvent | QDropEvent) -> list[str]:
        mime = event.mimeData()
        if mime is None or not mime.hasUrls():
            return []
        return [url.toLocalFile() for url in mime.urls() if url.isLocalFile()]

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt override
        if self._dropped_files(event):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:  # noqa: N802 - Qt override
        if self._dropped_files(event):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 - Qt override
        files = self._dropped_files(event)
        if not files:
            event.ignore()
            return
        event.acceptProposedAction()
        for path in files:
            self.import_har(path)

    # -- composer, routed browser, pictures ---------------------------------------

    def _listening_url(self) -> str | None:
        listening = self.server.listening if self.server is not None else None
        return listening.http_url if listening is not None else None

    def show_composer(self) -> ComposerDialog:
        """The composer dialog (non-modal; one per window)."""
        if self.composer is None:
            self.composer = ComposerDialog(self._listening_url, self.pool, self)
            self.composer.sending.connect(self._remember_last_id)
            self.composer.sent.connect(self._show_sent)
        self.composer.update_preview()
        self.composer.show()
        self.composer.raise_()
        return self.composer

    def _remember_last_id(self) -> None:
        try:
            self._before_send: int | None = self.store.last_id()
        except StoreError:
            self._before_send = None

    def _show_sent(self, url: str) -> None:
        """Select the record the composer's request became (matched by its exact query)."""
        query = url.partition("?")[2]
        since = getattr(self, "_before_send", None)
        try:
            arrived = self.store.query(since=since) if since is not None else []
        except StoreError:
            arrived = []
        match = next((b for b in arrived if b.request.query == query), None)
        result = self.composer.result if self.composer is not None else None
        answer = f"{result.status} {result.reason}" if result is not None else "sent"
        if match is None or match.id is None:
            self._flash(f"Sent: {answer}")
            return
        self._select_or_say(match.id)
        self._flash(f"Sent as #{match.id}: {answer}")

    def open_routed_browser(self, url: str | None = None) -> Job | None:
        """Start Chrome/Chromium/Edge routed to this inspector's HTTPS listener, at the app ``url``.

        Asks for the URL (remembering the last one) when not given.
        """
        title = "Cannot open a routed browser"
        listening = self.server.listening if self.server is not None else None
        if listening is None:
            self.report_error(title, "The server is stopped: start it first (Server ▸ Start server).")
            return None
        if not listening.https_port or not listening.spki_pin or not listening.https_url:
            self.report_error(title, "HTTPS is off, and browsers send refine's beacon only over HTTPS: turn it on "
                                     "in Server ▸ Change ports.")
            return None
        if url is None:
            last = str(self.settings.value("browser/url", DEFAULT_APP_URL) or DEFAULT_APP_URL)
            url, ok = QInputDialog.getText(self, "Open app in routed browser",
                                           "Your app's URL (the browser's telemetry goes to this inspector):",
                                           QLineEdit.EchoMode.Normal, last)
            if not ok:
                return None
        url = url.strip()
        problem = _app_url_problem(url)
        if problem:
            self.report_error(title, problem)
            return None
        self.settings.setValue("browser/url", url)
        https_port, pin = listening.https_port, listening.spki_pin
        host = urlsplit(listening.https_url).hostname or "127.0.0.1"

        job = self.route_prover.launch(url, https_port, pin, host)  # an empty tab, proven, then the app
        job.succeeded.connect(lambda launched: self._on_launched(launched, url, listening.https_url))
        return self._run_job(job, error_title=title)

    def _on_launched(self, launched: Launched, url: str, https_url: str) -> None:
        self.optout.note_proof(launched.route)  # a check running now was proven (or not) through it
        name = Path(launched.browser.executable).name
        if launched.route.proven:
            self._flash(f"Opened {name} at {url}: route proven, its telemetry goes to {https_url}; "
                        "it closes when the inspector quits")
        elif not launched.route.browser_closed:
            self.report_error("The routed browser's route is not proven",
                              f"{launched.route.line}. {name} stays on its empty tab; {url} was not opened.")

    def save_png(self, which: str = "window", path: str | None = None) -> Job | None:
        """Save the window (``window``) or the lower pane (``card``) as PNG (asks for a file when not given)."""
        widget = self if which == "window" else self.bottom.currentWidget()
        if widget is None or (widget is not self and not widget.isVisibleTo(self)):
            self.report_error("Nothing to save", "The lower pane is not shown; select a record first.")
            return None
        if path is None:
            folder = str(self.settings.value("png/folder", "") or Path.home())
            name = "telemetry-inspector.png" if which == "window" else "telemetry-inspector-card.png"
            path, _ = QFileDialog.getSaveFileName(self, "Save as PNG", str(Path(folder) / name),
                                                  "PNG images (*.png)")
            if not path:
                return None
        if not path.lower().endswith(".png"):
            path += ".png"
        self.settings.setValue("png/folder", str(Path(path).parent))
        image: QImage = widget.grab().toImage()  # rendering is GUI-thread work; writing the file is not

        def work(_progress: Callable[[int, int], bool]) -> str:
            target = Path(path)
            if not target.parent.is_dir():
                raise OSError(f"no folder {target.parent}")
            temp = target.with_name(f".{target.name}.part")
            if not image.save(str(temp), "PNG"):  # type: ignore[call-overload]  # takes str; the stub says bytes
                raise OSError(f"cannot write {temp}")
            os.replace(temp, target)
            return str(target)

        job = Job("Save PNG", work, expected=(OSError,))
        job.succeeded.connect(lambda saved: self._flash(f"Saved {saved}"))
        return self._run_job(job, error_title="Cannot save the picture")

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
        box = plain_message_box(QMessageBox.Icon.Warning, title, message, parent=self)
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
        self.optout.refresh_view()
        self.compare.refresh_theme()
        self.timeline.update()
        self._update_redacted_badge()
        self._update_server_status()

    def _update_redacted_badge(self) -> None:
        pal = self.redacted_label.palette()
        pal.setColor(self.redacted_label.foregroundRole(), theme.scheme().note)
        self.redacted_label.setPalette(pal)

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt override
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange) \
                and hasattr(self, "compare"):
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
        presentation = _flag(s.value("view/presentation"), False)
        header = s.value("table/header")
        restored_header = False
        if isinstance(header, QByteArray) and not header.isEmpty():
            self.table.horizontalHeader().restoreState(header)  # widths as saved, at the saved text size
            restored_header = self.table.horizontalHeader().count() == COLUMN_COUNT
            if not restored_header:
                self.table.apply_default_widths()
            # Re-apply the restored sort to our model.
            h = self.table.horizontalHeader()
            self.model.sort(h.sortIndicatorSection(), h.sortIndicatorOrder())
        if presentation:
            self._apply_font_scale(theme.PRESENTATION_SCALE, rescale_columns=not restored_header)
            self.presentation_action.blockSignals(True)
            self.presentation_action.setChecked(True)
            self.presentation_action.blockSignals(False)
        follow = s.value("view/follow")
        if follow is not None:
            self.follow_action.setChecked(_flag(follow, True))
        self.timeline_action.setChecked(_flag(s.value("view/timeline"), True))
        if _flag(s.value("view/redact"), False):
            self.redact_action.setChecked(True)
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
        self._closing = True
        self.save_settings()
        self.optout.stop(prove=False)
        self.bridge.close()
        for job in list(self.jobs):
            job.cancel()
        self.pool.waitForDone(15000)  # an export finishes its file or removes it; nothing half-written
        self.stop_browsers()
        super().closeEvent(event)

    def stop_browsers(self) -> None:
        """Close every routed browser this window started (and delete their temporary profiles)."""
        with self._browsers_lock:
            browsers = list(self.browsers)
            self.browsers.clear()  # the same list the route prover reads
        for browser in browsers:
            try:
                browser.stop(timeout=5)
            except Exception:  # quitting must not fail over a browser that is already gone
                log.warning("could not stop the routed browser %s", browser.pid, exc_info=True)


def _flag(value: object, default: bool) -> bool:
    """A boolean from QSettings (INI files give back strings)."""
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    return str(value).lower() in ("true", "1")


def _app_url_problem(url: str) -> str | None:
    """Why ``url`` cannot be opened as the app (one line), or None."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises for a bad port
    except ValueError as exc:
        return f"Not a usable URL {url!r}: {exc}"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"Not an app URL: {url!r}; enter one like {DEFAULT_APP_URL}"
    return None


def _moment(iso: str) -> datetime | None:
    try:
        return parse_iso(iso)
    except ValueError:
        return None


def _local_minute(iso: str) -> str:
    try:
        return parse_iso(iso).astimezone().strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return iso
