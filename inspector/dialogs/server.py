"""The server's dialogs: change ports, routing help (the exact flags for the current ports)."""

from __future__ import annotations

from urllib.parse import urlsplit

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGridLayout,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from inspector.widgets import theme
from inspector.widgets.plaintext import plain_label
from mockserver.core.config import REFINE_HOST
from mockserver.core.routing import (
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
