"""The server panel: the status bar's server state and its buttons, and the server's control.

Start, stop, change ports (back to the old ones when the new ones fail) and routing help.
Everything here runs on the GUI thread; the server's own threads never reach these widgets.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QPushButton

from inspector.dialogs.server import PortsDialog, RoutingHelpDialog
from inspector.widgets import theme
from inspector.widgets.plaintext import plain_label, plain_tooltip
from mockserver.core.config import DEFAULT_PORT
from mockserver.serving.server import InspectorServer, ServerError

if TYPE_CHECKING:
    from inspector.window import MainWindow


def server_error_text(exc: Exception) -> str:
    """Why the server did not start, for a dialog: no command-line flags in it."""
    return exc.reason if isinstance(exc, ServerError) else f"{type(exc).__name__}: {exc}"


class ServerPanel:
    """The server's state in the status bar (``label``, ``pin_button``, ``start_button``,
    ``ports_button``, ``routing_button``) and the commands that start, stop and move it."""

    def __init__(self, window: MainWindow) -> None:
        self.window = window
        self.routing_dialog: RoutingHelpDialog | None = None
        self.label = plain_label()
        self.label.setObjectName("serverStatus")
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        # A whole word, not a cut-off pin: the full pin is in the tooltip, the clipboard and Routing help.
        self.pin_button = QPushButton("Copy pin")
        self.pin_button.setObjectName("pin")
        self.pin_button.clicked.connect(self.copy_pin)
        self.start_button = QPushButton("Stop")
        self.start_button.setObjectName("startStop")
        self.start_button.clicked.connect(self.toggle)
        self.ports_button = QPushButton("Ports…")
        self.ports_button.setToolTip("Change the HTTP and HTTPS ports")
        self.ports_button.clicked.connect(self.change_ports)
        self.routing_button = QPushButton("Routing help…")
        self.routing_button.setToolTip("The exact browser flags / hosts-file line that send a real app's beacons here")
        self.routing_button.clicked.connect(self.show_routing_help)

    @property
    def server(self) -> InspectorServer | None:
        """The window's server (None when the window has none)."""
        return self.window.server

    def listening_url(self) -> str | None:
        """The HTTP listener's URL while the server listens, else None."""
        listening = self.server.listening if self.server is not None else None
        return listening.http_url if listening is not None else None

    def http_base(self) -> str:
        """The HTTP listener's URL, or the one it will have (for the detail card's curl lines)."""
        listening = self.server.listening if self.server is not None else None
        if listening is not None:
            return listening.http_url
        port = self.server.port if self.server is not None and self.server.port else DEFAULT_PORT
        return f"http://127.0.0.1:{port}"

    def start(self) -> bool:
        """Start listening; a port in use is reported, never raised."""
        if self.server is None:
            return False
        try:
            self.server.start()
        except Exception as exc:  # noqa: BLE001 - a port in use or an unwritable certificate folder: say so
            self.window.report_error("The server could not start",
                              f"{server_error_text(exc)}.\n\nChoose other ports in Server ▸ Change ports…")
            self.update_status()
            return False
        self.update_status()
        return True

    def stop(self) -> None:
        """Stop listening (records stay)."""
        if self.server is not None:
            self.server.stop()
        self.update_status()

    def toggle(self) -> None:
        """Start when stopped, stop when running."""
        if self.server is not None and self.server.listening is not None:
            self.stop()
            self.window.flash("Server stopped")
        elif self.start():
            self.window.flash("Server started")

    def change_ports(self) -> None:
        """Ask for new ports and restart on them (back to the old ones if they fail)."""
        if self.server is None:
            return
        listening = self.server.listening
        port = listening.port if listening else self.server.port
        https = (listening.https_port if listening else self.server.https_port) if (
            listening is None or listening.https_port is not None) else None
        dialog = PortsDialog(port, https, self.window)
        if dialog.exec() != PortsDialog.DialogCode.Accepted:
            return
        self.restart_on(*dialog.values())

    def restart_on(self, port: int, https_port: int | None) -> bool:
        """Restart the server on new ports; on failure, report and go back to the old ones."""
        if self.server is None:
            return False
        old = (self.server.port, self.server.https_port)
        was_running = self.server.listening is not None
        self.server.stop()
        self.server.port, self.server.https_port = port, https_port
        try:
            self.server.start()
        except Exception as exc:  # noqa: BLE001 - reported, and the old ports come back
            self.server.port, self.server.https_port = old
            if was_running:
                try:
                    self.server.start()
                except Exception:  # noqa: BLE001 - the first error is the one to show
                    pass
            self.update_status()
            self.window.report_error("Cannot use those ports", f"{server_error_text(exc)}.")
            return False
        self.update_status()
        self.window.flash("Server restarted on the new ports")
        return True

    def update_status(self) -> None:
        """Show whether the server listens, and where, in the status bar, the actions and the empty state."""
        listening = self.server.listening if self.server is not None else None
        if listening is None:
            self.label.setText("○ stopped")
            self.label.setToolTip("The mock is not listening")
            self.pin_button.setVisible(False)
            self.start_button.setText("Start")
            self.window.start_action.setText("Start server")
        else:
            urls = [listening.http_url] + ([listening.https_url] if listening.https_url else [])
            if listening.proxy_url:  # --proxy-port: where to point a client's HTTP(S) proxy setting
                urls.append(f"proxy {listening.proxy_url}")
            # The green dot says "listening" (its tooltip in words): the URLs get the room of a small screen.
            self.label.setText("● " + "  ".join(urls))
            # The tooltip repeats the addresses whole: on a small screen the label is cut short.
            tip = "Listening: the mock of telemetry.refine.dev answers on these addresses:\n" + "\n".join(urls)
            if listening.proxy_url:
                tip += "\nSet a client's HTTP(S) proxy to the proxy address to route it here"
            self.label.setToolTip(plain_tooltip(tip))
            self.pin_button.setVisible(bool(listening.spki_pin))
            if listening.spki_pin:
                self.pin_button.setToolTip(f"Copy the HTTPS certificate's SPKI pin:\n{listening.spki_pin}")
            self.start_button.setText("Stop")
            self.window.start_action.setText("Stop server")
        pal = self.label.palette()
        s = theme.scheme()
        pal.setColor(self.label.foregroundRole(),
                     s.ok if listening is not None else self.window.palette().color(self.window.foregroundRole()))
        self.label.setPalette(pal)
        self.window.empty.set_url(listening.http_url if listening is not None else None)
        self.window.ports_action.setEnabled(self.server is not None)
        self.ports_button.setEnabled(self.server is not None)
        self.start_button.setEnabled(self.server is not None)

    def copy_pin(self) -> None:
        """Copy the HTTPS certificate's SPKI pin."""
        listening = self.server.listening if self.server is not None else None
        if listening is not None and listening.spki_pin:
            QGuiApplication.clipboard().setText(listening.spki_pin)
            self.window.flash("Copied the HTTPS SPKI pin")

    def show_routing_help(self) -> None:
        """The routing help dialog for the current ports."""
        listening = self.server.listening if self.server is not None else None
        dialog = RoutingHelpDialog(listening, self.window)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        self.routing_dialog = dialog
