"""What the table area shows before the first record: how to send one (a ready-made curl line)."""

from __future__ import annotations

import base64
import json
import shlex

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QHBoxLayout, QLineEdit, QPushButton, QSizePolicy, QVBoxLayout, QWidget

from inspector.widgets import theme
from inspector.widgets.icons import app_icon
from inspector.widgets.plaintext import plain_label
from mockserver.records.collected import CURL_DISCARD_BODY

# What a freshly generated refine 4 app sends (see the wire facts): the empty
# state offers it as a ready-made curl line.
SAMPLE_PAYLOAD = {
    "providers": {"auth": False, "auditLog": False, "live": False, "router": True, "data": True,
                  "i18n": False, "notification": False, "accessControl": False},
    "version": "4.58.0", "resourceCount": 2,
}


def sample_curl(http_url: str) -> str:
    """A curl line that sends the standard refine 4 beacon to ``http_url``."""
    encoded = base64.b64encode(json.dumps(SAMPLE_PAYLOAD, separators=(",", ":")).encode()).decode()
    return (f"curl {' '.join(CURL_DISCARD_BODY)} -H {shlex.quote('Referer: http://localhost:5173/')} "
            f"{shlex.quote(f'{http_url}/telemetry?payload={encoded}')}")


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
