"""The detail pane: everything about one record, as plain text.

Every value shown here came from a client and is untrusted: labels use
``Qt.PlainText``, JSON and the raw request sit in ``QPlainTextEdit``s (no
HTML), and item views (which never interpret markup) hold the rest.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRect, QSize, Qt, Signal
from PySide6.QtGui import QFont, QFontMetrics, QGuiApplication
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFrame,
    QHBoxLayout,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QStackedWidget,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTabWidget,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from inspector.widgets import theme
from inspector.widgets.highlight import JsonHighlighter, RawRequestHighlighter
from inspector.widgets.icons import status_icon
from inspector.widgets.plaintext import plain_label, plain_tooltip
from mockserver.core.beacon import Beacon
from mockserver.core.clock import parse_iso
from mockserver.core.jsontext import dumps_strict
from mockserver.core.text import plural
from mockserver.records.collected import collected_fields, curl_command, raw_request_text, raw_url
from mockserver.records.markdown import collected_markdown

NOT_SENT_TEXT = "(not sent)"


def monospace() -> QFont:
    """The system's fixed-width font (at the current text scale)."""
    return theme.monospace()


def mono(widget: QWidget) -> QWidget:
    """Give ``widget`` the fixed-width font (kept in step with presentation mode)."""
    return theme.derive_font(widget, mono=True)


def pretty_json(value: object) -> str:
    """Indented strict JSON, non-ASCII kept (what the decoded tab shows and "Copy JSON" copies).

    A lone surrogate is written as its escape ``\\udXXX``: Qt would drop it silently.
    """
    return dumps_strict(value, indent=2)


def _local(iso: str) -> str:
    """An ISO UTC time as local time with milliseconds, plus the original."""
    try:
        moment = parse_iso(iso).astimezone()
    except ValueError:
        return iso
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d} {moment.strftime('%Z')} ({iso})"


_LONG_RUN = re.compile(r"\S{24,}")


def breakable(text: str) -> str:
    """``text`` with a zero-width space between the characters of long unbroken runs (a 300-character
    projectId, a base64 string), so word wrapping can break them instead of cutting them off."""
    if len(text) < 24:
        return text
    return _LONG_RUN.sub(lambda m: "\u200b".join(m.group()), text)


