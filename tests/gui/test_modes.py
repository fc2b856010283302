"""The opt-out check, compare, the composer, the timeline and Copy as Markdown, over real sockets."""

from __future__ import annotations

import base64
import json
from urllib.parse import urlsplit

from PySide6.QtCore import QItemSelectionModel, Qt
from PySide6.QtGui import QGuiApplication

from mockserver.core.payloads import btoa_json
from mockserver.records.advice import CORE_4_AND_5
from tests.gui.conftest import REFINE4, beacon_url, send


def select_two(window, first: int, second: int) -> None:
    window.select_record(first)
    flags = QItemSelectionModel.SelectionFlag.Select | QItemSelectionModel.SelectionFlag.Rows
    window.table.selectionModel().select(window.model.index(window.model.row_of(second), 0), flags)


# -- opt-out check ----------------------------------------------------------------------------

UNPROVEN_NO_BROWSER = ("could not run: the route to the inspector is not proven (no browser opened by this window "
                       "is running; the window can prove the route only through a browser it started)")


def test_opt_out_check_without_a_window_browser_is_never_pass_and_fails_with_one_beacon(window, send_and_wait,
                                                                                       qtbot):
    send_and_wait(window, beacon_url(window, REFINE4))  # before the check: does not count
    window.mode_actions["optout"].trigger()  # opening the mode starts the watch
    panel = window.optout
    assert window.bottom.currentWidget() is panel and panel.watching
    # Nothing arrived, but no browser of this window could prove the route: not a PASS.
    assert (panel.outcome(), panel.headline.text()) == ("unproven", "NOT PROVEN")
    assert panel.summary.text() == UNPROVEN_NO_BROWSER
    assert panel.advice_title.text() == "What to do:"
    assert panel.advice.text().startswith("Open the app with Server ▸ Open app in routed browser…: the window "
                                          "proves the route through the browser it starts.")
    assert "cannot prove the route through a browser you started yourself" in panel.advice.text()
    assert panel.proof_label.text() == "Route: not proven in this check."
    assert panel.count_label.text() == "0 requests sent" and panel.offending_ids() == []
    assert panel.state.text().startswith("Watching for 0 s. Now reload the app")
    assert window.mode_actions["optout"].text() == "Opt-out check: NOT PROVEN"
    panel.prove_button.click()  # nothing to prove through: still not proven, and no job
    assert panel.proof_job is None and panel.headline.text() == "NOT PROVEN"

    send(beacon_url(window, {**REFINE4, "version": "4.57.0"}))  # a real beacon over a socket
    qtbot.waitUntil(lambda: panel.headline.text() == "FAIL", timeout=5000)  # FAIL needs no proof
    record_id = window.store.last_id()
    assert panel.count_label.text() == "1 request sent"
    assert panel.summary.text() == "FAIL: expected no request, got 1"
    assert panel.offending_ids() == [record_id]
    assert panel.offending.item(0).text().startswith(f"#{record_id}  ")
    assert panel.advice.text() == CORE_4_AND_5
    assert window.mode_actions["optout"].text() == "Opt-out check: FAIL (1)"

    item = panel.offending.item(0)
    panel.offending.itemClicked.emit(item)  # click: the request is selected in the table
    assert window.selected_ids() == [record_id]
    panel.offending.itemActivated.emit(item)  # double-click: and its details shown
    assert window.mode == "details" and window.detail.beacon.id == record_id

    window.set_mode("optout")
    panel.stop_button.click()
    assert not panel.watching and panel.headline.text() == "FAIL"  # the verdict stays
    assert panel.state.text().startswith("Stopped after ")
    send_and_wait(window, beacon_url(window, REFINE4))
    assert panel.verdict.count == 1  # stopped: nothing more counts

    panel.start_button.click()  # "Restart check": from now on
    assert panel.watching and panel.verdict.passed and panel.verdict.count == 0
    assert panel.headline.text() == "NOT PROVEN" and panel.summary.text() == UNPROVEN_NO_BROWSER
    panel.stop_button.click()
    assert panel.headline.text() == "NOT PROVEN" and window.mode_actions["optout"].text() == "Opt-out check: NOT PROVEN"


def test_opt_out_check_refuses_to_start_without_a_server(make_window, db_path):
    window = make_window(db_path, start=False)
    assert not window.start_opt_out_check()
    assert window.last_error.startswith("Cannot start the opt-out check: The server is stopped")
    assert window.optout.watch is None and window.optout.headline.text() == "—"


# -- compare ----------------------------------------------------------------------------------

def test_compare_two_selected_records_shows_the_changed_paths(window, send_and_wait):
    send_and_wait(window, beacon_url(window, REFINE4))
    after = {**REFINE4, "providers": {**REFINE4["providers"], "i18n": True}, "version": "4.58.1",
             "projectId": "p-1"}
    firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
    send_and_wait(window, beacon_url(window, after), headers={"User-Agent": firefox})
    window.set_mode("compare")
    assert window.compare.stack.currentWidget() is window.compare.placeholder  # one selected: the hint
    select_two(window, 1, 2)
    window.compare_selected_action.trigger()
    assert window.compare.paths() == [
        "providers.i18n", "version", "projectId",
        "client.user_agent", "client.browser.family", "client.browser.version",
    ]
    tree = window.compare.tree
    assert [tree.topLevelItem(0).text(c) for c in range(4)] == ["changed", "providers.i18n", "false", "true"]
    assert [tree.topLevelItem(2).text(c) for c in range(4)] == ["added", "projectId", "", '"p-1"']
    assert window.compare.title.text().startswith("#1 (beacon, ") and window.compare.title.text().endswith(
        "6 differences")
    window.compare.swap_button.click()
    assert [tree.topLevelItem(0).text(c) for c in range(4)] == ["changed", "providers.i18n", "true", "false"]
    assert [tree.topLevelItem(2).text(c) for c in range(2)] == ["removed", "projectId"]


