"""The "Opt-out check" mode: watch from now on, reload the app, see PASS, FAIL or NOT PROVEN large.

Built on :class:`mockserver.records.verdict.OptOutWatch` (the same verdict ``verify
--expect none`` gives). The watch's ``on_change`` runs on the thread that
stored a request; it only wakes the GUI thread with a queued call (as
:mod:`inspector.bridge` does), and the verdict is read from the store there.

Nothing arriving is only a PASS when the route was proven during the check:
a route probe loaded through a browser this window started
(:mod:`inspector.panes.routeproof`), when the check starts, when it stops and on
"Prove route". FAIL needs no proof; without one, the verdict is NOT PROVEN.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

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

from inspector.jobs import Job
from inspector.panes.routeproof import NO_BROWSER, RouteProver
from inspector.wake import GuiWake
from inspector.widgets import theme
from inspector.widgets.icons import status_icon
from inspector.widgets.plaintext import plain_label, plain_tooltip
from mockserver.core.beacon import Beacon
from mockserver.core.clock import iso_utc, parse_iso, utc_now
from mockserver.core.text import plural
from mockserver.reach.browser import RouteCheck
from mockserver.records.egress import OtherRequest
from mockserver.records.verdict import OptOutWatch, Verdict, requests_text
from mockserver.serving.probe import UNPROVEN
from mockserver.storage.store import BeaconStore, StoreError

IDLE_HEADLINE = "—"
PROVING_HEADLINE = "PROVING"
UNPROVEN_HEADLINE = "NOT PROVEN"
HEADLINE_SCALE = 3.6  # PASS / FAIL; the longer words get a smaller badge font so the text beside keeps its room
LONG_HEADLINE_SCALE = 2.2
RELOAD_HINT = ("Now reload the app in the routed browser. A refine app sends its beacon within a second of "
               "loading; Stop or Prove route then proves the route again.")
IDLE_TEXT = ("Start a check, then reload your app: PASS when nothing reaches telemetry.refine.dev through a "
             "proven route (Server ▸ Open app in routed browser…), FAIL with every request that did.")
PROVING_TEXT = "Proving the route: a probe is loading in the routed browser…"
UNPROVEN_TODO = ("Open the app with Server ▸ Open app in routed browser…: the window proves the route through "
                 "the browser it starts. Then reload the app and press Prove route (or restart the check). "
                 "The window cannot prove the route through a browser you started yourself; the command "
                 "telemetry-inspector verify URL --expect none can.")


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
                 clock: Callable[[], float] = time.monotonic, parent: QWidget | None = None, *,
                 prover: RouteProver | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("optOutPanel")
        self.store = store
        self._present = present  # redaction, when on
        self._clock = clock
        self.prover = prover
        self._check = 0  # which check a proof belongs to: a late answer for an earlier one is dropped
        self.proof: RouteCheck | None = None  # the last proof that ran in this check
        self.proof_time: str | None = None  # when it did (local HH:MM:SS)
        self.proof_job: Job | None = None
        self.proofs_run = 0  # proofs that ran in this check
        self.watch: OptOutWatch | None = None
        self.verdict: Verdict | None = None
        self.started_at: float | None = None
        self.stopped_at: float | None = None
        self.since_iso: str | None = None  # the check's start, for the other hosts contacted since
        self._others_shown: list[str] | None = None  # None: never drawn
        self._wake = GuiWake(self, "_on_wake")
        self.last_error: str | None = None

        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 8, 10, 6)
        layout.setSpacing(6)

        layout.addLayout(self._build_controls())

        body = QHBoxLayout()
        body.setSpacing(16)
        body.addLayout(self._build_verdict_box())
        body.addLayout(self._build_text_box(), 1)
        layout.addLayout(body, 1)

        self._ticker = QTimer(self)
        self._ticker.setInterval(1000)
        self._ticker.timeout.connect(self._update_state)
        self._render()

    def _build_controls(self) -> QHBoxLayout:
        """The heading and the Prove route, Start check and Stop buttons."""
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
        self.prove_button = QPushButton("Prove route")
        self.prove_button.setToolTip("Load a route probe in the routed browser's page now: PASS needs a probe "
                                     "that reached this inspector during the check")
        self.prove_button.clicked.connect(lambda: self.prove_route())
        for button in (self.prove_button, self.start_button, self.stop_button):
            button.setAutoDefault(False)
            top.addWidget(button)
        return top


    def _build_verdict_box(self) -> QVBoxLayout:
        """The PASS/FAIL badge and the count under it."""
        verdict_box = QVBoxLayout()
        self.headline = plain_label(IDLE_HEADLINE)
        self.headline.setObjectName("verdictHeadline")
        theme.derive_font(self.headline, HEADLINE_SCALE, bold=True)
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
        return verdict_box


    def _build_text_box(self) -> QVBoxLayout:
        """The summary, state and route proof, what was sent, and the advice."""
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
        self.proof_label = plain_label()
        self.proof_label.setObjectName("routeProof")
        self.proof_label.setWordWrap(True)
        self.proof_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        text_box.addWidget(self.proof_label)
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
        self.others_title = theme.derive_font(plain_label(), bold=True)
        text_box.addWidget(self.others_title)
        self.others = QListWidget()  # plain-text items; the whole line in a plain_tooltip (the page's URLs)
        self.others.setObjectName("otherHosts")
        self.others.setTextElideMode(Qt.TextElideMode.ElideMiddle)  # the host and the outcome stay in view
        self.others.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.others.setToolTip("Requests to hosts other than telemetry.refine.dev, from the pages of the browsers "
                               "this window opened and through its proxy. They do not change the verdict.")
        text_box.addWidget(self.others, 6)
        text_box.addStretch(1)  # labels stay together at the top when there is no list
        return text_box

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
        self.since_iso = iso_utc(utc_now())
        self.stopped_at = None
        self.verdict = None
        self._check += 1
        self.proof = self.proof_time = self.proof_job = None
        self.proofs_run = 0
        self.prove_route()  # in the page as it is now, before the user reloads
        self._refresh()
        self._ticker.start()
        self.stateChanged.emit()
        return True

    def stop(self, final: bool = True, prove: bool = True) -> None:
        """Stop watching; the last verdict stays on screen. With ``prove``, the route is proven once more."""
        watch, self.watch = self.watch, (self.watch if final else None)
        if watch is not None and watch.active:
            try:
                self.verdict = watch.stop()
            except StoreError as exc:
                self.last_error = str(exc)
            self.stopped_at = self._clock()
        self._ticker.stop()
        if final:
            if prove and watch is not None and self.stopped_at is not None:
                self.prove_route()  # after the app loaded
            self._render()
            self.stateChanged.emit()

    # -- the route proof --------------------------------------------------------

    @property
    def proven(self) -> bool:
        """True when the last proof in this check reached the inspector."""
        return self.proof is not None and self.proof.proven

    @property
    def proving(self) -> bool:
        """True while a proof of this check is running."""
        return self.proof_job is not None and not self.proof_job.done

    def prove_route(self) -> Job | None:
        """Prove the route through the browsers this window started (a job); None when none is running."""
        if self.watch is None or self.prover is None or self.proving:
            return self.proof_job if self.proving else None
        job = self.prover.prove()
        if job is None:
            self._render()
            return None
        check = self._check
        self.proof_job = job
        job.succeeded.connect(lambda result: self.note_proof(result, check=check))
        job.failed.connect(lambda message: self.note_proof(RouteCheck(False, f"{UNPROVEN} ({message})"), check=check))
        self._render()
        return job

    def note_proof(self, result: RouteCheck, check: int | None = None) -> None:
        """Take the outcome of a proof: of the job started for ``check``, or (None) one made while watching."""
        stale = check != self._check if check is not None else not self.watching
        if self.watch is None or stale:
            return
        if not result.browser_closed:  # a browser closed in the meantime changes nothing
            self.proof = result
            self.proof_time = datetime.now().strftime("%H:%M:%S")
            self.proofs_run += 1
        self._render()
        self.stateChanged.emit()

    def outcome(self) -> str:
        """``idle``, ``fail``, ``pass``, ``proving`` or ``unproven``: what the panel shows."""
        if self.watch is None:
            return "idle"
        if self.verdict is not None and not self.verdict.passed:
            return "fail"  # requests arrived: no proof needed
        if self.proven:
            return "pass"
        return "proving" if self.proving and self.proof is None else "unproven"

    def mode_text(self) -> str:
        """The mode action's text: ``Opt-out check: PASS so far``, ``…: FAIL (2)``, ``…: NOT PROVEN``."""
        outcome = self.outcome()
        if outcome == "pass":
            return "Opt-out check: PASS" + (" so far" if self.watching else "")
        if outcome == "fail" and self.verdict is not None:
            return f"Opt-out check: FAIL ({self.verdict.count})"
        if outcome == "unproven":
            return f"Opt-out check: {UNPROVEN_HEADLINE}"
        return "Opt-out check"

    def unproven_text(self) -> str:
        """Why the route is not proven, as one line starting with :data:`~mockserver.serving.probe.UNPROVEN`."""
        if self.proof is not None and self.proof.line.startswith(UNPROVEN):
            return self.proof.line
        return f"{UNPROVEN} ({NO_BROWSER})"

    def _on_change(self, _watch: OptOutWatch) -> None:
        """Runs on the thread that stored a request: wake the GUI thread once per batch."""
        self._wake()

    @Slot()
    def _on_wake(self) -> None:
        self._wake.reset()
        if self.watching:
            self._refresh()
            self.stateChanged.emit()

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
        outcome = self.outcome()
        self.offending.clear()
        advice: list[str] = []
        advice_title = ""
        if outcome == "idle" or verdict is None:
            self.headline.setText(IDLE_HEADLINE)
            colour = None
            self.count_label.setText("")
            self.summary.setText(IDLE_TEXT if self.watch is None else PROVING_TEXT)
        else:
            self.count_label.setText(f"{requests_text(verdict.count, verdict.preflights)} sent")
            if outcome == "fail":
                self.headline.setText(verdict.headline)
                colour = s.invalid
                self.summary.setText(verdict.summary())
                advice, advice_title = verdict.advice, "How to opt out for real:"
            elif outcome == "pass":
                self.headline.setText(verdict.headline)
                colour = s.ok
                text = verdict.summary()
                self.summary.setText(text.replace("PASS:", "PASS so far:", 1) if self.watching else text)
            elif outcome == "proving":
                self.headline.setText(PROVING_HEADLINE)
                colour = None
                self.summary.setText(PROVING_TEXT)
            else:
                self.headline.setText(UNPROVEN_HEADLINE)
                colour = s.note
                self.summary.setText(self.unproven_text())
                advice, advice_title = [UNPROVEN_TODO], "What to do:"
        for beacon in verdict.offending if verdict is not None and outcome == "fail" else ():
            item = QListWidgetItem(status_icon("invalid", s), describe(self._present(beacon)))
            item.setData(Qt.ItemDataRole.UserRole, beacon.id)
            self.offending.addItem(item)
        shown = self.offending.count()
        self.offending.setVisible(shown > 0)
        self.offending_title.setText(f"Sent to telemetry.refine.dev during the check ({shown}):" if shown else "")
        self.advice.setText("\n".join(advice))
        self.advice_title.setText(advice_title)
        for label in (self.offending_title, self.advice_title, self.advice):
            label.setVisible(bool(label.text()))  # an empty label would still take a row
        long_word = self.headline.text() in (UNPROVEN_HEADLINE, PROVING_HEADLINE)
        theme.derive_font(self.headline, LONG_HEADLINE_SCALE if long_word else HEADLINE_SCALE, bold=True)
        proof = self._proof_text() if outcome != "fail" else ""  # FAIL needs no proof: no line for it
        self.proof_label.setText(proof)
        self.proof_label.setVisible(bool(proof))
        pal = self.headline.palette()
        if colour is None:  # no verdict yet: a plain, muted badge
            pal.setColor(self.headline.backgroundRole(), self.palette().color(self.backgroundRole()))
            pal.setColor(self.headline.foregroundRole(), s.muted)
        else:
            pal.setColor(self.headline.backgroundRole(), colour)
            pal.setColor(self.headline.foregroundRole(), QColor("#ffffff"))
        self.headline.setPalette(pal)
        self._render_others()
        self.start_button.setText("Restart check" if self.watch is not None else "Start check")
        self.stop_button.setEnabled(self.watching)
        self.prove_button.setEnabled(self.watching and not self.proving)
        self._update_state()

    def _proof_text(self) -> str:
        """The proof as the user sees it under the verdict."""
        if self.watch is None:
            return ""
        if self.proving:
            return "Route: a probe is loading in the routed browser…"
        if self.proof is not None and self.proof.proven:
            return f"Route {self.proof.line} at {self.proof_time} (probes are never recorded)."
        if self.proof is None:
            return "Route: not proven in this check."
        return f"Route: not proven at {self.proof_time}."

    def other_requests(self) -> list[OtherRequest]:
        """The other hosts contacted during this check (none before a check starts)."""
        if self.prover is None or self.since_iso is None or self.watch is None:
            return []
        return self.prover.other_requests(self.since_iso)

    def _render_others(self) -> None:
        """The other-hosts list, redrawn only when it changed (the ticker asks every second)."""
        found = self.other_requests()
        lines = [r.line() for r in found]
        if lines == self._others_shown:
            return
        self._others_shown = lines
        self.others.clear()
        for line in lines:
            item = QListWidgetItem(line)
            item.setToolTip(plain_tooltip(line))
            self.others.addItem(item)
        hosts = len({r.host for r in found})
        self.others_title.setText(f"Other hosts contacted during the check ({plural(hosts, 'host')}, "
                                  f"{plural(len(found), 'request')}; not telemetry, the verdict is unchanged):"
                                  if found else "")
        self.others_title.setVisible(bool(found))
        self.others.setVisible(bool(found))

    def _update_state(self) -> None:
        if self.watch is None or self.started_at is None:
            self.state.setText("")
            return
        if self.watching:
            self._render_others()
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
            self.recordClicked.emit(int(record_id))

    def _on_activated(self, item: QListWidgetItem) -> None:
        record_id = item.data(Qt.ItemDataRole.UserRole)
        if record_id is not None:
            self.recordActivated.emit(int(record_id))

    def offending_ids(self) -> list[int]:
        """Record ids listed as offending, in order (for tests)."""
        return [int(self.offending.item(i).data(Qt.ItemDataRole.UserRole)) for i in range(self.offending.count())]
