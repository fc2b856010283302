"""Small dialogs: change ports, routing help, about, export."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
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

from inspector.widgets import theme
from inspector.widgets.icons import app_icon
from inspector.widgets.plaintext import plain_label
from mockserver import __version__
from mockserver.core.config import DISPLAY_NAME, REFINE_HOST
from mockserver.formats.export import EXTENSIONS, FORMATS
from mockserver.reach.routing import (
    QUIET_CHROMIUM_FLAGS,
    chromium_command_line,
    chromium_routing_flags,
    hosts_file_line,
)
from mockserver.serving.server import Listening


class PortsDialog(QDialog):
    """Pick the HTTP port and the HTTPS port (or no HTTPS); 0 means any free port."""

    def __init__(self, port: int, https_port: int | None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Change ports")
        form = QFormLayout(self)
        self.port = QSpinBox()
        self.port.setRange(0, 65535)
        self.port.setValue(port)
        self.port.setSpecialValueText("any free port")
        form.addRow("HTTP port:", self.port)
        self.https_enabled = QCheckBox("Listen for HTTPS (needed to route a real browser)")
        self.https_enabled.setChecked(https_port is not None)
        form.addRow(self.https_enabled)
        self.https_port = QSpinBox()
        self.https_port.setRange(0, 65535)
        self.https_port.setValue(https_port or 0)
        self.https_port.setSpecialValueText("any free port")
        self.https_port.setEnabled(https_port is not None)
        self.https_enabled.toggled.connect(self.https_port.setEnabled)
        form.addRow("HTTPS port:", self.https_port)
        hint = plain_label("The server restarts on the new ports; records are kept.")
        hint.setWordWrap(True)
        form.addRow(hint)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def values(self) -> tuple[int, int | None]:
        """(HTTP port, HTTPS port or None for no HTTPS)."""
        return self.port.value(), (self.https_port.value() if self.https_enabled.isChecked() else None)


def _copy_block(title: str, text: str, note: str = "") -> QWidget:
    box = QWidget()
    layout = QGridLayout(box)
    layout.setContentsMargins(0, 6, 0, 0)
    heading = plain_label(title)
    theme.derive_font(heading, bold=True)
    layout.addWidget(heading, 0, 0)
    copy = QPushButton("Copy")
    copy.setAutoDefault(False)
    copy.clicked.connect(lambda: QGuiApplication.clipboard().setText(text))
    layout.addWidget(copy, 0, 1, Qt.AlignmentFlag.AlignRight)
    view = QPlainTextEdit(text)
    view.setReadOnly(True)
    theme.derive_font(view, mono=True)
    view.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
    lines = max(1, min(6, len(text) // 90 + text.count("\n") + 1))
    view.setFixedHeight(view.fontMetrics().lineSpacing() * lines + 14)
    layout.addWidget(view, 1, 0, 1, 2)
    if note:
        label = plain_label(note)
        label.setWordWrap(True)
        layout.addWidget(label, 2, 0, 1, 2)
    return box


class RoutingHelpDialog(QDialog):
    """The exact Chromium flags and hosts-file line that bring a real app's beacons here."""

    def __init__(self, listening: Listening | None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Routing help")
        self.resize(760, 560)
        layout = QVBoxLayout(self)
        intro = plain_label(
            f"refine sends its beacon to https://{REFINE_HOST}, a host written into the package. "
            "To see a real app's beacons here without touching the app, point that host at this inspector:")
        intro.setWordWrap(True)
        layout.addWidget(intro)
        self.texts: dict[str, str] = {}
        if listening is None:
            layout.addWidget(plain_label("The server is stopped: start it (Server ▸ Start) to get the exact lines."))
        elif not listening.https_port or not listening.spki_pin:
            layout.addWidget(plain_label(
                "HTTPS is off, and browsers only send the beacon over HTTPS: turn it on in Server ▸ Change ports."))
        else:
            host = urlsplit(listening.https_url or "").hostname or "127.0.0.1"
            command = chromium_command_line(listening.https_port, listening.spki_pin, host)
            flags = " ".join(chromium_routing_flags(listening.https_port, listening.spki_pin, host))
            self.texts = {"command": command, "flags": flags}
            layout.addWidget(_copy_block(
                "1. Start Chromium / Chrome / Edge routed here", command,
                "A fresh profile (--user-data-dir) makes the flags take effect even when the browser is already open. "
                "Headless or as root, add --no-sandbox; in a closed network also: " + " ".join(QUIET_CHROMIUM_FLAGS)))
            layout.addWidget(_copy_block(
                "…or just the flags (Playwright, Puppeteer, Cypress launch args)", flags,
                "The SPKI pin trusts only this inspector's certificate, for this browser run."))
        hosts = hosts_file_line()
        self.texts["hosts"] = hosts
        https_port = listening.https_port if listening else None
        layout.addWidget(_copy_block(
            "2. Or, for every program on this machine: a hosts-file line", hosts,
            "Add it to /etc/hosts (Windows: C:\\Windows\\System32\\drivers\\etc\\hosts). It only works when "
            f"HTTPS listens on port 443 (now: {https_port or 'off'}) and the browser trusts the inspector's "
            "certificate; remove the line afterwards."))
        if listening is not None:
            test = f"curl -i '{listening.http_url}/telemetry?payload=e30='"
            self.texts["test"] = test
            layout.addWidget(_copy_block("3. Check that the inspector answers", test))
        layout.addStretch(1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        buttons.accepted.connect(self.accept)
        layout.addWidget(buttons)


class AboutDialog(QDialog):
    """The application's name, icon, version and purpose."""

    def __init__(self, database: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"About {DISPLAY_NAME}")
        layout = QHBoxLayout(self)
        icon = plain_label()
        icon.setPixmap(app_icon().pixmap(96, 96))
        icon.setAlignment(Qt.AlignmentFlag.AlignTop)
        layout.addWidget(icon)
        text = QVBoxLayout()
        name = plain_label(f"{DISPLAY_NAME} {__version__}")
        theme.derive_font(name, 1.3, bold=True)
        text.addWidget(name)
        body = plain_label(
            f"A local mock of {REFINE_HOST} that shows exactly what a refine app, the refine CLI and "
            "create-refine-app send: every request decoded, what was collected and where it came from, "
            "and where it differs from the public docs page.\n\n"
            f"Database: {database}\nMIT licence. Not affiliated with refine.")
        body.setWordWrap(True)
        body.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        text.addWidget(body)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        text.addWidget(buttons)
        layout.addLayout(text, 1)
        self.setMinimumWidth(480)


FORMAT_LABELS = {"json": "JSON (array of records)", "ndjson": "NDJSON (one record per line)",
                 "csv": "CSV (the table's columns, problems, notes)", "har": "HAR 1.2 (requests as they arrived)"}
SCOPES = ("all", "shown", "selected")


class ExportDialog(QDialog):
    """Which records (all / shown by the filter / selected), which format, which file, redacted or not."""

    def __init__(self, counts: dict[str, int], *, redact: bool, folder: str, fmt: str = "json",
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export records")
        self.setObjectName("exportDialog")
        self.counts = counts
        form = QFormLayout(self)
        self.scopes: dict[str, QRadioButton] = {}
        group = QButtonGroup(self)
        box = QVBoxLayout()
        labels = {"all": "All records", "shown": "The records the table shows (filters applied)",
                  "selected": "The selected records"}
        for scope in SCOPES:
            count = counts.get(scope, 0)
            button = QRadioButton(f"{labels[scope]} ({count})")
            button.setEnabled(count > 0)
            group.addButton(button)
            box.addWidget(button)
            self.scopes[scope] = button
        preferred = "selected" if counts.get("selected", 0) > 1 else (
            "shown" if counts.get("shown", 0) != counts.get("all", 0) else "all")
        self.scopes[preferred if counts.get(preferred, 0) else "all"].setChecked(True)
        form.addRow("Records:", box)
        self.format = QComboBox()
        self.format.setObjectName("format")
        for name in FORMATS:
            self.format.addItem(FORMAT_LABELS[name], name)
        self.format.setCurrentIndex(max(0, self.format.findData(fmt)))
        form.addRow("Format:", self.format)
        row = QHBoxLayout()
        self.path = QLineEdit(str(Path(folder) / f"telemetry{EXTENSIONS[self.fmt]}"))
        self.path.setObjectName("path")
        self.path.setMinimumWidth(380)
        row.addWidget(self.path, 1)
        choose = QPushButton("Choose…")
        choose.setAutoDefault(False)
        choose.clicked.connect(self.choose)
        row.addWidget(choose)
        form.addRow("File:", row)
        self.redact = QCheckBox("Redact: IP addresses, hostnames, emails and projectIds as pseudonyms "
                                "(the same tokens the window shows)")
        self.redact.setChecked(redact)
        form.addRow(self.redact)
        self.message = plain_label()
        self.message.setWordWrap(True)
        form.addRow(self.message)
        self.format.currentIndexChanged.connect(self._follow_format)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.export_button = buttons.addButton("Export", QDialogButtonBox.ButtonRole.AcceptRole)
        self.export_button.setDefault(True)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    @property
    def fmt(self) -> str:
        """The chosen format name (json, ndjson, csv, har)."""
        return str(self.format.currentData())

    @property
    def scope(self) -> str:
        """all, shown or selected."""
        return next(name for name, button in self.scopes.items() if button.isChecked())

    def _follow_format(self) -> None:
        """Change a known extension of the file name to the new format's."""
        path = Path(self.path.text())
        if path.suffix.lower() in EXTENSIONS.values():
            self.path.setText(str(path.with_suffix(EXTENSIONS[self.fmt])))

    def choose(self) -> None:
        """Pick the file with the platform's save dialog."""
        ext = EXTENSIONS[self.fmt]
        name, _ = QFileDialog.getSaveFileName(self, "Export records", self.path.text(),
                                              f"{self.fmt.upper()} (*{ext});;All files (*)")
        if name:
            self.path.setText(name)

    def problem(self) -> str | None:
        """Why the form cannot be exported as it is (one line), or None."""
        text = self.path.text().strip()
        if not text:
            return "Choose a file to write."
        target = Path(text).expanduser()
        if target.is_dir():
            return f"{target} is a folder: add a file name."
        if not target.parent.is_dir():
            return f"No folder {target.parent}."
        return None

    def accept(self) -> None:
        problem = self.problem()
        if problem:
            self.message.setText(problem)
            return
        super().accept()

    def values(self) -> tuple[str, str, str, bool]:
        """(scope, format, path, redact)."""
        return self.scope, self.fmt, str(Path(self.path.text().strip()).expanduser()), self.redact.isChecked()
