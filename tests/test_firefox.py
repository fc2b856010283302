"""What a routed Firefox is made of, without Firefox: its user.js, certutil and the CA it imports, the CA
a running inspector serves, the proxy log's listener, and the WebDriver BiDi client against a real
WebSocket server on loopback. Firefox itself is driven in tests/e2e/test_firefox_e2e.py.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.request
from collections.abc import Callable, Iterator

import pytest
from websockets.sync.server import ServerConnection

from mockserver.core.firefox_prefs import NO_PROXY_FOR, QUIET_FIREFOX_PREFS, proxy_prefs, user_js
from mockserver.reach.bidi import BidiError, BidiSession
from mockserver.reach.browser_process import BrowserError
from mockserver.reach.firefox import CERTUTIL_MISSING, FirefoxBrowser, find_certutil, firefox_args, import_ca
from mockserver.reach.remote import RemoteError, RemoteInspector
from mockserver.serving.egress import Egress, EgressLog
from mockserver.serving.proxy import ScopedProxy
from tests.support.websocket_server import websocket_servers

CERTUTIL_LINE = ("Firefox needs certutil (the NSS tools) to trust the inspector's certificate in its profile: on "
                 "Debian/Ubuntu apt install libnss3-tools, on macOS brew install nss, on Windows the NSS tools' "
                 "certutil.exe on PATH (not Windows' own certutil.exe, a different program)")


# -- the profile ----------------------------------------------------------------------

def test_user_js_routes_everything_but_loopback_through_the_proxy():
    assert user_js(proxy_prefs(40123)) == (
        'user_pref("network.proxy.type", 1);\n'
        'user_pref("network.proxy.http", "127.0.0.1");\n'
        'user_pref("network.proxy.http_port", 40123);\n'
        'user_pref("network.proxy.ssl", "127.0.0.1");\n'
        'user_pref("network.proxy.ssl_port", 40123);\n'
        'user_pref("network.proxy.share_proxy_settings", false);\n'
        'user_pref("network.proxy.no_proxies_on", "localhost, 127.0.0.1, [::1], .localhost");\n'
        'user_pref("network.proxy.allow_hijacking_localhost", false);\n')
    assert NO_PROXY_FOR == "localhost, 127.0.0.1, [::1], .localhost"
    assert user_js({"a.b": 'say "hi"\n'}) == 'user_pref("a.b", "say \\"hi\\"\\n");\n'  # escaped, one line


@pytest.mark.parametrize(("pref", "value"), [
    ("browser.startup.homepage_override.mstone", "ignore"),  # first run and welcome pages
    ("toolkit.telemetry.enabled", False),  # Firefox's own telemetry
    ("datareporting.healthreport.uploadEnabled", False),
    ("app.update.auto", False),  # updates
    ("network.captive-portal-service.enabled", False),  # captive portal and connectivity
    ("network.connectivity-service.enabled", False),
    ("browser.safebrowsing.malware.enabled", False),  # safe browsing
    ("services.settings.server", "data:,#remote-settings-dummy/v1"),  # remote settings, studies
    ("app.normandy.enabled", False),
    ("extensions.pocket.enabled", False),  # pocket and the new-tab feeds
    ("dom.push.enabled", False),  # push
    ("browser.shell.checkDefaultBrowser", False),  # the default-browser question
    ("network.http.http3.enable", False),  # nothing goes around the proxy over UDP
    ("network.trr.mode", 5),
])
def test_the_quiet_prefs_switch_off_firefoxs_background_traffic(pref, value):
    assert QUIET_FIREFOX_PREFS[pref] == value
    assert not set(QUIET_FIREFOX_PREFS) & set(proxy_prefs(1))  # the route is never overridden by them


def test_firefox_arguments(tmp_path):
    assert firefox_args(tmp_path, "http://localhost:5173/", headless=True, remote_debugging=True) == [
        "--profile", str(tmp_path), "--no-remote", "--headless", "--remote-debugging-port", "0",
        "http://localhost:5173/"]
    assert firefox_args(tmp_path) == ["--profile", str(tmp_path), "--no-remote", "about:blank"]


# -- certutil and the CA ----------------------------------------------------------------

def test_missing_certutil_is_one_line_naming_what_to_install(tmp_path):
    with pytest.raises(BrowserError) as caught:
        find_certutil({"PATH": str(tmp_path)})
    assert str(caught.value) == CERTUTIL_MISSING == CERTUTIL_LINE


def test_windows_own_certutil_is_not_nss(tmp_path, monkeypatch):
    windows = tmp_path / "Windows"
    (windows / "System32").mkdir(parents=True)
    nss = tmp_path / "nss" / "bin"
    nss.mkdir(parents=True)
    for folder in (windows / "System32", nss):
        (folder / "certutil").write_text("#!/bin/sh\n")
        (folder / "certutil").chmod(0o755)
    env = {"PATH": str(windows / "System32"), "SYSTEMROOT": str(windows)}
    with pytest.raises(BrowserError, match="^Firefox needs certutil"):
        find_certutil(env, "win32")
    assert find_certutil({**env, "PATH": f"{windows / 'System32'}:{nss}"}, "linux") == str(
        windows / "System32" / "certutil")  # elsewhere the name is NSS's alone
    assert find_certutil({**env, "PATH": str(nss)}, "win32") == str(nss / "certutil")


@pytest.fixture(scope="module")
def certutil() -> str:
    found = shutil.which("certutil")
    if found is None:
        pytest.skip("needs certutil (scripts/install-test-deps installs libnss3-tools)")
    return found


def test_the_ca_is_imported_into_the_profile_only(certutil, live_server, tmp_path):
    profile = tmp_path / "work" / "profile"
    profile.mkdir(parents=True)
    import_ca(profile, live_server.certificate.ca_cert.read_bytes(), certutil)
    listed = subprocess.run([certutil, "-L", "-d", f"sql:{profile}"], capture_output=True, text=True, check=True)
    [row] = [line for line in listed.stdout.splitlines() if line.startswith("telemetry-inspector")]
    assert row.split() == ["telemetry-inspector", "C,,"]  # trusted to identify websites, nothing else
    assert (profile / "cert9.db").is_file()


def test_a_broken_ca_is_certutils_one_line_error(certutil, tmp_path):
    profile = tmp_path / "profile"
    profile.mkdir()
    with pytest.raises(BrowserError) as caught:
        import_ca(profile, b"-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n", certutil)
    assert str(caught.value).startswith("certutil -A failed (status 255): ")
    assert "\n" not in str(caught.value)


def test_the_inspector_serves_its_ca_and_a_remote_client_reads_it(live_server):
    listening = live_server.listening
    ca = live_server.certificate.ca_cert.read_bytes()
    with urllib.request.urlopen(f"{listening.http_url}/__inspector/ca.pem", timeout=5) as answer:
        assert (answer.status, answer.headers["Content-Type"], answer.read()) == (200, "application/x-pem-file", ca)
    assert live_server.store.count() == 0  # never a record
    remote = RemoteInspector.connect(listening.http_url)
    assert (remote.ca_pem(), remote.http_port, remote.https_port) == (ca, listening.port, listening.https_port)
    assert RemoteInspector.connect(listening.https_url).http_port == listening.port  # from the health answer
    live_server.app.extensions["certificate"] = None  # as an inspector without HTTPS answers
    with pytest.raises(RemoteError) as caught:
        remote.ca_pem()
    assert str(caught.value) == (
        f"the inspector at {remote.base_url} serves no CA certificate ({listening.http_url}/__inspector/ca.pem "
        "answered HTTP 404: HTTPS is off: this inspector has no certificate); a routed Firefox needs it: update "
        "the inspector, or turn its HTTPS on")


# -- the private proxy's log ---------------------------------------------------------------

def test_the_egress_log_tells_a_listener_each_connection_as_it_closes():
    log = EgressLog()
    heard: list[Egress] = []
    log.listen(heard.append)
    entry = log.open("raw.githubusercontent.com", 443, "CONNECT", "127.0.0.1:5000")
    assert heard == []
    log.update(entry, outcome="failed: Name or service not known")
    log.close(entry)
    assert [(e.host, e.outcome) for e in heard] == [("raw.githubusercontent.com", "failed: Name or service not known")]
    heard[0].outcome = "changed"  # a copy: the log's own entry stays
    assert log.entries()[0].outcome == "failed: Name or service not known"
    log.listen(None)
    log.close(log.open("example.com", 80, "GET", "127.0.0.1:5001", "http://example.com/"))
    assert len(heard) == 1


# -- the BiDi client -------------------------------------------------------------------

@pytest.fixture
def bidi() -> Iterator[Callable[[Callable[[ServerConnection], None]], str]]:
    """A loopback WebSocket server running a handler; returns its ws:// URL."""
    with websocket_servers("/session") as start:
        yield start


