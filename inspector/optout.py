"""The "Opt-out check" mode: watch from now on, reload the app, see PASS or FAIL large.

Built on :class:`mockserver.records.verdict.OptOutWatch` (the same verdict ``verify
--expect none`` gives). The watch's ``on_change`` runs on the thread that
stored a request; it only wakes the GUI thread with a queued call (as
:mod:`inspector.bridge` does), and the verdict is read from the store there.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from PySide6.QtCore import QSize, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QHBoxLayout,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from mockserver.core.beacon import Beacon
from mockserver.core.clock import parse_iso
from mockserver.records.verdict import OptOutWatch, Verdict, requests_text
from mockserver.storage.store import BeaconStore, StoreError

from . import theme
from .icons import status_icon
from .plaintext import plain_label
from .qtcompat import emit
from .wake import GuiWake

IDLE_HEADLINE = "—"
RELOAD_HINT = ("Now reload the app (in the routed browser, or any browser routed here). A refine app sends its "
               "beacon within a second of loading; if nothing arrives, opting out works.")
IDLE_TEXT = ("Start a check, then reload your app: PASS when nothing reaches telemetry.refine.dev, "
             "FAIL with every request that did. Routing: Server ▸ Open app in routed browser….")


def describe(beacon: Beacon) -> str:
    """One line for a request: ``#12  09:41:05  beacon  GET /telemetry  ·  localhost · refine 4.58.0 · …``."""
    s = beacon.summary()
    try:
        when = parse_iso(s.received_at).astimezone().strftime("%H:%M:%S")
    except ValueError:
        when = s.received_at
    facts = [x for x in (s.hostname, f"refine {s.version}" if s.version else None,
                         " on ".join(y for y in (s.browser, s.os) if y) or None, s.ip) if x]
    head = f"#{s.id}  {when}  {s.kind}  {s.method} {s.path}"
    if s.status != "ok":
        head += "  (invalid)"
    return head + ("  ·  " + " · ".join(facts) if facts else "")


def _seconds(value: float) -> str:
    whole = int(value)
    return f"{whole} s" if whole < 120 else f"{whole // 60} min {whole % 60:02d} s"


