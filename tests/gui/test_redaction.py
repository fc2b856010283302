"""The redaction toggle: every text the window shows or copies uses pseudonyms; the store keeps the truth.

Requests come over real sockets from 127.0.0.9, so the client's IP cannot be
confused with the server's own 127.0.0.1 in the status bar.
"""

from __future__ import annotations

import json

import pytest
from PySide6.QtCore import QItemSelectionModel
from PySide6.QtGui import QGuiApplication

from mockserver.core.payloads import btoa_json
from tests.gui.conftest import REFINE4, send_from, widget_texts

CLIENT_IP = "127.0.0.9"
HOSTNAME = "shop.acme-internal.test"
EMAIL = "alice@acme-internal.test"
PROJECT = "acme-secret-project-42"
SECRETS = (CLIENT_IP, HOSTNAME, EMAIL, PROJECT)


def _leaks(texts: list[str]) -> list[str]:
    return [t for t in texts if any(secret in t for secret in SECRETS)]


@pytest.fixture
def secret_window(window, qtbot):
    http = window.server.listening.http_url
    referer = {"Referer": f"http://{HOSTNAME}:5173/"}
    send_from(f"{http}/telemetry?payload={btoa_json({**REFINE4, 'projectId': PROJECT})}", CLIENT_IP, headers=referer)
    send_from(f"{http}/telemetry?payload={btoa_json({**REFINE4, 'version': '4.57.0', 'projectId': PROJECT})}",
              CLIENT_IP, headers=referer)
    body = json.dumps({"email": EMAIL, "answers": {"ui": "antd"}, "source": "CREATE_REFINE_APP"}).encode()
    send_from(f"{http}/projects", CLIENT_IP, method="POST", body=body,
              headers={"Content-Type": "application/json", "User-Agent": "node-fetch/1.0", "Origin": f"http://{HOSTNAME}"})
    qtbot.waitUntil(lambda: window.model.total == 3, timeout=5000)
    return window


def test_redaction_hides_ip_hostname_email_and_project_id_everywhere(secret_window, qtbot):
    window = secret_window
    assert window.store.get(1).client["ip"] == CLIENT_IP  # the socket really came from there
    window.select_record(1)
    assert _leaks(widget_texts(window))  # before: the real values are on screen

    window.redact_box.click()  # the toolbar toggle
    assert window.redact_action.isChecked() and window.redacted_label.isVisibleTo(window)

    def shown(record_id: int) -> list[str]:
        window.select_record(record_id)
        return widget_texts(window)

    for record_id in (1, 2, 3):
        assert _leaks(shown(record_id)) == [], record_id
        for button in (window.detail.copy_json_button, window.detail.copy_url_button,
                       window.detail.copy_curl_button, window.detail.copy_record_button,
                       window.detail.copy_markdown_button):
            QGuiApplication.clipboard().setText("")
            if button.isEnabled():
                button.click()
                assert _leaks([QGuiApplication.clipboard().text()]) == [], button.text()

    # The compare view and the opt-out verdict show redacted values too.
    window.select_record(1)
    row = window.model.row_of(2)
    flags = QItemSelectionModel.SelectionFlag.Select | QItemSelectionModel.SelectionFlag.Rows
    window.table.selectionModel().select(window.model.index(row, 0), flags)
    window.set_mode("compare")
    assert window.compare.paths() == ["version"]
    assert _leaks(widget_texts(window)) == []
    window.set_mode("optout")
    send_from(f"{window.server.listening.http_url}/telemetry?payload={btoa_json({**REFINE4, 'projectId': PROJECT})}",
              CLIENT_IP, headers={"Referer": f"http://{HOSTNAME}:5173/"})
    qtbot.waitUntil(lambda: window.optout.verdict is not None and window.optout.verdict.count == 1, timeout=5000)
    assert _leaks(widget_texts(window)) == []

    # Pseudonyms, stable within the run; the store is unchanged.
    window.set_mode("details")
    window.select_record(1)
    cells = window.detail.collected_rows()
    values = {r[1]: r[2] for r in cells}
    assert values["IP address"] == "ip-1" and values["Hostname"] == "host-1"
    assert values["projectId  (not in docs)"] == "project-1"
    window.select_record(3)
    assert {r[1]: r[2] for r in window.detail.collected_rows()}["Email address"] == "user-1@example.invalid"
    window.redact_box.click()  # off: the truth again
    window.select_record(1)
    assert {r[1]: r[2] for r in window.detail.collected_rows()}["IP address"] == CLIENT_IP
    window.redact_box.click()  # on again: the same tokens
    window.select_record(1)
    assert {r[1]: r[2] for r in window.detail.collected_rows()}["IP address"] == "ip-1"
    stored = window.store.get(1)
    assert stored.client["ip"] == CLIENT_IP and stored.payload["projectId"] == PROJECT


def test_redaction_filter_searches_pseudonyms_and_is_remembered(secret_window, make_window, db_path, settings):
    window = secret_window
    window.set_redaction(True)
    window.filter_edit.setText("project-1")
    assert window.model.rowCount() == 2
    window.filter_edit.setText(PROJECT)  # the real value is not what is shown
    assert window.model.rowCount() == 0
    window.filter_edit.clear()
    window.close()
    assert settings.value("view/redact") in (True, "true")
    again = make_window(db_path, start=False)
    assert again.redact_action.isChecked() and again.redactor is not None
    assert _leaks(widget_texts(again)) == []
