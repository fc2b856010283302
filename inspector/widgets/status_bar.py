"""A status bar whose messages fit the room its permanent widgets leave.

QStatusBar paints a message into whatever width is left of its permanent widgets and clips it
there, often mid-word (a 1024 px window shows "Opt-out check started: re"). Here, while a message
does not fit, the widgets marked optional (buttons the menus also hold) step aside for it; what still
does not fit is cut with "…" in the middle, so its start and its end stay in view; and the whole text
is the bar's tooltip (plain text: messages can carry a page's URL) until the message goes.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QSizeGrip, QStatusBar, QWidget

from inspector.widgets.plaintext import plain_tooltip

MIN_ROOM = 80  # below this the bar is not laid out yet (or absurdly narrow): show the text as it is
_MARGIN = 12  # QStatusBar's own padding left of the message and before the first permanent widget


class FittingStatusBar(QStatusBar):
    """:meth:`showMessage` as usual, the text fitted; :attr:`full_message` keeps what was asked."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.full_message = ""
        self._optional: list[QWidget] = []
        self._stepped_aside: list[QWidget] = []
        self.messageChanged.connect(self._on_message_changed)

    def add_optional(self, widget: QWidget) -> None:
        """A permanent widget that is hidden while a message needs its room (the menus have it too)."""
        self.addPermanentWidget(widget)
        self._optional.append(widget)

    def room(self) -> int:
        """Pixels a message can take: up to the leftmost visible permanent widget."""
        edges = [child.x() for child in self.findChildren(QWidget, options=Qt.FindChildOption.FindDirectChildrenOnly)
                 if child.isVisible() and not isinstance(child, QSizeGrip)]
        return (min(edges) if edges else self.width()) - _MARGIN

    def fitted(self, text: str) -> str:
        """``text`` as it fits :meth:`room` (``…`` in the middle when it does not)."""
        room = self.room()
        if room < MIN_ROOM:
            return text
        return self.fontMetrics().elidedText(text, Qt.TextElideMode.ElideMiddle, room)

    def showMessage(self, text: str, /, timeout: int | None = None) -> None:  # noqa: N802 - Qt's name
        """Show ``text`` for ``timeout`` ms (0: until replaced), cut to fit; the whole of it in the tooltip."""
        self.full_message = text
        self._step_aside(text)
        shown = self.fitted(text)
        super().showMessage(shown, timeout or 0)
        self.setToolTip(plain_tooltip(text) if shown != text else "")

    def _step_aside(self, text: str) -> None:
        """Hide the optional widgets while ``text`` does not fit without them (shown again when it goes)."""
        self._come_back()
        if self.room() < MIN_ROOM or self.fontMetrics().horizontalAdvance(text) <= self.room():
            return
        self._stepped_aside = [w for w in self._optional if w.isVisible()]
        for widget in self._stepped_aside:
            widget.hide()
        layout = self.layout()
        if layout is not None:
            layout.activate()  # the widgets left move right now, so room() measures the new space

    def _come_back(self) -> None:
        for widget in self._stepped_aside:
            widget.show()
        self._stepped_aside = []

    def _on_message_changed(self, text: str) -> None:
        if not text:  # timed out or cleared: the tooltip went with it, the widgets come back
            self.full_message = ""
            self.setToolTip("")
            self._come_back()