class OptOutPanel(QWidget):
    """Start/stop an opt-out watch and show its verdict.

    Signals: ``recordClicked(int)`` (select it in the table), ``recordActivated(int)``
    (double-click / Enter: select it and show its details), ``stateChanged()``.
    """

    recordClicked = Signal(int)
    recordActivated = Signal(int)
    stateChanged = Signal()

    def __init__(self, store: BeaconStore, present: Callable[[Beacon], Beacon],
                 clock: Callable[[], float] = time.monotonic, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("optOutPanel")
        self.store = store
        self._present = present  # redaction, when on
        self._clock = clock
        self.watch: OptOutWatch | None = None
        self.verdict: Verdict | None = None
        self.started_at: float | None = None
        self.stopped_at: float | None = None
        self._wake = GuiWake(self, "_on_wake")
        self.last_error: str | None = None

        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 8, 10, 6)
        layout.setSpacing(6)

        top = QHBoxLayout()
        heading = theme.derive_font(plain_label("Opt-out check"), 1.15, bold=True)
        top.addWidget(heading)
        top.addStretch(1)
        self.start_button = QPushButton("Start check")
        self.start_button.setToolTip("Count every request from now on (earlier ones do not count)")
        self.start_button.clicked.connect(lambda: self.restart())
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop watching; the verdict stays")
        self.stop_button.clicked.connect(lambda: self.stop())  # not clicked(bool) into final
        for button in (self.start_button, self.stop_button):
            button.setAutoDefault(False)
            top.addWidget(button)
        layout.addLayout(top)

        body = QHBoxLayout()
        body.setSpacing(16)
        verdict_box = QVBoxLayout()
        self.headline = plain_label(IDLE_HEADLINE)
        self.headline.setObjectName("verdictHeadline")
        theme.derive_font(self.headline, 3.6, bold=True)
        self.headline.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.headline.setMinimumWidth(200)
        self.headline.setMargin(10)
        self.headline.setAutoFillBackground(True)  # a filled badge: green PASS, red FAIL
        self.headline.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        verdict_box.addWidget(self.headline)
        self.count_label = plain_label()
        self.count_label.setObjectName("verdictCount")
        self.count_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        theme.derive_font(self.count_label, 1.1, bold=True)
        verdict_box.addWidget(self.count_label)
        verdict_box.addStretch(1)
        body.addLayout(verdict_box)

        text_box = QVBoxLayout()
        self.summary = plain_label(IDLE_TEXT)
        self.summary.setObjectName("verdictSummary")
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        theme.derive_font(self.summary, 1.1, bold=True)
        text_box.addWidget(self.summary)
        self.state = plain_label()
        self.state.setObjectName("verdictState")
        self.state.setWordWrap(True)
        text_box.addWidget(self.state)
        self.offending_title = theme.derive_font(plain_label(), bold=True)
        text_box.addWidget(self.offending_title)
        self.offending = QListWidget()
        self.offending.setObjectName("offending")
        self.offending.setToolTip("Click: select it in the table. Double-click: show its details.")
        self.offending.itemClicked.connect(self._on_clicked)
        self.offending.itemActivated.connect(self._on_activated)
        self.offending.setIconSize(QSize(16, 16))
        text_box.addWidget(self.offending, 10)
        self.advice_title = theme.derive_font(plain_label(), bold=True)
        text_box.addWidget(self.advice_title)
        self.advice = plain_label()
        self.advice.setObjectName("advice")
        self.advice.setWordWrap(True)
        self.advice.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        text_box.addWidget(self.advice)
        text_box.addStretch(1)  # labels stay together at the top when there is no list
        body.addLayout(text_box, 1)
        layout.addLayout(body, 1)

        self._ticker = QTimer(self)
        self._ticker.setInterval(1000)
        self._ticker.timeout.connect(self._update_state)
        self._render()

    # -- control ----------------------------------------------------------------

    @property
    def watching(self) -> bool:
        """True while a watch is running."""
        return self.watch is not None and self.watch.active

    def restart(self) -> bool:
        """(Re)start watching from now; earlier requests do not count."""
        self.stop(final=False)
        watch = OptOutWatch(self.store, "none", fields=(), on_change=self._on_change)
        try:
            watch.start()
        except StoreError as exc:
            self.last_error = str(exc)
            self.state.setText(f"Cannot start: {exc}")
            return False
        self.watch = watch
        self.started_at = self._clock()
        self.stopped_at = None
        self.verdict = None
        self._refresh()
        self._ticker.start()
        emit(self.stateChanged)
        return True

    def stop(self, final: bool = True) -> None:
        """Stop watching; the last verdict stays on screen."""
        watch, self.watch = self.watch, (self.watch if final else None)
        if watch is not None and watch.active:
            try:
                self.verdict = watch.stop()
            except StoreError as exc:
                self.last_error = str(exc)
            self.stopped_at = self._clock()
        self._ticker.stop()
        if final:
            self._render()
            emit(self.stateChanged)

    def _on_change(self, _watch: OptOutWatch) -> None:
        """Runs on the thread that stored a request: wake the GUI thread once per batch."""
        self._wake()

    @Slot()
    def _on_wake(self) -> None:
        self._wake.reset()
        if self.watching:
            self._refresh()
            emit(self.stateChanged)

    def _refresh(self) -> None:
        if self.watch is None:
            return
        try:
            self.verdict = self.watch.verdict()
        except StoreError as exc:
            self.last_error = str(exc)
        self._render()

    def refresh_view(self) -> None:
        """Redraw (after the redaction toggle or a theme change)."""
        self._render()

    # -- showing ----------------------------------------------------------------

    def _render(self) -> None:
        s = theme.scheme()
        verdict = self.verdict
        pal = self.headline.palette()
        if verdict is None:
            self.headline.setText(IDLE_HEADLINE)
            colour = None
            self.count_label.setText("")
            self.summary.setText(IDLE_TEXT if self.watch is None else "PASS so far: nothing sent yet")
            self.offending_title.setText("")
            self.offending.clear()
            self.offending.setVisible(False)
            self.advice.setText("")
            self.advice_title.setText("")
        else:
            self.headline.setText(verdict.headline)
            colour = s.ok if verdict.passed else s.invalid
            self.count_label.setText(f"{requests_text(verdict.count, verdict.preflights)} sent")
            text = verdict.summary()
            if self.watching and verdict.passed:
                text = text.replace("PASS:", "PASS so far:", 1)
            self.summary.setText(text)
            self.offending.clear()
            for beacon in verdict.offending:
                item = QListWidgetItem(status_icon("invalid", s), describe(self._present(beacon)))
                item.setData(Qt.ItemDataRole.UserRole, beacon.id)
                self.offending.addItem(item)
            shown = len(verdict.offending)
            self.offending.setVisible(shown > 0)
            self.offending_title.setText(
                f"Sent to telemetry.refine.dev during the check ({shown}):" if shown else "")
            self.advice.setText("\n".join(verdict.advice))
            self.advice_title.setText("How to opt out for real:" if verdict.advice else "")
        if colour is None:  # no verdict yet: a plain, muted badge
            pal.setColor(self.headline.backgroundRole(), self.palette().color(self.backgroundRole()))
            pal.setColor(self.headline.foregroundRole(), s.muted)
        else:
            pal.setColor(self.headline.backgroundRole(), colour)
            pal.setColor(self.headline.foregroundRole(), QColor("#ffffff"))
        self.headline.setPalette(pal)
        self.start_button.setText("Restart check" if self.watch is not None else "Start check")
        self.stop_button.setEnabled(self.watching)
        self._update_state()

    def _update_state(self) -> None:
        if self.watch is None or self.started_at is None:
            self.state.setText("")
            return
        if self.watching:
            elapsed = self._clock() - self.started_at
            hint = RELOAD_HINT if self.verdict is None or self.verdict.passed else \
                "Still watching: later requests are added to the list."
            self.state.setText(f"Watching for {_seconds(elapsed)}. {hint}")
        else:
            stopped = self.stopped_at if self.stopped_at is not None else self._clock()
            self.state.setText(f"Stopped after {_seconds(stopped - self.started_at)}. "
                               "Restart the check to watch again from now.")

    def _on_clicked(self, item: QListWidgetItem) -> None:
        record_id = item.data(Qt.ItemDataRole.UserRole)
        if record_id is not None:
            emit(self.recordClicked, int(record_id))

    def _on_activated(self, item: QListWidgetItem) -> None:
        record_id = item.data(Qt.ItemDataRole.UserRole)
        if record_id is not None:
            emit(self.recordActivated, int(record_id))

    def offending_ids(self) -> list[int]:
        """Record ids listed as offending, in order (for tests)."""
        return [int(self.offending.item(i).data(Qt.ItemDataRole.UserRole)) for i in range(self.offending.count())]
