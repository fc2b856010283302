"""The filter bar: free text, kind, status and session; the text filter waits for a pause on a
large journal (see :func:`inspector.loading.filters_instantly`)."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import QComboBox, QLineEdit, QSizePolicy, QToolBar, QWidget

from inspector.loading import filters_instantly
from inspector.widgets.icons import status_icon
from inspector.widgets.models import BeaconTableModel
from mockserver.core.beacon import KINDS, STATUSES
from mockserver.core.clock import parse_iso
from mockserver.core.text import plural
from mockserver.storage.store import BeaconStore


def local_minute(iso: str) -> str:
    """``iso`` as local time to the minute (as it is when it does not parse)."""
    try:
        return parse_iso(iso).astimezone().strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return iso


class FilterBar(QToolBar):
    """The toolbar of filters over ``model``; its session list comes from ``store``."""

    def __init__(self, model: BeaconTableModel, store: BeaconStore, parent: QWidget | None = None) -> None:
        super().__init__("Filter", parent)
        self.model = model
        self.store = store
        self.setObjectName("filterBar")
        self.setMovable(False)
        self.setFloatable(False)

        self.filter_edit = QLineEdit()
        self.filter_edit.setObjectName("filter")
        self.filter_edit.setPlaceholderText("Filter (Ctrl+F): words in any column, e.g. 4.58 chrome invalid")
        self.filter_edit.setClearButtonEnabled(True)
        self.filter_edit.setAcceptDrops(False)  # a dropped HAR file is for the window, not the filter
        self.filter_edit.setMinimumWidth(300)
        self.filter_edit.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(200)
        self._timer.timeout.connect(self.apply_text_filter)
        self.filter_edit.textChanged.connect(self._on_text)
        QShortcut(QKeySequence(Qt.Key.Key_Escape), self.filter_edit, self.filter_edit.clear,
                  context=Qt.ShortcutContext.WidgetShortcut)
        self.addWidget(self.filter_edit)

        self.kind_combo = QComboBox()
        self.kind_combo.setObjectName("kindFilter")
        self.kind_combo.setToolTip("Show one kind of request")
        self.kind_combo.addItem("All kinds", None)
        for kind in KINDS:
            self.kind_combo.addItem(kind, kind)
        self.kind_combo.currentIndexChanged.connect(
            lambda: self.model.set_filter(kind=self.kind_combo.currentData()))
        self.addWidget(self.kind_combo)

        self.status_combo = QComboBox()
        self.status_combo.setObjectName("statusFilter")
        self.status_combo.setToolTip("Show only decoded (ok) or only invalid requests")
        self.status_combo.addItem("Any status", None)
        for status in STATUSES:
            self.status_combo.addItem(status_icon(status), status, status)
        self.status_combo.currentIndexChanged.connect(
            lambda: self.model.set_filter(status=self.status_combo.currentData()))
        self.addWidget(self.status_combo)

        self.session_combo = QComboBox()
        self.session_combo.setObjectName("sessionFilter")
        self.session_combo.setToolTip("Earlier captures stay in the database, one session per start")
        # Long session labels (times, import file names) open in the popup, not across the toolbar.
        self.session_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.session_combo.setMinimumContentsLength(22)
        self.session_combo.currentIndexChanged.connect(self._on_session)
        self.addWidget(self.session_combo)
        self.addSeparator()

    def refresh_sessions(self) -> None:
        """List the store's sessions again (empty earlier runs left out), keeping the chosen one."""
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
            started = local_minute(info.started_at)
            label = f"Session {info.id} · {started}"
            label += " (current)" if info.id == current else f" · {plural(info.count, 'record')}"
            if info.label:
                label += f" · {info.label}"
            combo.addItem(label, info.id)
        index = combo.findData(wanted)
        combo.setCurrentIndex(index if index >= 0 else 0)
        combo.blockSignals(False)
        self._on_session()

    def _on_session(self) -> None:
        value = self.session_combo.currentData()
        session = self.store.session if value == -1 else value
        self.model.set_filter(session=session)

    def focus_filter(self) -> None:
        """Ctrl+F: put the cursor in the filter box."""
        self.filter_edit.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.filter_edit.selectAll()

    def _on_text(self, _text: str) -> None:
        if filters_instantly(self.model.total):
            self.apply_text_filter()
        else:
            self._timer.start()

    def apply_text_filter(self) -> None:
        """Apply the filter box now (typing applies it by itself)."""
        self._timer.stop()
        self.model.set_filter(self.filter_edit.text())
