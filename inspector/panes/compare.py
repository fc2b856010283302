"""The "Compare" mode: two selected records, field by field (``mockserver.records.diff``).

Payload fields by dotted path (``providers.i18n``, ``version``), header-derived
facts under ``client.``, the contact under ``contact.``: the same list
``telemetry-inspector diff ID1 ID2`` prints. Values are shown as JSON, in item
views (never interpreted as markup).
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QPushButton,
    QStackedWidget,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from inspector.widgets import theme
from inspector.widgets.plaintext import plain_label, plain_tooltip
from mockserver.core.beacon import Beacon
from mockserver.core.jsontext import dumps_strict
from mockserver.core.text import plural
from mockserver.records.diff import ADDED, CHANGED, REMOVED, Change, diff_records

PLACEHOLDER = ("Select two records in the table (click one, Ctrl+click the other) to compare them field by field: "
               "the payload (e.g. providers.i18n, version), the facts taken from the headers (client.…) and the "
               "contact. Useful before and after adding a provider or upgrading refine.")
SECTION_NAMES = {"payload": "payload", "client": "from the headers", "contact": "contact"}


def _show(value: Any) -> str:
    return dumps_strict(value)


class ComparePanel(QWidget):
    """Differences from record ``a`` to record ``b``. ``swapRequested()`` asks the window to swap them."""

    swapRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("comparePanel")
        self.a: Beacon | None = None
        self.b: Beacon | None = None
        self.changes: list[Change] = []

        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 8, 10, 6)
        layout.setSpacing(6)
        top = QHBoxLayout()
        self.title = theme.derive_font(plain_label("Compare"), 1.15, bold=True)
        self.title.setObjectName("compareTitle")
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        top.addWidget(self.title, 1)
        self.swap_button = QPushButton("Swap")
        self.swap_button.setToolTip("Compare the other way round")
        self.swap_button.setAutoDefault(False)
        self.swap_button.clicked.connect(lambda: self.swapRequested.emit())
        top.addWidget(self.swap_button)
        layout.addLayout(top)

        self.stack = QStackedWidget()
        self.placeholder = plain_label(PLACEHOLDER)
        self.placeholder.setWordWrap(True)
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.stack.addWidget(self.placeholder)
        self.tree = QTreeWidget()
        self.tree.setObjectName("changes")
        self.tree.setColumnCount(4)
        self.tree.setHeaderLabels(["Change", "Field", "Before", "After"])
        self.tree.setRootIsDecorated(False)
        self.tree.setIndentation(0)
        self.tree.setAlternatingRowColors(True)
        self.tree.setUniformRowHeights(True)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        header = self.tree.header()
        header.resizeSection(0, 90)
        header.resizeSection(1, 260)
        header.resizeSection(2, 300)
        header.setStretchLastSection(True)
        self.stack.addWidget(self.tree)
        layout.addWidget(self.stack, 1)
        self.set_records(None, None)

    def set_records(self, a: Beacon | None, b: Beacon | None) -> None:
        """Compare ``a`` → ``b`` (both already redacted when redaction is on); None shows the hint."""
        self.a, self.b = a, b
        self.tree.clear()
        if a is None or b is None:
            self.changes = []
            self.title.setText("Compare")
            self.swap_button.setEnabled(False)
            self.stack.setCurrentWidget(self.placeholder)
            return
        self.changes = diff_records(a, b)
        count = len(self.changes)
        self.title.setText(
            f"#{a.id} ({a.kind}, {a.received_at}) → #{b.id} ({b.kind}, {b.received_at}):  "
            + (f"{plural(count, 'difference')}" if count
               else "no differences in payload, header facts or contact"))
        self.tree.setHeaderLabels(["Change", "Field", f"Before (#{a.id})", f"After (#{b.id})"])
        s = theme.scheme()
        colours = {ADDED: s.ok, REMOVED: s.invalid, CHANGED: s.note}
        for change in self.changes:
            before = "" if change.change == ADDED else _show(change.before)
            after = "" if change.change == REMOVED else _show(change.after)
            where = SECTION_NAMES.get(change.section, change.section)
            item = QTreeWidgetItem(self.tree, [change.change, change.path, before, after])
            item.setForeground(0, colours.get(change.change, s.muted))
            item.setToolTip(1, plain_tooltip(f"{change.path} ({where})"))
            item.setToolTip(2, plain_tooltip(before))
            item.setToolTip(3, plain_tooltip(after))
        self.swap_button.setEnabled(True)
        self.stack.setCurrentWidget(self.tree)

    def paths(self) -> list[str]:
        """The changed paths as listed (for tests)."""
        items = (self.tree.topLevelItem(i) for i in range(self.tree.topLevelItemCount()))
        return [item.text(1) for item in items if item is not None]

    def refresh_theme(self) -> None:
        """Re-colour after a palette change."""
        self.set_records(self.a, self.b)
