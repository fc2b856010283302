"""mockserver.records.collected: the "What was collected" rows, exact values and sources (no Qt)."""

from __future__ import annotations

import json

from mockserver.core.capture import RawRequest, capture
from mockserver.core.payloads import btoa_json
from mockserver.records.collected import (
    APPLICATION,
    CLI,
    CONTACT,
    HEADERS,
    PROJECT,
    CollectedField,
    collected_fields,
    curl_command,
    format_value,
    provider_explanation,
    raw_request_text,
    raw_url,
    refine_major,
)
from tests.gui.conftest import REFINE4, REFINE5
from tests.support.helpers import CHROME_UA


def beacon(payload, headers=None, query=None, method="GET", peer="127.0.0.1"):
    query = query if query is not None else f"payload={btoa_json(payload)}"
    hdrs = {"Host": "telemetry.refine.dev", "User-Agent": CHROME_UA, "Referer": "http://localhost:5173/",
            **(headers or {})}
    return capture(RawRequest(method, "/telemetry", query, hdrs, scheme="https", peer=peer))


def by_name(fields: list[CollectedField]) -> dict[str, CollectedField]:
    return {f.name: f for f in fields}


def test_refine4_beacon_fields_values_and_sources():
    fields = collected_fields(beacon(REFINE4))
    assert [(f.section, f.name, f.value, f.source) for f in fields] == [
        (APPLICATION, "providers.auth", "false", "query payload → providers.auth"),
        (APPLICATION, "providers.auditLog", "false", "query payload → providers.auditLog"),
        (APPLICATION, "providers.live", "false", "query payload → providers.live"),
        (APPLICATION, "providers.router", "true", "query payload → providers.router"),
        (APPLICATION, "providers.data", "true", "query payload → providers.data"),
        (APPLICATION, "providers.i18n", "false", "query payload → providers.i18n"),
        (APPLICATION, "providers.notification", "false", "query payload → providers.notification"),
        (APPLICATION, "providers.accessControl", "false", "query payload → providers.accessControl"),
        (APPLICATION, "version", "4.58.0", "query payload → version"),
        (APPLICATION, "resourceCount", "2", "query payload → resourceCount"),
        (APPLICATION, "projectId", None, "query payload → projectId"),
        (HEADERS, "IP address", "127.0.0.1", "peer address of the connection"),
        (HEADERS, "Hostname", "localhost", "header Referer"),
        (HEADERS, "Browser", "Chrome 156.0.0", "header User-Agent"),
        (HEADERS, "OS", "Linux", "header User-Agent"),
        (CONTACT, "Email address", None, "not in this request"),
    ]
    named = by_name(fields)
    assert named["providers.router"].explanation.startswith("Always true in 4.x")
    assert named["providers.data"].explanation.startswith("Always true")
    assert "top-level entries" in named["resourceCount"].explanation
    assert named["projectId"].documented is False
    assert all(f.documented for f in fields if f.name != "projectId")


def test_refine5_router_is_real_and_project_id_is_undocumented():
    fields = by_name(collected_fields(beacon(REFINE5)))
    assert fields["providers.router"].explanation.startswith("true when the routerProvider prop")
    assert fields["providers.auth"].value == "true"
    assert "legacyAuthProvider" not in fields["providers.auth"].explanation
    assert fields["projectId"].value == "3f9c2a7e-demo"
    assert fields["projectId"].documented is False
    assert "options.projectId" in fields["projectId"].explanation
    assert "3f9c2a7e-demo" in fields["Email address"].explanation  # linked through projectId


def test_origin_header_wins_for_hostname_and_client_hints_are_listed():
    fields = by_name(collected_fields(beacon(REFINE4, headers={
        "Origin": "https://admin.example.test", "Sec-CH-UA-Platform": '"Linux"'})))
    assert (fields["Hostname"].value, fields["Hostname"].source) == ("admin.example.test", "header Origin")
    assert fields["Client hints"].value == "platform=Linux"
    assert fields["Client hints"].source == "headers Sec-CH-UA-Platform"
    assert fields["Client hints"].documented is False


def test_forwarded_ip_source_when_proxy_trusted():
    raw = RawRequest("GET", "/telemetry", f"payload={btoa_json(REFINE4)}",
                     {"User-Agent": CHROME_UA, "X-Forwarded-For": "203.0.113.7, 10.0.0.1"}, peer="127.0.0.1")
    fields = by_name(collected_fields(capture(raw, trust_proxy=True)))
    assert fields["IP address"].value == "203.0.113.7"
    assert fields["IP address"].source == "header X-Forwarded-For (first hop, proxy trusted)"


