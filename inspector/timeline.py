"""A small timeline strip: requests over time, ok and invalid stacked, for the rows the table shows.

Buckets come from :func:`mockserver.diff.timeline_buckets`. They are
recomputed only when the rows change (coalesced by a single-shot timer whose
delay grows with the cost of the last computation, so a flood of live
requests over 100,000 rows cannot keep the GUI thread busy); painting only
draws the cached bars. Hover shows a bucket's time range and counts; a click
selects the first record in it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import datetime

from PySide6.QtCore import QPoint, QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QPaintEvent, QPalette
from PySide6.QtWidgets import QSizePolicy, QToolTip, QWidget

from mockserver.beacon import Summary
from mockserver.diff import TimeBucket, timeline_buckets

from . import theme
from .qtcompat import emit

BAR_WIDTH = 6  # pixels per bucket (bar plus gap)
MIN_DELAY_MS = 150


def _clock(moment: datetime, with_date: bool) -> str:
    local = moment.astimezone()
    return local.strftime("%Y-%m-%d %H:%M:%S" if with_date else "%H:%M:%S")


class TimelineStrip(QWidget):
    """Requests per time slice. ``bucketClicked(first_record_id)`` on a click on a non-empty bar."""

    bucketClicked = Signal(int)

    def __init__(self, rows: Callable[[], Sequence[Summary]], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("timeline")
        self._rows = rows
        self.buckets: list[TimeBucket] = []
        self.marker: datetime | None = None  # the selected record's time
        self.last_cost = 0.0  # seconds the last recomputation took
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.recompute)
        self.setMouseTracking(True)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setToolTip("Requests over time (the rows the table shows): green ok, red invalid. "
                        "Click a bar to select its first request.")
        self._apply_height()

    def _apply_height(self) -> None:
        self.setFixedHeight(self.fontMetrics().height() + 34)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override
        return QSize(400, self.fontMetrics().height() + 34)

    # -- data -----------------------------------------------------------------

    def schedule(self) -> None:
        """Recompute soon (rows changed); bursts collapse into one recomputation."""
        if not self._timer.isActive():
            self._timer.start(max(MIN_DELAY_MS, int(self.last_cost * 5000)))

    def _bar_count(self) -> int:
        return max(10, (self.width() - 16) // BAR_WIDTH)

    def recompute(self) -> None:
        """Rebuild the buckets from the rows now."""
        self._timer.stop()
        started = time.perf_counter()
        rows = self._rows()
        width = self._bar_count()
        self.buckets = timeline_buckets(rows, width) if rows else []
        self.last_cost = time.perf_counter() - started
        self.update()

    def set_marker(self, moment: datetime | None) -> None:
        """Mark the selected record's time (None: no mark)."""
        self.marker = moment
        self.update()

    # -- painting -------------------------------------------------------------

    def _plot(self) -> QRectF:
        height = self.fontMetrics().height()
        return QRectF(8, 4, self.width() - 16, self.height() - height - 10)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt override
        painter = QPainter(self)
        pal = self.palette()
        s = theme.scheme()
        plot = self._plot()
        painter.fillRect(self.rect(), pal.color(QPalette.ColorRole.Base))
        painter.setPen(pal.color(QPalette.ColorRole.Mid))
        painter.drawLine(plot.bottomLeft(), plot.bottomRight())
        text_colour = QColor(s.muted)
        if not self.buckets:
            painter.setPen(text_colour)
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "No requests to chart")
            painter.end()
            return
        peak = max(1, max(b.total for b in self.buckets))
        step = plot.width() / len(self.buckets)
        bar = max(1.0, step - 1.5)
        for i, bucket in enumerate(self.buckets):
            if not bucket.total:
                continue
            x = plot.left() + i * step
            ok = bucket.counts.get("ok", 0)
            bad = bucket.total - ok
            ok_h = plot.height() * ok / peak
            bad_h = plot.height() * bad / peak
            if ok:
                painter.fillRect(QRectF(x, plot.bottom() - ok_h, bar, ok_h), s.ok)
            if bad:
                painter.fillRect(QRectF(x, plot.bottom() - ok_h - bad_h, bar, bad_h), s.invalid)
        if self.marker is not None:
            start, end = self.buckets[0].start, self.buckets[-1].end
            if start <= self.marker <= end:
                x = plot.left() + plot.width() * ((self.marker - start) / (end - start))
                painter.setPen(pal.color(QPalette.ColorRole.Highlight))
                painter.drawLine(int(x), int(plot.top()), int(x), int(plot.bottom()))
        first, last = self.buckets[0].start, self.buckets[-1].end
        with_date = first.astimezone().date() != last.astimezone().date()
        painter.setPen(text_colour)
        text_rect = QRectF(plot.left(), plot.bottom() + 2, plot.width(), self.fontMetrics().height() + 4)
        painter.drawText(text_rect, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                         _clock(first, with_date))
        painter.drawText(text_rect, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                         _clock(last, with_date))
        total = sum(b.total for b in self.buckets)
        painter.drawText(text_rect, Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignVCenter,
                         f"{total} request{'s' if total != 1 else ''} over {_span(last - first)}")
        painter.end()

    # -- mouse ------------------------------------------------------------------

    def bucket_at(self, x: float) -> int | None:
        """The bucket under horizontal position ``x`` (None outside the plot)."""
        plot = self._plot()
        if not self.buckets or not plot.left() <= x < plot.right():
            return None
        return min(len(self.buckets) - 1, int((x - plot.left()) / (plot.width() / len(self.buckets))))

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt override
        index = self.bucket_at(event.position().x())
        if index is None:
            QToolTip.hideText()
            return
        bucket = self.buckets[index]
        with_date = bucket.start.astimezone().date() != self.buckets[-1].end.astimezone().date()
        text = (f"{_clock(bucket.start, with_date)} – {_clock(bucket.end, with_date)}\n"
                f"{bucket.total} request{'s' if bucket.total != 1 else ''}: "
                f"{bucket.counts.get('ok', 0)} ok, {bucket.total - bucket.counts.get('ok', 0)} invalid")
        QToolTip.showText(self.mapToGlobal(QPoint(int(event.position().x()), 0)), text, self)

    def first_id_in(self, index: int) -> int | None:
        """The lowest record id among the rows in bucket ``index`` (None when it is empty)."""
        bucket = self.buckets[index]
        last = index == len(self.buckets) - 1
        best: int | None = None
        for s in self._rows():
            try:
                moment = datetime.fromisoformat(s.received_at.replace("Z", "+00:00"))
            except ValueError:
                continue
            if bucket.start <= moment and (moment < bucket.end or (last and moment == bucket.end)):
                if s.id is not None and (best is None or s.id < best):
                    best = s.id
        return best

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt override
        index = self.bucket_at(event.position().x())
        if index is None or not self.buckets[index].total:
            return
        record_id = self.first_id_in(index)
        if record_id is not None:
            emit(self.bucketClicked, record_id)

    def resizeEvent(self, event) -> None:  # noqa: N802, ANN001 - Qt override
        super().resizeEvent(event)
        if len(self.buckets) != self._bar_count():
            self.schedule()

    def changeEvent(self, event) -> None:  # noqa: N802, ANN001 - Qt override
        from PySide6.QtCore import QEvent

        if event.type() == QEvent.Type.FontChange:
            self._apply_height()
        super().changeEvent(event)


def _span(delta) -> str:  # noqa: ANN001 - a timedelta
    seconds = delta.total_seconds()
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"
