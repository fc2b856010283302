"""The detail pane shows a lone surrogate and a number out of range as plain, escaped text."""

from __future__ import annotations

import base64
import json

from PySide6.QtGui import QGuiApplication

from inspector.panes.detail import DetailPane
from mockserver.core.capture import RawRequest, capture


def _record(json_text: str):
    payload = base64.b64encode(json_text.encode("ascii")).decode("ascii")
    return capture(RawRequest("GET", "/telemetry", f"payload={payload}", {}, scheme="https", peer="127.0.0.1"))


def test_decoded_json_collected_card_and_copies_show_the_escapes(qtbot):
    pane = DetailPane("http://127.0.0.1:8787")
    qtbot.addWidget(pane)
    pane.show_beacon(_record('{"projectId":"x\\ud800y","version":"4.58.0","resourceCount":1e400}'))
    assert pane.json_view.toPlainText() == (
        '{\n  "projectId": "x\\ud800y",\n  "version": "4.58.0",\n  "resourceCount": "1e400"\n}')
    sections = [pane.collected.topLevelItem(i) for i in range(pane.collected.topLevelItemCount())]
    values = {row.text(0): row.text(1) for section in sections for row in
              (section.child(j) for j in range(section.childCount()))}
    assert (values["projectId  (not in docs)"], values["resourceCount"]) == ("x\\ud800y", "1e400")
    pane.copy_record()
    copied = QGuiApplication.clipboard().text()
    record = json.loads(copied, parse_constant=lambda name: 1 / 0)
    assert record["payload"]["projectId"] == "x\ud800y"
    assert record["problems"] == ["json: number out of range at resourceCount: 1e400, kept as text"]
