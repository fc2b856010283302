"""The composer dialog: send the exact beacon ``@refinedev/core`` sends for chosen inputs.

A front end to :mod:`mockserver.reach.compose` (the same code as ``telemetry-inspector
send``): the preview shows the JSON and the URL as refine would build them
while you type; Send delivers it to this inspector's running mock on a worker
thread and shows the exact URL it sent and the answer. When ``btoa`` cannot
encode an input (a character above U+00FF) refine sends nothing at all, and
so does the composer: it says why instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt, QThreadPool, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from inspector.jobs import Job
from inspector.widgets import theme
from inspector.widgets.plaintext import plain_label
from mockserver.core.checks import PROVIDERS
from mockserver.core.payloads import BROWSER, DEFAULT_PROVIDERS, DEFAULT_VERSION, NODE, BtoaRefused
from mockserver.core.text import printable
from mockserver.reach.compose import (
    ComposedRequest,
    SendError,
    SendResult,
    compose_beacon,
    send,
)

DEFAULT_REFERER = "http://localhost:5173/"


class ComposerDialog(QDialog):
    """Compose and send a beacon to ``base_url()`` (None when the server is stopped)."""

    #: a beacon is about to be sent
    sending = Signal()
    #: a beacon was delivered: the exact URL sent
    sent = Signal(str)

    def __init__(self, base_url: Callable[[], str | None], pool: QThreadPool, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Compose a beacon")
        self.setObjectName("composer")
        self._base_url = base_url
        self._pool = pool
        self.request: ComposedRequest | None = None
        self.refusal: str | None = None
        self.job: Job | None = None
        self.sent_url: str | None = None
        self.result: SendResult | None = None  # type: ignore[assignment]  # hides QDialog.result(), which nothing calls
        self.resize(780, 580)

        layout = QVBoxLayout(self)
        intro = plain_label("Builds the request @refinedev/core sends for these inputs, byte for byte (key order, "
                            "JSON.stringify, btoa or Buffer, no URL-encoding), and sends it to this inspector.")
        intro.setWordWrap(True)
        layout.addWidget(intro)

        layout.addLayout(self._build_form())
        self._build_views(layout)
        layout.addWidget(self._build_buttons())

        for widget in (self.version, self.project_id, self.referer):
            widget.textChanged.connect(self.update_preview)
        for toggle in (*self.providers.values(), self.send_project, self.browser, self.node):
            toggle.toggled.connect(self.update_preview)
        self.resources.valueChanged.connect(self.update_preview)
        self.update_preview()

    def _build_form(self) -> QFormLayout:
        """The inputs: version, providers, resourceCount, projectId, encoding, Referer."""
        form = QFormLayout()
        self.version = QLineEdit(DEFAULT_VERSION)
        self.version.setObjectName("version")
        form.addRow("@refinedev/core version:", self.version)
        grid = self._build_providers()
        holder = QWidget()
        holder.setLayout(grid)
        grid.setContentsMargins(0, 0, 0, 0)
        form.addRow("Providers that are on:", holder)
        self.resources = QSpinBox()
        self.resources.setObjectName("resources")
        self.resources.setRange(0, 100_000)
        form.addRow("resourceCount:", self.resources)
        project = self._build_project_row()
        form.addRow("projectId:", project)
        encodings = self._build_encodings()
        form.addRow("Encoding:", encodings)
        self.referer = QLineEdit(DEFAULT_REFERER)
        self.referer.setObjectName("referer")
        self.referer.setToolTip("The Referer a browser adds (the app's origin); the inspector takes the app's "
                                "hostname from it. Empty: no Referer.")
        form.addRow("App origin (Referer):", self.referer)
        return form

    def _build_providers(self) -> QGridLayout:
        """A check box per provider, in refine's order, four to a row."""
        grid = QGridLayout()
        self.providers: dict[str, QCheckBox] = {}
        for i, name in enumerate(PROVIDERS):  # refine's order
            box = QCheckBox(name)
            box.setChecked(name in DEFAULT_PROVIDERS)
            self.providers[name] = box
            grid.addWidget(box, i // 4, i % 4)
        return grid

    def _build_project_row(self) -> QHBoxLayout:
        """projectId: sent or left out, and its value."""
        project = QHBoxLayout()
        self.send_project = QCheckBox("send")
        self.send_project.setToolTip("refine leaves projectId out of the JSON when options.projectId is not set")
        self.project_id = QLineEdit()
        self.project_id.setObjectName("projectId")
        self.project_id.setPlaceholderText("options.projectId (not sent)")
        self.project_id.setEnabled(False)
        self.send_project.toggled.connect(self.project_id.setEnabled)
        project.addWidget(self.send_project)
        project.addWidget(self.project_id, 1)
        return project

    def _build_encodings(self) -> QHBoxLayout:
        """Browser (btoa) or Node (Buffer) encoding."""
        encodings = QHBoxLayout()
        self.browser = QRadioButton("browser (btoa: Latin-1, refuses above U+00FF)")
        self.node = QRadioButton("node (Buffer: UTF-8)")
        self.browser.setChecked(True)
        group = QButtonGroup(self)
        group.addButton(self.browser)
        group.addButton(self.node)
        encodings.addWidget(self.browser)
        encodings.addWidget(self.node)
        encodings.addStretch(1)
        return encodings

    def _build_views(self, layout: QVBoxLayout) -> None:
        """The payload and request previews and the outcome line."""
        layout.addWidget(theme.derive_font(plain_label("Payload (JSON.stringify)"), bold=True))
        self.json_preview = QPlainTextEdit()
        self.json_preview.setObjectName("jsonPreview")
        self.json_preview.setReadOnly(True)
        self.json_preview.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        self.json_preview.setWordWrapMode(self.json_preview.wordWrapMode().WrapAnywhere)
        theme.derive_font(self.json_preview, mono=True)
        layout.addWidget(self.json_preview, 2)
        layout.addWidget(theme.derive_font(plain_label("Request"), bold=True))
        self.url_view = QPlainTextEdit()
        self.url_view.setObjectName("url")
        self.url_view.setReadOnly(True)
        self.url_view.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        self.url_view.setWordWrapMode(self.url_view.wordWrapMode().WrapAnywhere)
        theme.derive_font(self.url_view, mono=True)
        layout.addWidget(self.url_view, 3)
        self.outcome = plain_label()
        self.outcome.setObjectName("outcome")
        self.outcome.setWordWrap(True)
        self.outcome.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.outcome)

    def _build_buttons(self) -> QDialogButtonBox:
        """Send and Close."""
        buttons = QDialogButtonBox()
        self.send_button = QPushButton("Send")
        self.send_button.setObjectName("send")
        self.send_button.setDefault(True)
        buttons.addButton(self.send_button, QDialogButtonBox.ButtonRole.ActionRole)
        close = buttons.addButton(QDialogButtonBox.StandardButton.Close)
        close.setAutoDefault(False)
        buttons.rejected.connect(self.reject)
        self.send_button.clicked.connect(self.send)
        return buttons

    # -- composing ------------------------------------------------------------

    def inputs(self) -> dict[str, Any]:
        """The compose_beacon() arguments the form describes."""
        return {
            "version": self.version.text(),
            "providers": [name for name, box in self.providers.items() if box.isChecked()],
            "resources": self.resources.value(),
            "project_id": self.project_id.text() if self.send_project.isChecked() else None,
            "encoding": BROWSER if self.browser.isChecked() else NODE,
            "referer": self.referer.text().strip() or None,
        }

    def update_preview(self) -> None:
        """Compose from the form; show the request or why refine would send nothing."""
        self.request, self.refusal = None, None
        s = theme.scheme()
        try:
            self.request = compose_beacon(**self.inputs())
        except BtoaRefused as exc:
            self.refusal = f"Not sent: {exc}"
        except ValueError as exc:
            self.refusal = f"Cannot compose: {exc}"
        if self.request is not None:
            self.json_preview.setPlainText(self.request.json_text)
            base = self._base_url()
            shown = self.request.url(base) if base else self.request.url()
            self.url_view.setPlainText(f"{self.request.method} {printable(shown)}")
            self._say("", s.muted)
        else:
            self.json_preview.setPlainText("")
            self.url_view.setPlainText("(nothing: refine would not send this beacon)")
            self._say(self.refusal or "", s.invalid)
        self.send_button.setEnabled(self.job is None or self.job.done)

    def _say(self, text: str, colour: QColor) -> None:
        self.outcome.setText(text)
        pal = self.outcome.palette()
        pal.setColor(self.outcome.foregroundRole(), colour)
        self.outcome.setPalette(pal)

    # -- sending --------------------------------------------------------------

    def send(self) -> Job | None:
        """Send the composed beacon (on a worker thread); None when nothing is sent."""
        self.update_preview()
        s = theme.scheme()
        if self.request is None:
            self._say(self.refusal or "Nothing to send.", s.invalid)  # exactly what refine does: nothing
            return None
        base = self._base_url()
        if not base:
            self._say("Not sent: the server is stopped; start it (Server ▸ Start server) first.", s.invalid)
            return None
        request = self.request
        self.sent_url = request.url(base)
        self.send_button.setEnabled(False)
        self._say(f"Sending to {base} …", s.muted)
        self.sending.emit()
        job = Job("Send beacon", lambda _progress: send(request, base), expected=(SendError,), parent=self)
        job.succeeded.connect(self._on_sent)
        job.failed.connect(self._on_failed)
        job.finished.connect(lambda: self.send_button.setEnabled(True))
        self.job = job
        return job.start(self._pool)

    def _on_sent(self, result: SendResult) -> None:
        self.result = result
        self.sent_url = result.url
        self.url_view.setPlainText(f"{self.request.method if self.request else 'GET'} {printable(result.url)}")
        s = theme.scheme()
        ok = 200 <= result.status < 300
        text = f"Sent. Answer: {result.status} {result.reason} {result.content_type}".rstrip()
        if not ok and result.body.strip():
            text += "  " + printable(result.body.decode("utf-8", "replace").strip().splitlines()[0])
        self._say(text, s.ok if ok else s.invalid)
        self.sent.emit(result.url)

    def _on_failed(self, message: str) -> None:
        self._say(f"Not delivered: {message}", theme.scheme().invalid)
