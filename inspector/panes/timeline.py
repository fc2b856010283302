"""A small timeline strip: requests over time, ok and invalid stacked, for the rows the table shows.

The buckets are those of :func:`mockserver.records.diff.timeline_buckets` over the
shown rows, counted from :class:`TimelineCounts`: every shown row's time, kept
sorted by status. Live rows are added to it as they arrive (``append``), so a
batch costs its own rows plus a binary search per bar, never a pass over every
row; only a change of the shown set (filter, reload) reads all rows again.
Recounting is coalesced by a single-shot timer; painting only draws the cached
bars. Hover shows a bucket's time range and counts; a click selects the first
record in it.
"""

from __future__ import annotations

import time
from bisect import bisect_left, insort
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta

from PySide6.QtCore import QEvent, QPoint, QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QPaintEvent, QPalette, QResizeEvent
from PySide6.QtWidgets import QSizePolicy, QToolTip, QWidget

from inspector.widgets import theme
from inspector.widgets.plaintext import plain_tooltip
from mockserver.core.beacon import STATUSES, Summary
from mockserver.core.clock import parse_utc
from mockserver.core.text import plural
from mockserver.records.diff import TimeBucket

BAR_WIDTH = 6  # pixels per bucket (bar plus gap)
MIN_DELAY_MS = 150


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _micros(text: str) -> int:
    """Microseconds since 1970 of an ISO time, read as :func:`mockserver.records.diff.timeline_buckets` reads it."""
    moment = parse_utc(text)
    return (moment - _EPOCH) // _MICROSECOND


class TimelineCounts:
    """The times of a set of rows, sorted, one list per status: rows can be added one batch at a time.

    :meth:`buckets` gives exactly ``timeline_buckets(rows, width)`` (same edges,
    same counts), by binary search in the sorted times: O(width · log rows)
    instead of parsing every row's time again.
    """

    def __init__(self, rows: Iterable[Summary] = ()) -> None:
        self._times: dict[str, list[int]] = {}  # status -> microseconds since 1970, ascending
        self.size = 0  # rows added (a row whose time cannot be read is counted here, not charted)
        self.add(rows)

    def add(self, rows: Iterable[Summary]) -> None:
        """Count ``rows`` too (a row whose time cannot be read is counted in ``size`` only)."""
        times = self._times
        late: dict[str, list[int]] = {}  # times earlier than the last one of their status
        for s in rows:
            self.size += 1
            try:
                moment = _micros(s.received_at)
            except (TypeError, ValueError):
                continue
            same = times.get(s.status)
            if same is None:
                times[s.status] = [moment]
            elif same[-1] <= moment:
                same.append(moment)  # the usual case: live rows arrive in time order
            else:
                late.setdefault(s.status, []).append(moment)
        for status, moments in late.items():
            same = times[status]
            if len(moments) > 64:
                same.extend(moments)
                same.sort()
            else:
                for moment in moments:
                    insort(same, moment)

    def buckets(self, width: int) -> list[TimeBucket]:
        """``width`` equal time buckets from the first to the last row, counted by status."""
        if width < 1:
            raise ValueError(f"width must be at least 1 bucket, got {width}")
        lists = [(status, times) for status, times in self._times.items() if times]
        if not lists:
            return []
        first_us = min(times[0] for _, times in lists)
        first = _EPOCH + timedelta(microseconds=first_us)
        last = _EPOCH + timedelta(microseconds=max(times[-1] for _, times in lists))
        # From here on the same arithmetic as timeline_buckets, so edges and counts are identical.
        span = last - first
        if span <= timedelta(0):
            span = timedelta(seconds=1)
        size = (span / width) // _MICROSECOND
        edges = [first + span * i / width for i in range(width)] + [first + span]
        buckets = [TimeBucket(edges[i], edges[i + 1], dict.fromkeys(STATUSES, 0)) for i in range(width)]

        def index(moment: int) -> int:  # the bucket of a time: (moment - first) / size, as a timedelta ratio
            return min(width - 1, int((moment - first_us) / size))

        for status, times in lists:
            lo, n = 0, len(times)
            while lo < n:  # one bisection per non-empty bucket (index() grows with the time)
                i = index(times[lo])
                hi = n if i == width - 1 else bisect_left(times, i + 1, lo, n, key=index)
                counts = buckets[i].counts
                counts[status] = counts.get(status, 0) + hi - lo
                lo = hi
        return buckets


