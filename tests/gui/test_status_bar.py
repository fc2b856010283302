"""The window's status bar at 1024 px: a long message is cut with … to the room its widgets leave,
never clipped mid-word, and the whole of it is the bar's plain-text tooltip until it goes."""

from __future__ import annotations

from PySide6.QtWidgets import QSizeGrip

LONG = ("Opened chromium at http://localhost:5173/dashboard?tab=settings: route proven, "
        "reload the app and watch the table (every request to telemetry.refine.dev is listed)")


def test_a_long_message_fits_the_room_left_and_keeps_its_whole_text(window, qtbot):
    window.resize(1024, 700)
    window.show()
    qtbot.waitExposed(window)
    status = window.statusBar()
    qtbot.waitUntil(lambda: status.room() > 80)
    window.flash(LONG)
    shown = status.currentMessage()
    assert shown != LONG and "…" in shown
    assert shown.startswith("Opened chromium at http://") and shown.endswith("is listed)")
    assert status.fontMetrics().horizontalAdvance(shown) <= status.room()
    leftmost = min(w.x() for w in status.children() if getattr(w, "isVisible", lambda: False)()
                   and not isinstance(w, QSizeGrip) and w.isWidgetType())
    assert status.room() < leftmost  # the room ends before the first widget, which is never painted over
    assert status.full_message == LONG
    buttons = (window.server_panel.ports_button, window.server_panel.routing_button)
    assert not any(b.isVisible() for b in buttons)  # they stepped aside (the Server menu has both)
    assert "telemetry.refine.dev is listed)" in status.toolTip() and status.toolTip().startswith("<")
    status.clearMessage()
    assert (status.full_message, status.toolTip()) == ("", "")
    assert all(b.isVisible() for b in buttons)


def test_a_short_message_is_shown_as_it_is(window, qtbot):
    window.resize(1024, 700)
    window.show()
    qtbot.waitExposed(window)
    qtbot.waitUntil(lambda: window.statusBar().room() > 80)
    window.flash("Copied the pin")
    assert window.statusBar().currentMessage() == "Copied the pin"
    assert window.statusBar().toolTip() == ""
