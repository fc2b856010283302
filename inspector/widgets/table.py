"""The live table view, and the stack that shows it or the empty state."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QSize, Qt
from PySide6.QtGui import QPainter, QPaintEvent
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QStackedWidget, QStyle, QTableView, QWidget

from inspector.widgets import theme
from inspector.widgets.models import Column

# Initial column widths, tuned for a 1280-pixel window (the user's layout is then remembered).
_WIDTHS = {Column.ID: 44, Column.TIME: 96, Column.KIND: 74, Column.STATUS: 78, Column.HOSTNAME: 132,
           Column.VERSION: 60, Column.RESOURCES: 40, Column.PROVIDERS: 222, Column.BROWSER: 118,
           Column.OS: 118, Column.IP: 82, Column.SESSION: 60, Column.PROJECT_ID: 150}


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
