"""Export (dialog and scopes), HAR import (File menu and drag-and-drop), bad files, PNG pictures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QImage
from PySide6.QtWidgets import QApplication, QFileDialog

from mockserver.core.payloads import btoa_json
from mockserver.formats import har
from mockserver.formats.export import export_records
from tests.gui.conftest import REFINE4, REFINE5, beacon_url
from tests.support.helpers import CHROME_UA


def wait_job(qtbot, job, *, ok: bool = True):
    """Wait for a window job to finish (no sleeping) and check how it ended."""
    assert job is not None
    if not job.done:
        with qtbot.waitSignal(job.finished, timeout=10000):
            pass
    assert (job.error is None) is ok, job.error
    return job


@pytest.fixture
def three(window, send_and_wait):
    send_and_wait(window, beacon_url(window, REFINE4))
    send_and_wait(window, beacon_url(window, REFINE5))
    send_and_wait(window, beacon_url(window, "eyJh%20bGc"))  # invalid
    return window


@pytest.mark.parametrize("fmt", ["json", "ndjson", "csv", "har"])
def test_export_all_writes_exactly_what_the_exporter_writes(three, qtbot, tmp_path, fmt):
    out = tmp_path / f"all.{fmt}"
    wait_job(qtbot, three.export_to(str(out), fmt, "all"))
    expected = tmp_path / f"expected.{fmt}"
    export_records(three.store.query(), fmt, expected)
    assert out.read_bytes() == expected.read_bytes()
    assert "Exported 3 records as" in three.statusBar().full_message


def test_export_dialog_selected_and_filtered_and_redacted(three, qtbot, tmp_path):
    window = three
    window.select_record(1)
    window.table.selectionModel().select(
        window.model.index(window.model.row_of(3), 0),
        window.table.selectionModel().SelectionFlag.Select | window.table.selectionModel().SelectionFlag.Rows)
    dialog = window.show_export_dialog()
    assert dialog.counts == {"all": 3, "shown": 3, "selected": 2}
    assert dialog.scope == "selected"  # two selected: that is what the user means
    dialog.format.setCurrentIndex(dialog.format.findData("ndjson"))
    out = tmp_path / "picked.ndjson"
    dialog.path.setText(str(out))
    dialog.export_button.click()
    wait_job(qtbot, window.last_job)
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == [1, 3]

    window.filter_edit.setText("5.0.12")
    dialog = window.show_export_dialog()
    dialog.scopes["shown"].setChecked(True)
    dialog.format.setCurrentIndex(dialog.format.findData("json"))
    dialog.path.setText(str(tmp_path / "shown.json"))
    dialog.redact.setChecked(True)
    dialog.export_button.click()
    wait_job(qtbot, window.last_job)
    records = json.loads((tmp_path / "shown.json").read_text())
    assert [r["id"] for r in records] == [2]
    assert records[0]["payload"]["projectId"] == "project-1" and records[0]["client"]["ip"] == "ip-1"
    assert "3f9c2a7e-demo" not in (tmp_path / "shown.json").read_text()

    window.filter_edit.clear()
    window.status_combo.setCurrentIndex(window.status_combo.findData("invalid"))  # a column filter
    wait_job(qtbot, window.export_to(str(tmp_path / "invalid.csv"), "csv", "shown"))
    rows = (tmp_path / "invalid.csv").read_text().splitlines()
    assert len(rows) == 2 and rows[1].startswith("3,")


def test_export_into_a_missing_folder_is_one_clear_line(three, qtbot, tmp_path):
    dialog = three.show_export_dialog()
    dialog.path.setText(str(tmp_path / "nope" / "x.json"))
    dialog.export_button.click()
    assert dialog.isVisible() and dialog.message.text() == f"No folder {tmp_path / 'nope'}."
    dialog.reject()
    job = wait_job(qtbot, three.export_to(str(tmp_path / "nope" / "x.json"), "json"), ok=False)
    assert "\n" not in three.last_error and three.last_error.startswith("Cannot export: cannot write")
    assert job.error.endswith(f"no folder {tmp_path / 'nope'}")


def devtools_har(tmp_path: Path) -> tuple[Path, list[dict]]:
    """A HAR as Chrome's DevTools saves it: two refine requests among other traffic."""
    cafe = {**REFINE4, "projectId": "ab+c/d?"}  # '+' and '/' in the base64, raw in the URL
    payloads = [REFINE5, cafe]
    entries = [{
        "startedDateTime": "2026-11-26T08:00:00.000Z", "time": 1,
        "request": {"method": "GET", "url": "http://localhost:5173/", "httpVersion": "HTTP/1.1",
                    "headers": [], "queryString": [], "cookies": [], "headersSize": -1, "bodySize": 0},
        "response": {}, "cache": {}, "timings": {},
    }]
    for n, payload in enumerate(payloads):
        entries.append({
            "startedDateTime": f"2026-11-26T08:00:0{n + 1}.250Z", "time": 12,
            "request": {"method": "GET", "url": f"https://telemetry.refine.dev/telemetry?payload={btoa_json(payload)}",
                        "httpVersion": "h2", "headers": [{"name": "user-agent", "value": CHROME_UA},
                                                         {"name": "referer", "value": "http://localhost:5173/"}],
                        "queryString": [{"name": "payload", "value": btoa_json(payload).replace("+", " ")}],
                        "cookies": [], "headersSize": -1, "bodySize": 0},
            "response": {}, "cache": {}, "timings": {},
        })
    path = tmp_path / "devtools.har"
    path.write_text(json.dumps({"log": {"version": "1.2", "creator": {"name": "WebInspector", "version": "537.36"},
                                        "entries": entries}}))
    return path, payloads