def test_invalid_payload_has_no_application_values():
    record = beacon(None, query="payload=eyJh%20bGc")
    fields = collected_fields(record)
    assert fields[0] == CollectedField(APPLICATION, "payload", None, "query payload → (nothing)",
                                       "Nothing to show: the payload could not be decoded (see the problems).")
    assert by_name(fields)["Browser"].value == "Chrome 156.0.0"


def test_html_and_latin1_values_are_kept_verbatim():
    fields = by_name(collected_fields(beacon({**REFINE4, "projectId": "<b>x</b>"})))
    assert fields["projectId"].value == "<b>x</b>"
    cafe = by_name(collected_fields(beacon({**REFINE4, "projectId": "café"})))
    assert cafe["projectId"].value == "café"


def test_undocumented_payload_key_gets_its_own_row():
    fields = by_name(collected_fields(beacon({**REFINE4, "userEmail": "a@b.c"})))
    assert fields["userEmail"].value == "a@b.c"
    assert fields["userEmail"].documented is False


def _post(path, body):
    data = json.dumps(body).encode()
    return capture(RawRequest("POST", path, "", {"Host": "telemetry.refine.dev", "User-Agent": "node-fetch/1.0",
                                                  "Content-Type": "application/json"}, data, peer="127.0.0.1"))


def test_projects_email_is_contact_from_body_field():
    record = _post("/projects", {"email": "dev@example.com", "answers": {"ui": "antd"}, "source": "CREATE_REFINE_APP"})
    fields = collected_fields(record)
    named = by_name(fields)
    assert (named["Email address"].section, named["Email address"].value, named["Email address"].source) == (
        CONTACT, "dev@example.com", "body field email")
    assert (named["answers"].section, named["answers"].value) == (PROJECT, '{"ui": "antd"}')
    assert named["source"].value == "CREATE_REFINE_APP"
    assert "email" not in [f.name for f in fields if f.section == PROJECT]


def test_cli_body_fields():
    body = {"nodeEnv": "development", "nodeVersion": "v22.11.0", "os": "Linux", "osVersion": "6.8.0",
            "command": "dev", "packages": [{"name": "@refinedev/core", "version": "4.58.0"}],
            "projectFramework": "vite", "projectId": "p-1"}
    fields = [f for f in collected_fields(_post("/cli", body)) if f.section == CLI]
    assert [(f.name, f.value, f.source) for f in fields] == [
        ("nodeEnv", "development", "body field nodeEnv"),
        ("nodeVersion", "v22.11.0", "body field nodeVersion"),
        ("os", "Linux", "body field os"),
        ("osVersion", "6.8.0", "body field osVersion"),
        ("command", "dev", "body field command"),
        ("packages", '[{"name": "@refinedev/core", "version": "4.58.0"}]', "body field packages"),
        ("projectFramework", "vite", "body field projectFramework"),
        ("projectId", "p-1", "body field projectId"),
    ]
    assert all("REFINE_NO_TELEMETRY=true" in f.explanation for f in fields)


def test_helpers():
    assert format_value(True) == "true"
    assert format_value(None) == "null"
    assert format_value(2) == "2"
    assert format_value("<b>") == "<b>"
    assert refine_major("4.58.0") == 4
    assert refine_major("5.0.12") == 5
    assert refine_major(4) is None
    assert provider_explanation("router", None).startswith("In 4.x always true")


def test_raw_url_raw_text_and_curl_keep_the_payload_as_it_arrived():
    query = "payload=ab+c/d=="
    record = beacon(None, query=query)
    assert raw_url(record) == "https://telemetry.refine.dev/telemetry?payload=ab+c/d=="
    text = raw_request_text(record)
    assert text.splitlines()[0] == "GET /telemetry?payload=ab+c/d== HTTP/1.1"
    assert f"User-Agent: {CHROME_UA}" in text.splitlines()
    curl = curl_command(record, "http://127.0.0.1:8787/")
    assert curl.startswith("curl -sS -o /dev/null -w '%{http_code}\\n' -H ")  # the GIF is not printed
    assert curl.endswith("'http://127.0.0.1:8787/telemetry?payload=ab+c/d=='")
    assert "-H 'Referer: http://localhost:5173/'" in curl
    assert "Host:" not in curl and " -X " not in curl


def test_curl_for_a_post_body():
    record = _post("/cli", {"command": "dev"})
    curl = curl_command(record, "http://127.0.0.1:8787")
    assert curl.startswith("curl -X POST ")
    assert "--data-raw '{\"command\": \"dev\"}'" in curl