def firefox_like(seen: list[dict], answers: dict[str, dict]) -> Callable[[ServerConnection], None]:
    """Answers each command with ``answers[method]`` (a result, or an error when it has ``error``),
    after an event and a stale answer that the client must skip."""

    def handler(ws: ServerConnection) -> None:
        for text in ws:
            command = json.loads(text)
            seen.append(command)
            ws.send(json.dumps({"type": "event", "method": "log.entryAdded", "params": {}}))
            ws.send(json.dumps({"type": "success", "id": command["id"] + 100, "result": {}}))
            answer = answers.get(command["method"], {})
            if "error" in answer:
                ws.send(json.dumps({"type": "error", "id": command["id"], **answer, "stacktrace": "a\nb"}))
            else:
                ws.send(json.dumps({"type": "success", "id": command["id"], "result": answer}))

    return handler


def test_a_session_navigates_evaluates_and_ends(bidi):
    seen: list[dict] = []
    url = bidi(firefox_like(seen, {
        "session.new": {"sessionId": "S", "capabilities": {"browserName": "firefox"}},
        "browsingContext.getTree": {"contexts": [{"context": "TAB1", "url": "about:blank"}, {"context": "TAB2"}]},
        "browsingContext.navigate": {"navigation": "N", "url": "http://127.0.0.1:5173/"},
        "script.evaluate": {"type": "success", "realm": "R", "result": {"type": "string", "value": "load"}},
    }))
    with BidiSession(url, 5) as session:
        assert session.capabilities == {"browserName": "firefox"}
        tab = session.first_context()
        assert tab == "TAB1"
        assert session.navigate(tab, "http://127.0.0.1:5173/") == "http://127.0.0.1:5173/"
        assert session.evaluate(tab, "1 + 1") == "load"
    assert [(c["id"], c["method"], c["params"]) for c in seen] == [
        (1, "session.new", {"capabilities": {}}),
        (2, "browsingContext.getTree", {"maxDepth": 0}),
        (3, "browsingContext.navigate", {"context": "TAB1", "url": "http://127.0.0.1:5173/", "wait": "complete"}),
        (4, "script.evaluate", {"expression": "1 + 1", "target": {"context": "TAB1"}, "awaitPromise": True,
                                "resultOwnership": "none"}),
        (5, "session.end", {}),  # Firefox keeps a session its socket left, and refuses the next one
    ]