def _clock(moment: datetime, with_date: bool) -> str:
    local = moment.astimezone()
    return local.strftime("%Y-%m-%d %H:%M:%S" if with_date else "%H:%M:%S")


class TimelineStrip(QWidget):
    """Requests per time slice. ``bucketClicked(first_record_id)`` on a click on a non-empty bar."""

    bucketClicked = Signal(int)

    def __init__(self, rows: Callable[[], Sequence[Summary]], parent: QWidget | None = None,
                 count: Callable[[], int] | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("timeline")
        self._rows = rows
        self._count = count  # how many rows there are, cheaply (a check that appends kept up)
        self._counts = TimelineCounts()
        self._stale = True  # the shown rows changed as a whole: read them all again
        self.full_recounts = 0  # how often every row was read (for tests)
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
        """Recompute soon from all the rows (the shown set changed); bursts collapse into one recomputation."""
        self._stale = True
        self._start()

    def append(self, rows: Iterable[Summary]) -> None:
        """``rows`` were added to those shown: count them, and redraw soon."""
        if not self._stale:
            self._counts.add(rows)
        self._start()

    def _start(self) -> None:
        if not self._timer.isActive():
            self._timer.start(max(MIN_DELAY_MS, int(self.last_cost * 5000)))

    def _bar_count(self) -> int:
        return max(10, (self.width() - 16) // BAR_WIDTH)

    def recompute(self) -> None:
        """Bring the buckets up to date now."""
        self._timer.stop()
        started = time.perf_counter()
        if self._stale or (self._count is not None and self._count() != self._counts.size):
            self._counts = TimelineCounts(self._rows())
            self._stale = False
            self.full_recounts += 1
        self.buckets = self._counts.buckets(self._bar_count())
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
        left, bottom, height = plot.left(), plot.bottom(), plot.height()
        # One rectangle, moved for each bar: constructing a QRectF lets go of the GIL, and
        # the embedded server's threads would take it (and keep it a while) at each bar.
        rect = QRectF()
        for i, bucket in enumerate(self.buckets):
            if not bucket.total:
                continue
            x = left + i * step
            ok = bucket.counts.get("ok", 0)
            bad = bucket.total - ok
            ok_h = height * ok / peak
            bad_h = height * bad / peak
            if ok:
                rect.setRect(x, bottom - ok_h, bar, ok_h)
                painter.fillRect(rect, s.ok)
            if bad:
                rect.setRect(x, bottom - ok_h - bad_h, bar, bad_h)
                painter.fillRect(rect, s.invalid)
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
                         f"{plural(total, 'request')} over {_span(last - first)}")
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
        QToolTip.showText(self.mapToGlobal(QPoint(int(event.position().x()), 0)), self.bucket_tooltip(index), self)

    def bucket_tooltip(self, index: int) -> str:
        """The tooltip of bucket ``index``: its time span and counts."""
        bucket = self.buckets[index]
        with_date = bucket.start.astimezone().date() != self.buckets[-1].end.astimezone().date()
        return plain_tooltip(f"{_clock(bucket.start, with_date)} – {_clock(bucket.end, with_date)}\n"
                             f"{plural(bucket.total, 'request')}: "
                             f"{bucket.counts.get('ok', 0)} ok, {bucket.total - bucket.counts.get('ok', 0)} invalid")

    def first_id_in(self, index: int) -> int | None:
        """The lowest record id among the rows in bucket ``index`` (None when it is empty)."""
        bucket = self.buckets[index]
        last = index == len(self.buckets) - 1
        best: int | None = None
        for s in self._rows():
            try:
                moment = parse_utc(s.received_at)
            except ValueError:
                continue
            in_bucket = bucket.start <= moment and (moment < bucket.end or (last and moment == bucket.end))
            if in_bucket and s.id is not None and (best is None or s.id < best):
                best = s.id
        return best

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt override
        index = self.bucket_at(event.position().x())
        if index is None or not self.buckets[index].total:
            return
        record_id = self.first_id_in(index)
        if record_id is not None:
            self.bucketClicked.emit(record_id)

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        if len(self.buckets) != self._bar_count():
            self._start()

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt override
        if event.type() == QEvent.Type.FontChange:
            self._apply_height()
        super().changeEvent(event)


def _span(delta: timedelta) -> str:
    seconds = delta.total_seconds()
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"