def test_import_har_from_the_file_menu_adds_exact_decoded_rows(window, qtbot, tmp_path, monkeypatch):
    path, payloads = devtools_har(tmp_path)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(path), "HAR files (*.har)"))
    window.import_action.trigger()
    wait_job(qtbot, window.last_job)
    qtbot.waitUntil(lambda: window.model.total == 2, timeout=5000)
    records = window.store.query()
    assert [r.payload for r in records] == payloads
    assert [r.received_at for r in records] == ["2026-11-26T08:00:01.250Z", "2026-11-26T08:00:02.250Z"]
    assert all(r.status == "ok" and r.request.headers["User-Agent"] == CHROME_UA for r in records)
    assert window.model.index(window.model.row_of(2), 0).data() == "2"
    message = window.statusBar().full_message
    assert message.startswith("imported 2 into session") and "skipped 1" in message
    assert window.detail.beacon.id == records[0].id  # the first imported record is shown
    assert records[0].session != window.store.session  # its own session; live requests keep theirs
    combo = window.session_combo
    assert any(combo.itemText(i).endswith("import: devtools.har") for i in range(combo.count()))


def test_dropping_a_har_file_on_the_window_imports_it(window, qtbot, tmp_path):
    path, payloads = devtools_har(tmp_path)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    # QDragEnterEvent takes a QPoint (Qt's C++ signature); PySide6 < 6.12 accepts nothing else
    enter = QDragEnterEvent(QPoint(400, 300), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, enter)
    assert enter.isAccepted()
    drop = QDropEvent(QPointF(400, 300), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, drop)
    assert drop.isAccepted()
    wait_job(qtbot, window.last_job)
    qtbot.waitUntil(lambda: window.model.total == 2, timeout=5000)
    assert [r.payload for r in window.store.query()] == payloads

    text_only = QMimeData()
    text_only.setText("not a file")
    enter = QDragEnterEvent(QPoint(10, 10), Qt.DropAction.CopyAction, text_only, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, enter)
    assert not enter.isAccepted()


@pytest.mark.parametrize("content, reason", [
    (b"<html>not json</html>", "is not a HAR file: not JSON (Expecting value at line 1 column 1)"),
    (b'{"log": {"version": "1.2"}}', "is not a HAR file: JSON without log.entries"),
    (b"\xff\xfe\x00binary", "is not a HAR file: not UTF-8 text (byte 0)"),
])
def test_a_file_that_is_not_har_is_one_clear_line_and_adds_nothing(window, qtbot, tmp_path, content, reason):
    bad = tmp_path / "notes.txt"
    bad.write_bytes(content)
    sessions = len(window.store.sessions())
    job = wait_job(qtbot, window.import_har(str(bad)), ok=False)
    assert window.last_error.startswith(f"Cannot import: {bad} {reason}")
    assert "\n" not in window.last_error and job.error in window.last_error
    assert window.store.count() == 0 and len(window.store.sessions()) == sessions


