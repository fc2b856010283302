"""The inspector window, end to end: real sockets into the real server, rows in the real window."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
from datetime import UTC

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QLabel, QMessageBox

from inspector.widgets.models import Column
from mockserver.core.capture import RawRequest, capture
from mockserver.core.payloads import btoa_json
from tests.gui.conftest import REFINE4, REFINE5, beacon_url, send
from tests.support.helpers import CHROME_UA


def cells(window, row: int) -> dict[str, str]:
    """The displayed text of one row, by column header."""
    model = window.model
    return {model.headerData(c, Qt.Orientation.Horizontal): model.index(row, c).data()
            for c in range(model.columnCount())}


def activate(qtbot, window) -> None:
    """Show the window and make it the active one (shortcuts only reach the active window)."""
    window.show()
    qtbot.waitExposed(window)
    window.activateWindow()
    window.raise_()
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)


def test_beacon_over_a_socket_becomes_a_row_with_exact_values(window, send_and_wait):
    assert window.table_stack.currentWidget() is window.empty  # the empty state first
    status = send_and_wait(window, beacon_url(window, REFINE4))
    assert status == 200
    assert window.model.rowCount() == 1
    row = cells(window, 0)
    assert row["#"] == "1"
    assert row["Kind"] == "beacon"
    assert row["Status"] == "ok"
    assert row["App host"] == "localhost"
    assert row["refine"] == "4.58.0"
    assert row["Res."] == "2"
    assert row["Providers"] == "router data"
    assert row["Browser"] == "Chrome 156.0.0"
    assert row["OS"] == "Linux"
    assert row["IP"] == "127.0.0.1"
    assert row["projectId"] == ""
    assert window.table_stack.currentWidget() is window.table
    assert window.counts_label.text() == "1 record  ·  1 ok  ·  0 invalid"
    assert window.detail.beacon is not None and window.detail.beacon.id == 1  # nothing chosen: the newest shows


def test_detail_pane_shows_values_with_their_sources(window, send_and_wait):
    send_and_wait(window, beacon_url(window, REFINE5))
    assert window.select_record(window.model.record_id(0))
    rows = {(r[1]): r for r in window.detail.collected_rows()}
    assert rows["version"][2:4] == ("5.0.12", "query payload → version")
    assert rows["resourceCount"][2:4] == ("5", "query payload → resourceCount")
    assert rows["providers.router"][2] == "true"
    assert rows["providers.router"][4].startswith("true when the routerProvider prop")
    assert rows["projectId  (not in docs)"][2:4] == ("3f9c2a7e-demo", "query payload → projectId")
    assert rows["Browser"][2:4] == ("Chrome 156.0.0", "header User-Agent")
    assert rows["Hostname"][2:4] == ("localhost", "header Referer")
    assert rows["IP address"][2:4] == ("127.0.0.1", "peer address of the connection")
    assert rows["Email address"][2] == "(not sent)"
    issues = window.detail.issue_texts()
    assert "providers: sent as an object of booleans; the docs say boolean[]" in issues
    assert any(i.startswith("projectId: sent, but not in the docs") for i in issues)
    assert json.loads(window.detail.json_view.toPlainText()) == REFINE5
    encoded = btoa_json(REFINE5)
    assert window.detail.url_view.text() == f"{window.server.listening.http_url}/telemetry?payload={encoded}"
    raw = window.detail.raw_view.toPlainText().splitlines()
    assert raw[0] == f"GET /telemetry?payload={encoded} HTTP/1.1"
    assert f"User-Agent: {CHROME_UA}" in raw


def test_filters_narrow_the_rows(window, send_and_wait):
    send_and_wait(window, beacon_url(window, REFINE4))
    send_and_wait(window, beacon_url(window, REFINE5))
    send_and_wait(window, beacon_url(window, "eyJh%20bGc"))
    send_and_wait(window, f"{window.server.listening.http_url}/cli", method="POST",
                  body=json.dumps({"command": "dev", "nodeVersion": "v22.11.0"}).encode(),
                  headers={"Content-Type": "application/json", "User-Agent": "node-fetch/1.0"})
    model = window.model
    assert model.rowCount() == 4

    window.filter_edit.setText("5.0.12")
    assert model.rowCount() == 1 and cells(window, 0)["refine"] == "5.0.12"
    window.filter_edit.setText("chrome data")  # every word must match
    assert model.rowCount() == 2
    window.filter_edit.clear()
    assert model.rowCount() == 4

    window.kind_combo.setCurrentIndex(window.kind_combo.findData("cli"))
    assert model.rowCount() == 1 and cells(window, 0)["Kind"] == "cli"
    window.kind_combo.setCurrentIndex(0)
    window.status_combo.setCurrentIndex(window.status_combo.findData("invalid"))
    assert model.rowCount() == 1 and cells(window, 0)["Status"] == "invalid"
    window.status_combo.setCurrentIndex(0)
    assert model.rowCount() == 4
    assert window.counts_label.text() == "4 records  ·  3 ok  ·  1 invalid"

    window.filter_edit.setText("no-such-thing")
    assert model.rowCount() == 0
    assert window.counts_label.text() == "0 of 4 records shown  ·  3 ok  ·  1 invalid"
    assert window.table_stack.currentWidget() is window.table  # "no match", not the empty state


def test_sorting_by_a_column_and_newest_first(window, send_and_wait):
    window.follow_action.setChecked(False)  # the selection stays on the chosen record
    for version in ("4.9.0", "4.58.0", "4.10.2"):
        send_and_wait(window, beacon_url(window, {**REFINE4, "version": version}))
    window.table.sortByColumn(Column.VERSION, Qt.SortOrder.AscendingOrder)
    assert [cells(window, r)["refine"] for r in range(3)] == ["4.9.0", "4.10.2", "4.58.0"]
    window.select_record(2)  # 4.58.0
    send_and_wait(window, beacon_url(window, {**REFINE4, "version": "4.20.0"}))  # lands in sorted place
    assert [cells(window, r)["refine"] for r in range(4)] == ["4.9.0", "4.10.2", "4.20.0", "4.58.0"]
    assert window.table.currentIndex().row() == 3  # the selection followed its record
    window.table.sortByColumn(Column.VERSION, Qt.SortOrder.DescendingOrder)
    send_and_wait(window, beacon_url(window, {**REFINE4, "version": "4.15.0"}))
    assert [cells(window, r)["refine"] for r in range(5)] == ["4.58.0", "4.20.0", "4.15.0", "4.10.2", "4.9.0"]
    window.table.sortByColumn(Column.ID, Qt.SortOrder.DescendingOrder)
    assert [cells(window, r)["#"] for r in range(5)] == ["5", "4", "3", "2", "1"]
    send_and_wait(window, beacon_url(window, REFINE5))
    assert cells(window, 0)["#"] == "6"  # newest on top while sorted newest first


def test_follow_newest_selects_the_newest_row_wherever_the_sort_puts_it(window, send_and_wait):
    assert window.follow_action.isChecked()  # on by default
    for version in ("4.9.0", "4.58.0"):
        send_and_wait(window, beacon_url(window, {**REFINE4, "version": version}))
    window.select_record(1)
    send_and_wait(window, beacon_url(window, {**REFINE4, "version": "4.10.2"}))
    assert window.selected_ids() == [3] and window.detail.beacon.id == 3
    window.table.sortByColumn(Column.VERSION, Qt.SortOrder.AscendingOrder)
    send_and_wait(window, beacon_url(window, {**REFINE4, "version": "4.20.0"}))  # sorted into row 2 of 4
    assert window.table.currentIndex().row() == 2 and window.selected_ids() == [4]
    assert window.detail.beacon.id == 4

    window.table.selectAll()  # a choice of several rows (compare, delete) is kept
    send_and_wait(window, beacon_url(window, REFINE5))
    assert window.selected_ids() == [1, 2, 3, 4]
    window.follow_action.setChecked(False)
    window.select_record(2)
    send_and_wait(window, beacon_url(window, REFINE5))
    assert window.selected_ids() == [2] and window.detail.beacon.id == 2
    window.follow_action.setChecked(True)  # turning it on goes to the newest at once
    assert window.selected_ids() == [6] and window.detail.beacon.id == 6


def test_invalid_request_shows_its_problems(window, send_and_wait):
    # What a form decoder makes of a '+': a space (percent-encoded on the wire).
    status = send_and_wait(window, beacon_url(window, "eyJh%20bGc"))
    assert status == 400
    row = cells(window, 0)
    assert row["Status"] == "invalid"
    status_index = window.model.index(0, Column.STATUS)
    assert "illegal character ' '" in status_index.data(Qt.ItemDataRole.ToolTipRole)
    window.select_record(window.model.record_id(0))
    assert window.detail.title.text().endswith("invalid")
    problems = window.store.get(window.model.record_id(0)).problems
    assert len(problems) == 1 and problems[0].startswith("base64: illegal character ' ' at offset 4")
    assert window.detail.issue_texts() == problems
    assert window.detail.issues_title.text() == "1 problem · 0 notes (documented vs sent)"
    assert window.detail.raw_payload.text() == "eyJh%20bGc"
    assert not window.detail.copy_json_button.isEnabled()  # nothing decoded to copy


def test_html_in_a_payload_is_shown_literally(window, send_and_wait):
    html_ua = "<i>agent</i>"
    send_and_wait(window, beacon_url(window, {**REFINE4, "projectId": "<b>x</b>"}),
                  headers={"User-Agent": html_ua, "Referer": "http://<h1>host</h1>/"})
    assert cells(window, 0)["projectId"] == "<b>x</b>"
    window.select_record(window.model.record_id(0))
    rows = {r[1]: r for r in window.detail.collected_rows()}
    assert rows["projectId  (not in docs)"][2] == "<b>x</b>"
    assert '"projectId": "<b>x</b>"' in window.detail.json_view.toPlainText()
    assert f"User-Agent: {html_ua}" in window.detail.raw_view.toPlainText()
    # No label anywhere in the window may interpret markup.
    labels = window.findChildren(QLabel)
    assert labels
    for label in labels:
        assert label.textFormat() == Qt.TextFormat.PlainText, label.objectName() or label.text()


def test_restart_with_the_same_database_shows_earlier_rows(make_window, db_path, send_and_wait):
    first = make_window(db_path)
    send_and_wait(first, beacon_url(first, REFINE4))
    send_and_wait(first, beacon_url(first, REFINE5))
    earlier_session = first.store.session
    first.close()
    first.server.stop()
    first.store.close()

    second = make_window(db_path)
    assert second.model.total == 2
    assert [cells(second, r)["refine"] for r in range(2)] == ["4.58.0", "5.0.12"]
    assert second.store.session != earlier_session
    combo = second.session_combo
    labels = [combo.itemText(i) for i in range(combo.count())]
    assert any(text.startswith(f"Session {earlier_session} ·") and text.endswith("2 records") for text in labels)
    combo.setCurrentIndex(combo.findData(-1))  # "Current session": nothing yet
    assert second.model.rowCount() == 0
    combo.setCurrentIndex(combo.findData(earlier_session))
    assert second.model.rowCount() == 2


def test_a_burst_from_a_thread_arrives_completely_in_batches(window, qtbot):
    total = 2000
    raw = RawRequest("GET", "/telemetry", f"payload={btoa_json(REFINE4)}", {"User-Agent": CHROME_UA}, peer="127.0.0.1")
    inserts: list[int] = []
    window.model.rowsInserted.connect(lambda _parent, first, last: inserts.append(last - first + 1))

    def writer() -> None:
        for _ in range(total):
            window.store.append(capture(raw))

    thread = threading.Thread(target=writer)
    thread.start()
    qtbot.waitUntil(lambda: window.model.total == total, timeout=30000)
    thread.join()
    assert window.model.rowCount() == total
    assert sum(inserts) == total
    assert len(inserts) < total / 10  # batched: far fewer inserts than records
    ids = [window.model.record_id(r) for r in range(total)]
    assert ids == sorted(set(ids))  # no doubles, in order


def test_clear_asks_first_and_delete_removes_the_selection(window, send_and_wait, monkeypatch, qtbot):
    for _ in range(3):
        send_and_wait(window, beacon_url(window, REFINE4))
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.No)
    assert window.clear_all() == 0
    assert window.store.count() == 3

    activate(qtbot, window)
    window.select_record(window.model.record_id(0))
    window.table.setFocus()
    qtbot.keyClick(window.table, Qt.Key.Key_Delete)
    qtbot.waitUntil(lambda: window.model.total == 2, timeout=5000)
    assert window.store.count() == 2

    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    assert window.clear_all() == 2
    qtbot.waitUntil(lambda: window.model.total == 0, timeout=5000)
    assert window.table_stack.currentWidget() is window.empty
    assert window.detail.beacon is None


def test_new_session_groups_the_next_records(window, send_and_wait, qtbot):
    send_and_wait(window, beacon_url(window, REFINE4))
    old = window.store.session
    window.new_session()
    qtbot.waitUntil(lambda: window.store.session != old and window.session_combo.findData(window.store.session) >= 0,
                    timeout=5000)
    window.session_combo.setCurrentIndex(window.session_combo.findData(-1))
    assert window.model.rowCount() == 0
    send_and_wait(window, beacon_url(window, REFINE5))
    assert window.model.rowCount() == 1
    assert cells(window, 0)["Session"] == str(window.store.session)


def test_keyboard_filter_escape_and_copy(window, send_and_wait, qtbot):
    send_and_wait(window, beacon_url(window, REFINE4))
    activate(qtbot, window)
    qtbot.keyClick(window.table, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    assert window.filter_edit.hasFocus()
    qtbot.keyClicks(window.filter_edit, "zzz")
    assert window.model.rowCount() == 0
    qtbot.keyClick(window.filter_edit, Qt.Key.Key_Escape)
    assert window.filter_edit.text() == "" and window.model.rowCount() == 1

    window.select_record(window.model.record_id(0))
    window.table.setFocus()
    qtbot.keyClick(window.table, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    assert json.loads(QGuiApplication.clipboard().text()) == REFINE4
    qtbot.keyClick(window.table, Qt.Key.Key_U,
                   Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert QGuiApplication.clipboard().text() == beacon_url(window, REFINE4)
    QGuiApplication.clipboard().setText("")
    window.filter_edit.setFocus()
    qtbot.keyClick(window.filter_edit, Qt.Key.Key_Delete)  # Delete in the filter box deletes no record
    assert window.store.count() == 1


def test_copy_buttons(window, send_and_wait):
    send_and_wait(window, beacon_url(window, REFINE4))
    window.select_record(window.model.record_id(0))
    window.detail.copy_url_button.click()
    assert QGuiApplication.clipboard().text() == beacon_url(window, REFINE4)
    window.detail.copy_curl_button.click()
    curl = QGuiApplication.clipboard().text()
    # The GIF answer goes to /dev/null, the status to the terminal.
    assert curl.startswith("curl -sS -o /dev/null -w '%{http_code}\\n' -H ")
    assert curl.endswith(f"'{beacon_url(window, REFINE4)}'")
    if shutil.which("curl"):  # run as a user would paste it: the terminal gets the status, not the GIF
        run = subprocess.run(["sh", "-c", curl], capture_output=True, timeout=30)
        assert (run.returncode, run.stdout, run.stderr) == (0, b"200\n", b"")
    window.detail.copy_record_button.click()
    assert json.loads(QGuiApplication.clipboard().text())["payload"] == REFINE4


def test_status_bar_routing_help_and_empty_state(window):
    listening = window.server.listening
    assert window.server_label.text() == f"● {listening.http_url}  {listening.https_url}"
    assert window.pin_button.text() == "Copy pin"  # nothing cut off
    assert window.pin_button.toolTip() == f"Copy the HTTPS certificate's SPKI pin:\n{listening.spki_pin}"
    window.pin_button.click()
    assert QGuiApplication.clipboard().text() == listening.spki_pin
    assert window.empty.curl.text().startswith("curl -sS -o /dev/null -w '%{http_code}\\n' "
                                               "-H 'Referer: http://localhost:5173/' "
                                               f"'{listening.http_url}/telemetry?payload=")
    window.show_routing_help()
    texts = window.routing_dialog.texts
    assert texts["flags"] == (f"--host-resolver-rules=MAP telemetry.refine.dev 127.0.0.1:{listening.https_port} "
                              f"--ignore-certificate-errors-spki-list={listening.spki_pin}")
    assert f"--ignore-certificate-errors-spki-list={listening.spki_pin}" in texts["command"]
    assert texts["hosts"] == "127.0.0.1 telemetry.refine.dev"
    window.routing_dialog.close()


def test_port_in_use_is_reported_not_raised(make_window, db_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        window = make_window(db_path, port=port)
        assert window.server.listening is None
        # The dialog speaks of the window's menu, not of command-line flags.
        assert window.last_error == (f"The server could not start: HTTP port {port} on 127.0.0.1 is already in use."
                                     "\n\nChoose other ports in Server ▸ Change ports…")
        assert window.server_label.text() == "○ stopped"
        assert window.start_button.text() == "Start"
        assert window.empty.curl.text() == ""


def test_change_ports_and_stop_start(window, send_and_wait):
    old_port = window.server.listening.port
    assert window.restart_on(0, None)
    assert window.server.listening.https_port is None
    assert window.server.listening.port != old_port or old_port == 0
    send_and_wait(window, beacon_url(window, REFINE4))  # the new port records
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        busy_port = busy.getsockname()[1]
        assert not window.restart_on(busy_port, None)
        assert window.last_error == f"Cannot use those ports: HTTP port {busy_port} on 127.0.0.1 is already in use."
        assert window.server.listening is not None  # back on the previous port
    window.toggle_server()
    assert window.server.listening is None and window.start_button.text() == "Start"
    window.toggle_server()
    assert window.server.listening is not None and window.start_button.text() == "Stop"


def test_layout_is_remembered(make_window, db_path, settings):
    first = make_window(db_path, start=False)
    first.splitter.setSizes([200, 500])
    first.table.setColumnWidth(Column.PROVIDERS, 260)
    first.follow_action.setChecked(False)
    first.close()  # saves
    second = make_window(db_path, start=False)
    assert second.table.columnWidth(Column.PROVIDERS) == 260
    assert not second.follow_action.isChecked()
    assert settings.contains("window/geometry") and settings.contains("splitter/main")


def test_dark_and_light_themes_recolour_status(window, send_and_wait):
    from inspector.widgets import theme

    send_and_wait(window, beacon_url(window, REFINE4))
    window.set_theme("dark")
    try:
        assert theme.is_dark()
        assert window.model.index(0, Column.STATUS).data(Qt.ItemDataRole.ForegroundRole) == theme.scheme().ok
        assert theme.scheme().ok.name() == "#3fb950"
    finally:
        window.set_theme("light")
    assert not theme.is_dark()
    assert window.model.index(0, Column.STATUS).data(Qt.ItemDataRole.ForegroundRole).name() == "#1a7f37"


def test_store_errors_are_messages_not_crashes(window, monkeypatch):
    from mockserver.storage.store import StoreError

    def broken(*_a, **_k):
        raise StoreError("cannot write the database x: disk I/O error")

    monkeypatch.setattr(window.store, "new_session", broken)
    monkeypatch.setattr(window.store, "clear", broken)
    window.new_session()
    assert window.last_error.endswith("disk I/O error")
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    assert window.clear_all() == 0


def test_application_identity_and_icon_ship_inside_the_package(window):
    from PySide6.QtWidgets import QApplication

    from inspector.widgets.icons import ICON_PNG, ICON_SVG, resource_path

    assert ICON_SVG.is_file() and ICON_PNG.is_file()
    assert resource_path("telemetry-inspector.desktop").is_file()
    assert not window.windowIcon().isNull()
    assert window.windowTitle() == "refine Telemetry Inspector"
    app = QApplication.instance()
    assert app.applicationDisplayName() == "refine Telemetry Inspector"
    assert app.applicationName() == "telemetry-inspector"
    assert QApplication.desktopFileName() == "telemetry-inspector"


def test_send_helper_reaches_the_real_socket(window):
    assert send(f"{window.server.listening.http_url}/__inspector/health") == 200


def test_signals_do_not_eat_references_to_true(window, send_and_wait):
    """PySide6 6.12's Signal.emit() drops a reference to True; the PySide6 pin keeps that release out.

    Without the repair a long session aborts with "bool_dealloc: deallocating True".
    """
    import gc
    import sys

    send_and_wait(window, beacon_url(window, REFINE4))
    # Earlier tests' windows hold decoded payloads (full of True); if the cyclic collector
    # freed them in the middle of the loop, the count would fall for a reason that is no leak.
    gc.collect()
    gc.disable()
    try:
        before = sys.getrefcount(True)
        for n in range(40):
            send_and_wait(window, beacon_url(window, REFINE4))
            window.filter_edit.setText("chrome" if n % 2 else "")
            window.select_record(window.model.record_id(0))
            window.detail.copy_url_button.click()
        window.filter_edit.clear()
        after = sys.getrefcount(True)
    finally:
        gc.enable()
    assert after >= before - 20  # on PySide6 6.12.0 this falls by hundreds


def test_long_ids_and_other_days_widen_their_columns(make_window, db_path):
    import sqlite3
    from datetime import datetime

    from inspector.widgets.models import Column
    from mockserver.core.capture import RawRequest, capture
    from mockserver.core.payloads import btoa_json
    from mockserver.storage.store import BeaconStore
    from tests.support.helpers import REFINE_4_PAYLOAD

    seed = BeaconStore(db_path)
    seed.append(capture(RawRequest("GET", "/telemetry", f"payload={btoa_json(REFINE_4_PAYLOAD)}", {}),
                        received_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)))
    seed.close()
    with sqlite3.connect(db_path) as conn:  # as if 1,234,566 records had come and gone
        conn.execute("UPDATE beacons SET id = 1234567")
    window = make_window(db_path, start=False)
    table, metrics = window.table, window.table.fontMetrics()
    shown = {c: window.model.index(0, c).data() for c in (Column.ID, Column.TIME)}
    assert shown[Column.ID] == "1234567" and shown[Column.TIME].startswith("2026-01-0")  # a date: another day
    for column, text in shown.items():
        assert table.columnWidth(column) > metrics.horizontalAdvance(text), (column, text)


def test_the_status_bar_names_the_proxy_only_when_it_listens(make_window, tmp_path):
    plain = make_window(tmp_path / "plain.sqlite3")
    listening = plain.server.listening
    assert plain.server_panel.label.text() == f"● {listening.http_url}  {listening.https_url}"
    proxied = make_window(tmp_path / "proxied.sqlite3", proxy_port=0)
    listening = proxied.server.listening
    assert listening.proxy_port
    assert proxied.server_panel.label.text() == (
        f"● {listening.http_url}  {listening.https_url}  proxy http://127.0.0.1:{listening.proxy_port}")
    tip = proxied.server_panel.label.toolTip()
    assert f"http://127.0.0.1:{listening.proxy_port}" in tip and "HTTP(S) proxy" in tip  # whole, when the label is cut