# -- composer ---------------------------------------------------------------------------------

def test_composer_sends_the_exact_beacon_and_shows_the_url(window, qtbot):
    dialog = window.show_composer()
    dialog.version.setText("5.0.12")
    dialog.providers["i18n"].setChecked(True)
    dialog.providers["router"].setChecked(False)
    dialog.resources.setValue(3)
    dialog.send_project.setChecked(True)
    dialog.project_id.setText("café+/?")
    expected = {"providers": {"auth": False, "auditLog": False, "live": False, "router": False, "data": True,
                              "i18n": True, "notification": False, "accessControl": False},
                "version": "5.0.12", "resourceCount": 3, "projectId": "café+/?"}
    wire = btoa_json(expected)  # btoa: Latin-1, 'é' is one byte
    assert dialog.json_preview.toPlainText() == json.dumps(expected, separators=(",", ":"), ensure_ascii=False)
    job = dialog.send()
    with qtbot.waitSignal(job.finished, timeout=10000):
        pass
    sent = f"{window.server.listening.http_url}/telemetry?payload={wire}"
    assert dialog.sent_url == sent
    assert dialog.url_view.toPlainText() == f"GET {sent}"
    assert dialog.outcome.text() == "Sent. Answer: 200 OK image/gif"
    qtbot.waitUntil(lambda: window.model.total == 1, timeout=5000)
    record = window.store.get(1)
    assert window.detail.beacon.id == 1  # the sent record is shown
    assert window.statusBar().full_message == "Sent as #1: 200 OK"
    assert record.payload == expected and list(record.payload) == list(expected)  # keys in refine's order
    assert record.request.query == f"payload={wire}" and record.encoding == "latin-1"
    assert base64.b64decode(record.raw_payload) == json.dumps(expected, separators=(",", ":"),
                                                              ensure_ascii=False).encode("latin-1")
    assert urlsplit(dialog.sent_url).query == record.request.query


def test_composer_reports_btoa_refusal_and_sends_nothing(window, qtbot):
    dialog = window.show_composer()
    dialog.send_project.setChecked(True)
    dialog.project_id.setText("price €")
    assert dialog.refusal.startswith("Not sent: projectId contains '€' (U+20AC), which btoa cannot encode")
    assert dialog.url_view.toPlainText() == "(nothing: refine would not send this beacon)"
    assert dialog.send() is None
    assert dialog.outcome.text() == dialog.refusal and dialog.sent_url is None
    assert window.store.count() == 0 and window.bridge.pending() == 0
    dialog.node.setChecked(True)  # Node's Buffer writes UTF-8: this one is sent
    job = dialog.send()
    with qtbot.waitSignal(job.finished, timeout=10000):
        pass
    qtbot.waitUntil(lambda: window.model.total == 1, timeout=5000)
    assert window.store.get(1).payload["projectId"] == "price €" and window.store.get(1).encoding == "utf-8"


def test_composer_with_the_server_stopped_says_so(make_window, db_path):
    window = make_window(db_path, start=False)
    dialog = window.show_composer()
    assert dialog.send() is None
    assert dialog.outcome.text().startswith("Not sent: the server is stopped")


# -- timeline and Markdown ---------------------------------------------------------------------

def test_timeline_counts_the_shown_rows_and_a_click_selects(window, send_and_wait, qtbot):
    assert not window.timeline.isVisibleTo(window)  # nothing yet: no strip
    for payload in (REFINE4, REFINE4, "eyJh%20bGc"):
        send_and_wait(window, beacon_url(window, payload))
    window.timeline.recompute()
    buckets = window.timeline.buckets
    assert sum(b.total for b in buckets) == 3 and sum(b.counts["invalid"] for b in buckets) == 1
    assert window.timeline.isVisibleTo(window)
    window.filter_edit.setText("invalid")
    window.timeline.recompute()
    assert sum(b.total for b in window.timeline.buckets) == 1
    window.filter_edit.clear()
    window.timeline.recompute()
    window.select_record(3)
    first = next(i for i, b in enumerate(window.timeline.buckets) if b.total)
    assert window.timeline.first_id_in(first) == 1
    window.timeline.resize(600, window.timeline.height())
    x = window.timeline._plot().left() + (first + 0.5) * window.timeline._plot().width() / len(window.timeline.buckets)
    point = window.timeline.rect().center().__class__(int(x), 10)
    qtbot.mouseClick(window.timeline, Qt.MouseButton.LeftButton, pos=point)
    assert window.detail.beacon.id == 1
    window.timeline_action.setChecked(False)
    assert not window.timeline.isVisibleTo(window)


def test_copy_as_markdown_copies_the_collected_card(window, send_and_wait):
    send_and_wait(window, beacon_url(window, {**REFINE4, "projectId": "<b>x</b>|y"}))
    window.select_record(1)
    window.detail.copy_markdown_button.click()
    text = QGuiApplication.clipboard().text()
    # ':' escaped and an invisible break after '#': no GFM autolink, emoji or issue reference
    assert text.startswith("### What was collected\\: \\#<!-- -->1 beacon GET /telemetry, ")
    assert "| projectId | \\<b\\>x\\</b\\>\\|y | query payload → projectId | no |" in text
    assert "#### Application attributes" in text and "#### From the request headers" in text