def test_a_failed_navigation_and_a_throwing_script_are_one_line_browser_errors(bidi):
    url = bidi(firefox_like([], {
        "browsingContext.navigate": {"error": "unknown error", "message": "Error: NS_ERROR_CONNECTION_REFUSED"},
        "script.evaluate": {"type": "exception", "exceptionDetails": {"text": "ReferenceError: x is\nnot defined"}},
        "browsingContext.getTree": {"error": "no such frame", "message": ""},
    }))
    with BidiSession(url, 5) as session:
        with pytest.raises(BrowserError) as navigation:  # a BidiError is a BrowserError
            session.navigate("TAB", "http://127.0.0.1:9/")
        assert str(navigation.value) == "could not load http://127.0.0.1:9/: NS_ERROR_CONNECTION_REFUSED"
        assert (navigation.value.code, navigation.value.detail) == ("unknown error", "NS_ERROR_CONNECTION_REFUSED")
        with pytest.raises(BidiError) as thrown:
            session.evaluate("TAB", "x")
        assert (str(thrown.value), thrown.value.code) == (
            "the page's script threw: ReferenceError: x is not defined", "exception")
        with pytest.raises(BidiError, match=r"^browsingContext\.getTree: no such frame$"):
            session.first_context()


def test_a_refused_session_and_a_closed_socket_say_so(bidi):
    refused = bidi(firefox_like([], {"session.new": {"error": "session not created",
                                                     "message": "Maximum number of active sessions"}}))
    with pytest.raises(BidiError, match="^session.new: session not created: Maximum number of active sessions$"):
        BidiSession(refused, 5)
    gone = bidi(lambda ws: ws.close())
    with pytest.raises(BidiError, match=r"^the browser closed the WebDriver BiDi connection \(did it exit\?\)$"):
        BidiSession(gone, 5)
    with pytest.raises(BidiError, match="^not a local WebDriver BiDi WebSocket URL: wss://example.com/session$"):
        BidiSession("wss://example.com/session")


def test_a_silent_browser_times_out(bidi):
    url = bidi(lambda ws: [None for _ in ws])  # reads every command, answers none
    with pytest.raises(TimeoutError, match="^no answer from the browser's WebDriver BiDi connection$"):
        BidiSession(url, 0.5)



def test_the_bidi_port_comes_from_the_profile_else_from_the_log(tmp_path):
    profile = tmp_path / "work" / "profile"
    profile.mkdir(parents=True)
    program = tmp_path / "firefox"
    program.write_text("#!/bin/sh\necho '*** You are running in headless mode.'\n"
                       "echo 'WebDriver BiDi listening on ws://127.0.0.1:4321'\nexec sleep 30\n")
    program.chmod(0o755)
    proxy = ScopedProxy("127.0.0.1", 0, http_target=("127.0.0.1", 1), https_target=("127.0.0.1", 2))
    browser = FirefoxBrowser(str(program), [], profile, headless=True, proxy=proxy).start()
    try:
        assert browser.bidi_port(10) == 4321  # an older Firefox: only its log says
        (profile / "WebDriverBiDiServer.json").write_text('{"ws_host": "127.0.0.1", "ws_port": 37195}')
        assert browser.bidi_port(10) == 37195  # the file wins
    finally:
        browser.stop()
    assert not profile.parent.exists()
