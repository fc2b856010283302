"""The About box."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QVBoxLayout,
    QWidget,
)

from inspector.widgets import theme
from inspector.widgets.icons import app_icon
from inspector.widgets.plaintext import plain_label
from mockserver import __version__
from mockserver.core.config import DISPLAY_NAME, REFINE_HOST


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