class WrappingDelegate(QStyledItemDelegate):
    """Measures wrapped text against the column's current width.

    QTreeView's own size hint measures as if the column were unbounded, so
    long explanations would be cut; this gives each row the height its
    wrapped cells need.
    """

    def __init__(self, view: QTreeWidget) -> None:
        super().__init__(view)
        self._view = view

    def initStyleOption(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> None:  # noqa: N802
        super().initStyleOption(option, index)
        if option.text:
            option.text = breakable(option.text)  # painted only: the item's own text is unchanged

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> QSize:  # noqa: N802
        base = super().sizeHint(option, index)
        text = index.data(Qt.ItemDataRole.DisplayRole)
        text = breakable(str(text)) if text else text
        if not text or self._view.isFirstColumnSpanned(index.row(), index.parent()):
            return base
        width = self._view.columnWidth(index.column()) - 20  # the style's text margins, with room to spare
        if width <= 0:
            return base
        font = index.data(Qt.ItemDataRole.FontRole) or option.font
        metrics = QFontMetrics(font)
        rect = metrics.boundingRect(QRect(0, 0, width, 100_000),
                                    int(Qt.TextFlag.TextWordWrap), str(text))
        return QSize(base.width(), max(base.height(), rect.height() + metrics.height() // 2 + 4))


class DetailPane(QWidget):
    """What one record collected, its problems and notes, its JSON and its raw request."""

    #: a status message for the window's status bar (e.g. "Copied the curl command")
    message = Signal(str)

    def __init__(self, base_url: Callable[[], str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._base_url = base_url
        self.beacon: Beacon | None = None

        self._stack = QStackedWidget(self)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(self._stack)

        self.placeholder = plain_label(
            "Select a request above to see what it collected, where each value came from, "
            "and what in the app makes it so.")
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.placeholder.setWordWrap(True)
        self._stack.addWidget(self.placeholder)

        page = QWidget()
        self._stack.addWidget(page)
        layout = QVBoxLayout(page)
        layout.setContentsMargins(8, 6, 8, 4)
        layout.setSpacing(4)

        layout.addLayout(self._build_title_row())

        self.meta = plain_label()
        self.meta.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.meta.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        layout.addWidget(self.meta)

        # Body: tabs on the left, problems and notes on the right (prominent, always visible).
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setObjectName("detailSplitter")
        self.splitter.setChildrenCollapsible(False)
        layout.addWidget(self.splitter, 1)

        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.splitter.addWidget(self.tabs)

        self._build_collected_tab()
        self._build_json_tab()
        self._build_raw_tab()
        self._build_issues_side()
        self.show_beacon(None)

    def _build_title_row(self) -> QHBoxLayout:
        """What the record is, and the copy buttons."""
        top = QHBoxLayout()
        self.title = plain_label()
        theme.derive_font(self.title, 1.15, bold=True)
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        top.addWidget(self.title, 1)
        self.copy_json_button = self._button("Copy JSON", "Copy the decoded payload, pretty-printed", self.copy_json)
        self.copy_url_button = self._button("Copy URL", "Copy the full URL as it arrived (raw payload)", self.copy_url)
        self.copy_curl_button = self._button(
            "Copy curl", "Copy a curl command that sends this request to the mock again", self.copy_curl)
        self.copy_record_button = self._button("Copy record", "Copy the whole record as JSON", self.copy_record)
        for button in (self.copy_json_button, self.copy_url_button, self.copy_curl_button, self.copy_record_button):
            top.addWidget(button)
        return top


    def _build_collected_tab(self) -> None:
        """The "What was collected" tab: a field per row, wrapped, with its source and cause."""
        self.collected = QTreeWidget()
        self.collected.setObjectName("collected")
        self.collected.setColumnCount(4)
        self.collected.setHeaderLabels(["Field", "Value", "Source", "What makes it so"])
        self.collected.setRootIsDecorated(False)
        self.collected.setIndentation(0)
        self.collected.setWordWrap(True)
        self.collected.setUniformRowHeights(False)
        self.collected.setAlternatingRowColors(True)
        self.collected.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.collected.setTextElideMode(Qt.TextElideMode.ElideNone)
        self.collected.setItemDelegate(WrappingDelegate(self.collected))
        header = self.collected.header()
        header.setStretchLastSection(True)
        header.resizeSection(0, 170)
        header.resizeSection(1, 135)
        header.resizeSection(2, 240)
        # Wrapped rows must be measured again when a column's width changes.
        header.sectionResized.connect(lambda *_: self.collected.doItemsLayout())
        self.tabs.addTab(self.collected, "What was collected")
        self.copy_markdown_button = self._button(
            "Copy as Markdown", "Copy the \"What was collected\" card as Markdown tables, in the docs page's format",
            self.copy_markdown)
        self.copy_markdown_button.setFlat(True)
        self.tabs.setCornerWidget(self.copy_markdown_button, Qt.Corner.TopRightCorner)


    def _build_json_tab(self) -> None:
        """The "Decoded JSON" tab: how it decoded, the raw payload and the pretty JSON."""
        json_page = QWidget()
        json_layout = QVBoxLayout(json_page)
        json_layout.setContentsMargins(0, 4, 0, 0)
        self.decoding = plain_label()
        self.decoding.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        json_layout.addWidget(self.decoding)
        self.raw_payload = QLineEdit()
        self.raw_payload.setReadOnly(True)
        mono(self.raw_payload)
        self.raw_payload.setPlaceholderText("no payload")
        json_layout.addWidget(self.raw_payload)
        self.json_view = QPlainTextEdit()
        self.json_view.setReadOnly(True)
        mono(self.json_view)
        self.json_view.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.json_highlighter = JsonHighlighter(self.json_view.document())
        json_layout.addWidget(self.json_view, 1)
        self.tabs.addTab(json_page, "Decoded JSON")

    def _build_raw_tab(self) -> None:
        """The "Raw request" tab: the URL and the request as it arrived."""
        raw_page = QWidget()
        raw_layout = QVBoxLayout(raw_page)
        raw_layout.setContentsMargins(0, 4, 0, 0)
        self.url_view = QLineEdit()
        self.url_view.setReadOnly(True)
        mono(self.url_view)
        raw_layout.addWidget(self.url_view)
        self.raw_view = QPlainTextEdit()
        self.raw_view.setReadOnly(True)
        mono(self.raw_view)
        self.raw_view.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        self.raw_view.setWordWrapMode(self.raw_view.wordWrapMode().WrapAnywhere)
        self.raw_highlighter = RawRequestHighlighter(self.raw_view.document())
        raw_layout.addWidget(self.raw_view, 1)
        self.tabs.addTab(raw_page, "Raw request")

    def _build_issues_side(self) -> None:
        """Problems and notes, on the right of the tabs (always visible)."""
        side = QFrame()
        side_layout = QVBoxLayout(side)
        side_layout.setContentsMargins(6, 0, 0, 0)
        self.issues_title = plain_label()
        theme.derive_font(self.issues_title, bold=True)
        side_layout.addWidget(self.issues_title)
        self.issues = QListWidget()
        self.issues.setObjectName("issues")
        self.issues.setWordWrap(True)
        self.issues.setUniformItemSizes(False)
        self.issues.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.issues.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.issues.setTextElideMode(Qt.TextElideMode.ElideNone)
        self.issues.setSpacing(2)
        self.issues.setIconSize(QSize(16, 16))
        side_layout.addWidget(self.issues, 1)
        self.splitter.addWidget(side)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([900, 300])

    def _button(self, text: str, tip: str, slot: Callable[[], None]) -> QPushButton:
        button = QPushButton(text)
        button.setToolTip(tip)
        button.setAutoDefault(False)
        button.clicked.connect(slot)
        return button

    # -- showing a record -----------------------------------------------------

    def show_beacon(self, beacon: Beacon | None) -> None:
        """Show ``beacon`` (None: the placeholder)."""
        self.beacon = beacon
        if beacon is None:
            self._stack.setCurrentIndex(0)
            for button in (self.copy_json_button, self.copy_url_button, self.copy_curl_button,
                           self.copy_record_button, self.copy_markdown_button):
                button.setEnabled(False)
            return
        self._stack.setCurrentIndex(1)
        request = beacon.request
        self.title.setText(f"#{beacon.id}  {beacon.kind}  ·  {request.method} {request.path}  ·  {beacon.status}")
        pal = self.title.palette()
        pal.setColor(self.title.foregroundRole(),
                     theme.scheme().invalid if beacon.status != "ok" else self.palette().color(self.foregroundRole()))
        self.title.setPalette(pal)
        self.meta.setText("  ·  ".join(part for part in (
            f"received {_local(beacon.received_at)}",
            f"session {beacon.session}" if beacon.session is not None else "",
            f"{request.scheme.upper()}",
            f"client {beacon.client.get('ip')}" if beacon.client.get("ip") else "",
        ) if part))
        self._fill_collected(beacon)
        self._fill_issues(beacon)
        self._fill_json(beacon)
        self.url_view.setText(raw_url(beacon))
        self.url_view.setCursorPosition(0)
        self.raw_view.setPlainText(raw_request_text(beacon))
        self.copy_json_button.setEnabled(beacon.payload is not None)
        for button in (self.copy_url_button, self.copy_curl_button, self.copy_record_button,
                       self.copy_markdown_button):
            button.setEnabled(True)

    def _fill_collected(self, beacon: Beacon) -> None:
        tree = self.collected
        tree.clear()
        s = theme.scheme()
        bold = QFont(tree.font())
        bold.setBold(True)
        italic = QFont(tree.font())
        italic.setItalic(True)
        section_item: QTreeWidgetItem | None = None
        for field in collected_fields(beacon):
            if section_item is None or section_item.text(0) != field.section:
                section_item = QTreeWidgetItem(tree, [field.section])
                section_item.setFirstColumnSpanned(True)
                section_item.setFont(0, bold)
                section_item.setFlags(Qt.ItemFlag.ItemIsEnabled)
                section_item.setExpanded(True)
            name = field.name if field.documented else f"{field.name}  (not in docs)"
            value = field.value if field.value is not None else NOT_SENT_TEXT
            item = QTreeWidgetItem(section_item, [name, value, field.source, field.explanation])
            for column, text in enumerate((name, value, field.source, field.explanation)):
                item.setToolTip(column, plain_tooltip(text))
            if field.value is None:
                item.setFont(1, italic)
                item.setForeground(1, s.muted)
            if not field.documented:
                item.setForeground(0, s.note)
        tree.expandAll()

    def _fill_issues(self, beacon: Beacon) -> None:
        self.issues.clear()
        s = theme.scheme()
        for problem in beacon.problems:
            item = QListWidgetItem(status_icon("invalid", s), problem)
            item.setToolTip(plain_tooltip(problem))
            self.issues.addItem(item)
        for note in beacon.notes:
            item = QListWidgetItem(status_icon("note", s), note)
            item.setToolTip(plain_tooltip(note))
            self.issues.addItem(item)
        problems, notes = len(beacon.problems), len(beacon.notes)
        if not problems and not notes:
            self.issues_title.setText("No problems, no notes")
            colour = s.ok
        else:
            words = []
            if problems:
                words.append(f"{plural(problems, 'problem')}")
            words.append(f"{plural(notes, 'note')} (documented vs sent)")
            self.issues_title.setText(" · ".join(words))
            colour = s.invalid if problems else s.note
        pal = self.issues_title.palette()
        pal.setColor(self.issues_title.foregroundRole(), colour)
        self.issues_title.setPalette(pal)

    def _fill_json(self, beacon: Beacon) -> None:
        facts = []
        if beacon.encoding:
            facts.append(f"text encoding: {beacon.encoding}")
        if beacon.base64_variant:
            facts.append(f"base64: {beacon.base64_variant}")
        if beacon.raw_payload is not None:
            facts.append(f"raw payload: {len(beacon.raw_payload)} characters")
        self.decoding.setText("  ·  ".join(facts) if facts else "nothing to decode")
        self.raw_payload.setText(beacon.raw_payload or "")
        self.raw_payload.setCursorPosition(0)
        if beacon.payload is not None:
            self.json_view.setPlainText(pretty_json(beacon.payload))
        elif beacon.problems:
            self.json_view.setPlainText("// nothing decoded:\n" + "\n".join(f"// {p}" for p in beacon.problems))
        else:
            self.json_view.setPlainText("// this request carries no payload")

    def refresh_theme(self) -> None:
        """Re-colour for a new palette."""
        self.json_highlighter.refresh_theme()
        self.raw_highlighter.refresh_theme()
        self.show_beacon(self.beacon)

    # -- copying --------------------------------------------------------------

    def _copy(self, text: str, what: str) -> None:
        QGuiApplication.clipboard().setText(text)
        self.message.emit(f"Copied {what}")

    def copy_json(self) -> None:
        """Copy the decoded payload as indented JSON."""
        if self.beacon is not None and self.beacon.payload is not None:
            self._copy(pretty_json(self.beacon.payload), "the decoded JSON")

    def copy_url(self) -> None:
        """Copy the full URL as it arrived."""
        if self.beacon is not None:
            self._copy(raw_url(self.beacon), "the raw URL")

    def copy_curl(self) -> None:
        """Copy a curl command replaying the request against the local mock."""
        if self.beacon is not None:
            self._copy(curl_command(self.beacon, self._base_url()), "the curl command")

    def copy_markdown(self) -> None:
        """Copy the "What was collected" card as Markdown (what is shown: redacted when redaction is on)."""
        if self.beacon is not None:
            self._copy(collected_markdown(self.beacon), "the card as Markdown")

    def copy_record(self) -> None:
        """Copy the whole record (the one JSON form) indented."""
        if self.beacon is not None:
            self._copy(pretty_json(self.beacon.to_dict()), "the record as JSON")

    # -- for tests and exporters ------------------------------------------------

    def collected_rows(self) -> list[tuple[str, str, str, str, str]]:
        """(section, field, value, source, explanation) as displayed."""
        sections = (self.collected.topLevelItem(i) for i in range(self.collected.topLevelItemCount()))
        return [(section.text(0), child.text(0), child.text(1), child.text(2), child.text(3))
                for section in sections if section is not None
                for child in (section.child(j) for j in range(section.childCount())) if child is not None]

    def issue_texts(self) -> list[str]:
        """Problems then notes, as displayed."""
        return [self.issues.item(i).text() for i in range(self.issues.count())]


__all__ = ["DetailPane", "monospace", "pretty_json"]
