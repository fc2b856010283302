"""No record text is ever rendered as rich text: hostile records through every view of the real window.

Qt renders a tooltip, a What's This text or an AutoText label as HTML when
``Qt.mightBeRichText`` says its first line looks like HTML; a button or menu
text turns ``&x`` into a mnemonic. The records here carry markup in every
field a user can see; the walk renders each text the way Qt would and asserts
it shows that markup literally, with no image, link or heading.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

from PySide6 import QtGui
from PySide6.QtCore import QAbstractListModel, QItemSelectionModel, QModelIndex, Qt
from PySide6.QtGui import QAction, QTextDocument
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QComboBox,
    QHeaderView,
    QLabel,
    QMainWindow,
    QTabBar,
    QTextEdit,
    QWidget,
)

from mockserver.core.capture import RawRequest, capture
from mockserver.core.payloads import btoa_json
from mockserver.storage.store import BeaconStore
from tests.gui.conftest import REFINE4, beacon_url, send

H1 = "<h1>X</h1>"
IMG = "<img src=file:///etc/passwd>"
LINK = "<a href=https://evil.example>link</a>"
ENTITY = "x&amp;y"  # letters around it: escaping "&File" gives "&amp;File", which must not count
MARKDOWN = "[x](https://evil.example)"
MNEMONIC = "&File-opt-out"
BOLD = "<b>b<b>"  # no '/' and lower case: survives as a Referer's hostname and as a file name
MARKERS = (H1, IMG, LINK, ENTITY, MARKDOWN, MNEMONIC, BOLD)
UA = f"{BOLD} {ENTITY} Mozilla/5.0 Chrome/131.0.0.0"
SESSION_LABEL = f"import: {H1}{MNEMONIC}"

ROLES = {  # item data roles and how Qt shows each
    Qt.ItemDataRole.DisplayRole: "plain",  # the delegate paints it as plain text
    Qt.ItemDataRole.ToolTipRole: "rich?",
    Qt.ItemDataRole.StatusTipRole: "plain",  # the status bar paints it as plain text
    Qt.ItemDataRole.WhatsThisRole: "rich?",
}


def hostile_payload(project_id: str) -> dict:
    return {**REFINE4, "providers": {**REFINE4["providers"], MNEMONIC: True}, "version": f"4.58.0 {LINK}",
            "projectId": project_id, H1: MARKDOWN, "x": ENTITY}


def hostile_requests() -> list[RawRequest]:
    """A beacon, a second one to compare with, a CLI post, a /projects post with an email, an invalid beacon."""
    headers = {"User-Agent": UA, "Referer": f"http://{BOLD}/"}
    json_headers = {**headers, "Content-Type": "application/json"}
    cli = {"command": H1, "nodeVersion": ENTITY, "projectId": IMG, "packages": [{"name": LINK, "version": MNEMONIC}]}
    project = {"email": f"{H1}@evil.example", "answers": {"name": LINK, MNEMONIC: MARKDOWN}, "source": MARKDOWN}
    return [
        RawRequest("GET", "/telemetry", f"payload={btoa_json(hostile_payload(H1 + IMG))}", headers, peer="127.0.0.1"),
        RawRequest("GET", "/telemetry", f"payload={btoa_json(hostile_payload(LINK + MARKDOWN))}", headers,
                   peer="127.0.0.1"),
        RawRequest("POST", "/cli", "", json_headers, json.dumps(cli).encode(), peer="127.0.0.1"),
        RawRequest("POST", "/projects", "", json_headers, json.dumps(project).encode(), peer="127.0.0.1"),
        RawRequest("GET", "/telemetry", f"payload={H1}", headers, peer="127.0.0.1"),
    ]


def rendered(text: str, text_format: Qt.TextFormat = Qt.TextFormat.AutoText) -> QTextDocument:
    """``text`` laid out as Qt shows it in a tooltip (AutoText) or a label of ``text_format``."""
    document = QTextDocument()
    if text_format == Qt.TextFormat.RichText or (text_format == Qt.TextFormat.AutoText
                                                 and QtGui.Qt.mightBeRichText(text)):
        document.setHtml(text)
    elif text_format == Qt.TextFormat.MarkdownText:
        document.setMarkdown(text)
    else:
        document.setPlainText(text)
    return document


def active_markup(document: QTextDocument) -> list[str]:
    """The images, links and headings ``document`` holds."""
    found = []
    block = document.begin()
    while block.isValid():
        if block.blockFormat().headingLevel():
            found.append("heading")
        fragments = block.begin()
        while not fragments.atEnd():
            char_format = fragments.fragment().charFormat()
            if char_format.isImageFormat():
                found.append("image")
            if char_format.isAnchor():
                found.append("link")
            fragments += 1
        block = block.next()
    return found


def without_mnemonics(text: str) -> str:
    """A button's or menu's text as shown: ``&&`` is one '&', ``&x`` underlines x."""
    return re.sub(r"&(.)", r"\1", text)


def carries(text: str, marker: str) -> bool:
    """``text`` holds ``marker``, as it is or escaped (as HTML, or as a '&&' mnemonic)."""
    return any(form in text for form in (marker, html.escape(marker, quote=False), marker.replace("&", "&&")))


class Walk:
    """Every text of the window, shown or not, each checked the way Qt would show it."""

    def __init__(self) -> None:
        self.failures: list[str] = []
        self.shown_at: set[str] = set()  # where a marker was seen, shown literally

    def check(self, where: str, text: object, how: str, text_format: Qt.TextFormat = Qt.TextFormat.AutoText) -> None:
        if not isinstance(text, str) or not text:
            return
        if how == "mnemonic":
            document = rendered(without_mnemonics(text), Qt.TextFormat.PlainText)
        elif how == "plain":
            document = rendered(text, Qt.TextFormat.PlainText)
        else:  # "rich?": a tooltip or What's This text, a label of text_format
            document = rendered(text, text_format)
        shown = document.toPlainText()
        markup = active_markup(document)
        if markup:
            self.failures.append(f"{where}: {markup} in {text!r}")
        for marker in MARKERS:
            if carries(text, marker):
                if marker in shown:
                    self.shown_at.add(where)
                else:
                    self.failures.append(f"{where}: {marker!r} not shown literally in {text!r} (shows {shown!r})")

    def model(self, where: str, model, parent: QModelIndex | None = None) -> None:
        parent = parent if parent is not None else QModelIndex()
        # PySide6 keeps a list model's columnCount private
        columns = 1 if isinstance(model, QAbstractListModel) else model.columnCount(parent)
        for section in range(columns) if not parent.isValid() else ():
            self.check(f"{where} header", model.headerData(section, Qt.Orientation.Horizontal,
                                                           Qt.ItemDataRole.ToolTipRole), "rich?")
        for row in range(model.rowCount(parent)):
            for column in range(columns):
                index = model.index(row, column, parent)
                for role, how in ROLES.items():
                    self.check(f"{where} {role.name}", index.data(role), how)
                if column == 0 and columns > 1 and model.rowCount(index) > 0:
                    self.model(where, model, index)

    def action(self, where: str, action: QAction) -> None:
        self.check(f"{where} action text", action.text(), "mnemonic")
        self.check(f"{where} action icon text", action.iconText(), "mnemonic")
        self.check(f"{where} action tooltip", action.toolTip(), "rich?")
        self.check(f"{where} action status tip", action.statusTip(), "plain")
        self.check(f"{where} action what's this", action.whatsThis(), "rich?")

    def widget(self, widget: QWidget) -> None:
        where = f"{type(widget).__name__}#{widget.objectName()}"
        self.check(f"{where} window title", widget.windowTitle(), "plain")
        self.check(f"{where} tooltip", widget.toolTip(), "rich?")
        self.check(f"{where} what's this", widget.whatsThis(), "rich?")
        self.check(f"{where} status tip", widget.statusTip(), "plain")
        for action in widget.actions():
            self.action(where, action)
        if isinstance(widget, QLabel):
            self.check(f"{where} label", widget.text(), "rich?", widget.textFormat())
        if isinstance(widget, QTextEdit):  # the one text widget that can hold rich text
            self.check(f"{where} text edit", widget.toPlainText(), "plain")
            if active_markup(widget.document()):
                self.failures.append(f"{where}: {active_markup(widget.document())} in its document")
        if isinstance(widget, QAbstractButton):
            self.check(f"{where} button", widget.text(), "mnemonic")
        if isinstance(widget, QTabBar):
            for i in range(widget.count()):
                self.check(f"{where} tab", widget.tabText(i), "mnemonic")
                self.check(f"{where} tab tooltip", widget.tabToolTip(i), "rich?")
        if isinstance(widget, QComboBox):
            self.model(where, widget.model())
        if isinstance(widget, QAbstractItemView) and not isinstance(widget, QHeaderView) and widget.model() is not None:
            self.model(where, widget.model())
        if isinstance(widget, QMainWindow):
            self.check(f"{where} status bar", widget.statusBar().currentMessage(), "plain")

    def window(self, window) -> None:
        for widget in [window, *window.findChildren(QWidget)]:
            self.widget(widget)
        timeline = window.timeline
        timeline.recompute()
        for i, bucket in enumerate(timeline.buckets):
            if bucket.total:
                self.check("timeline bucket tooltip", timeline.bucket_tooltip(i), "rich?")


def store_hostile_records(path: Path) -> list[int | None]:
    """The hostile records in a real store at ``path``, in a session with a hostile label; their ids."""
    store = BeaconStore(path)
    try:
        store.new_session(SESSION_LABEL)
        return [store.append(capture(raw)).id for raw in hostile_requests()]
    finally:
        store.close()


def test_hostile_record_text_is_never_rendered_as_rich_text(make_window, db_path, qtbot, tmp_path):
    beacon_a, beacon_b, cli, project, invalid = store_hostile_records(db_path)
    window = make_window(db_path)
    window.resize(1200, 800)
    window.show()
    qtbot.waitExposed(window)
    qtbot.waitUntil(lambda: window.model.total == 5, timeout=10000)
    walk = Walk()
    walk.window(window)  # the table, the session combo

    for record_id in (beacon_a, cli, project, invalid):
        assert window.select_record(record_id)
        for tab in range(window.detail.tabs.count()):  # collected, decoded JSON, raw request
            window.detail.tabs.setCurrentIndex(tab)
            walk.window(window)
    assert window.detail.raw_payload.text() == H1  # the invalid one: its payload as it came
    window.select_record(beacon_a)
    assert f'"projectId": "{H1}{IMG}"' in window.detail.json_view.toPlainText()  # plain-text widgets

    window.select_record(beacon_a)
    flags = QItemSelectionModel.SelectionFlag.Select | QItemSelectionModel.SelectionFlag.Rows
    window.table.selectionModel().select(window.model.index(window.model.row_of(beacon_b), 0), flags)
    window.compare_selected_action.trigger()
    assert window.mode == "compare" and window.compare.paths()
    walk.window(window)

    window.mode_actions["optout"].trigger()  # the check watches from now on: this beacon offends
    send(beacon_url(window, hostile_payload(H1 + IMG)), headers={"User-Agent": UA, "Referer": f"http://{BOLD}/"})
    qtbot.waitUntil(lambda: window.optout.headline.text() == "FAIL", timeout=5000)
    assert len(window.optout.offending_ids()) == 1
    walk.window(window)
    window.optout.stop_button.click()

    composer = window.show_composer()  # it offers no prefill from a record: type hostile inputs into it
    composer.send_project.setChecked(True)
    composer.project_id.setText(H1 + IMG)
    composer.version.setText(LINK)
    composer.referer.setText(f"http://{BOLD}/")
    walk.window(window)
    assert f'"projectId":"{H1}{IMG}"' in composer.json_preview.toPlainText()
    composer.close()

    bad = tmp_path / f"{BOLD}{MNEMONIC}.har"  # a hostile file name: the import's progress and its error
    bad.write_text("not json")
    job = window.import_har(str(bad))
    with qtbot.waitSignal(job.finished, timeout=10000):
        pass
    assert window.last_error.startswith(f"Cannot import: {bad} is not a HAR file")
    walk.window(window)

    assert sorted(set(walk.failures)) == []
    for where in ("BeaconTable#beacons ToolTipRole", "QTreeWidget#collected ToolTipRole",
                  "QListWidget#issues ToolTipRole", "QTreeWidget#changes ToolTipRole",
                  "QListWidget#offending DisplayRole", "QComboBox#sessionFilter DisplayRole", "QLabel#"):
        assert any(seen.startswith(where) for seen in walk.shown_at), (where, sorted(walk.shown_at))