def test_save_window_and_lower_pane_as_png(window, send_and_wait, qtbot, tmp_path):
    send_and_wait(window, beacon_url(window, REFINE4))
    window.resize(1100, 700)
    wait_job(qtbot, window.save_png("window", str(tmp_path / "window.png")))
    image = QImage(str(tmp_path / "window.png"))
    assert (image.width(), image.height()) == (window.width(), window.height())
    wait_job(qtbot, window.save_png("card", str(tmp_path / "card")))  # .png is added
    card = QImage(str(tmp_path / "card.png"))
    assert (card.width(), card.height()) == (window.detail.width(), window.detail.height())
    wait_job(qtbot, window.save_png("window", str(tmp_path / "missing" / "w.png")), ok=False)
    assert window.last_error == f"Cannot save the picture: no folder {tmp_path / 'missing'}"


def test_a_large_import_reports_progress_in_a_dialog(window, qtbot, tmp_path):
    entries = [{"startedDateTime": "2026-11-26T08:00:00.000Z",
                "request": {"method": "GET", "url": f"https://telemetry.refine.dev/telemetry?payload="
                                                    f"{btoa_json({**REFINE4, 'resourceCount': n})}",
                            "headers": [{"name": "user-agent", "value": CHROME_UA}]}} for n in range(1500)]
    path = tmp_path / "big.har"
    path.write_text(json.dumps({"log": {"entries": entries}}))
    job = window.import_har(str(path))
    seen: list[tuple[int, int]] = []
    job.progressed.connect(lambda done, total: seen.append((done, total)))
    dialog = job.progress_dialog
    assert dialog.labelText() == "Importing big.har…" and dialog.windowModality() == Qt.WindowModality.WindowModal
    wait_job(qtbot, job)
    # First the file is checked (entries read so far, no total: a busy dialog; coalesced wake-ups may show
    # none of it), then imported with its total
    checked = [total for _, total in seen].index(1500)
    assert all(total == 0 for _, total in seen[:checked])
    assert seen[-1] == (1500, 1500) and all(total == 1500 for _, total in seen[checked:])
    assert len(seen) < 1500  # coalesced: not one GUI wake-up per entry
    assert job.result.imported == 1500
    qtbot.waitUntil(lambda: window.model.total == 1500, timeout=10000)


def test_an_import_of_nothing_adds_no_session_and_an_entry_over_the_limit_is_one_line(window, qtbot, tmp_path,
                                                                                       monkeypatch):
    sessions = [s.id for s in window.store.sessions()]
    others = tmp_path / "others.har"
    others.write_text(json.dumps({"log": {"entries": [
        {"startedDateTime": "2026-11-26T08:00:00.000Z", "_inspector": {},
         "request": {"method": "GET", "url": "https://evil.example/steal", "headers": []}}]}}))
    job = wait_job(qtbot, window.import_har(str(others)))
    assert (job.result.imported, job.result.skipped, job.result.session) == (0, 1, None)
    assert [s.id for s in window.store.sessions()] == sessions and window.store.count() == 0

    monkeypatch.setattr(har, "MAX_ENTRY_CHARS", 2048)
    big = tmp_path / "big.har"
    big.write_text(json.dumps({"log": {"entries": [{"comment": "x" * 5000}]}}))
    wait_job(qtbot, window.import_har(str(big)), ok=False)
    size = f"{big.stat().st_size / 1024:.1f}".removesuffix(".0")
    assert window.last_error == (f"Cannot import: {big}: entry 0 is over 2 KiB of JSON, the most one entry may "
                                 f"take (the file is {size} KiB); nothing was imported")
    assert [s.id for s in window.store.sessions()] == sessions and window.store.count() == 0


def test_the_window_counts_entries_the_live_server_would_refuse(window, qtbot, tmp_path):
    url = f"https://telemetry.refine.dev/telemetry?payload={btoa_json(REFINE5)}"
    crowded = [{"name": f"x-h{n}", "value": "1"} for n in range(100)]  # with Host: 101 header lines
    entries = [{"startedDateTime": "2026-11-26T08:00:00.000Z", "request": {"method": "GET", "url": u, "headers": h}}
               for u, h in ((url, []), (url, crowded), (url + "A" * 65_535, []))]
    path = tmp_path / "limits.har"
    path.write_text(json.dumps({"log": {"entries": entries}}))
    job = wait_job(qtbot, window.import_har(str(path)))
    assert (job.result.imported, job.result.refused, job.result.refused_by) == (1, 2, {"headers": 1, "target": 1,
                                                                                      "head": 0})
    assert window.statusBar().full_message == (
        f"imported 1 into session {job.result.session}, skipped 0 (not telemetry.refine.dev), refused 2 as the live "
        f"server would (1 with more than 100 headers, 1 with a request target over 65,534 bytes) of 3 entries in "
        f"{path} (entry 1: refused: more than 100 headers (the live server answers 431 and records nothing) …)")
