"""The DevTools client (mockserver/reach/cdp.py) against a real WebSocket server on loopback.

The server is websockets' own sync server, scripted per test to answer as a
browser would (or would not): answers matched by id, events in between, no
answer, a close in the middle of a command. Real Chromium is in test_browser.py.
"""

from __future__ import annotations

import http.server
import json
import socket
import threading
from collections.abc import Callable, Iterator

import pytest
from websockets.datastructures import Headers
from websockets.http11 import Request, Response
from websockets.sync.server import ServerConnection

from mockserver.reach.cdp import DevToolsConnection, DevToolsError, page_websocket_url
from tests.support.websocket_server import websocket_servers

Handler = Callable[[ServerConnection], None]
CLOSED = "the browser closed the DevTools connection (did it exit?)"


@pytest.fixture
def devtools() -> Iterator[Callable[..., str]]:
    """Start a loopback WebSocket server running a handler; returns its ws:// URL."""
    with websocket_servers("/devtools/page/ABC") as start:
        yield start


def commands(ws: ServerConnection) -> Iterator[dict]:
    """Each command the client sends, until it closes."""
    for text in ws:
        yield json.loads(text)


def event(method: str, **params: object) -> str:
    return json.dumps({"method": method, "params": params})


def test_a_call_returns_the_answer_with_its_id_and_keeps_the_events_that_came_first(devtools) -> None:
    seen: list[dict] = []

    def browser(ws: ServerConnection) -> None:
        for command in commands(ws):
            seen.append(command)
            ws.send(json.dumps({"id": command["id"] + 100, "result": {"frameId": "stale"}}))  # not ours
            ws.send(event("Page.frameStartedLoading", frameId=f"F{command['id']}"))
            ws.send(event("Page.loadEventFired", timestamp=command["id"] + 0.5))
            ws.send(json.dumps({"id": command["id"], "result": {"frameId": f"F{command['id']}"}}))

    with DevToolsConnection(devtools(browser), 5) as page:
        assert page.call("Page.navigate", {"url": "http://127.0.0.1:1/"}) == {"frameId": "F1"}
        assert page.call("Page.enable", timeout=5) == {"frameId": "F2"}
        # Both calls' events were queued in order; wait_event drops the ones before the one it waits for.
        assert page.wait_event("Page.frameStartedLoading", 5) == {"frameId": "F1"}
        assert page.wait_event("Page.loadEventFired", 5) == {"timestamp": 1.5}
        assert page.wait_event("Page.loadEventFired", 5) == {"timestamp": 2.5}
        with pytest.raises(TimeoutError, match="^no answer from the browser's DevTools connection$"):
            page.wait_event("Page.frameStartedLoading", 0.01)  # F2 was dropped on the way to 2.5
    assert seen == [{"id": 1, "method": "Page.navigate", "params": {"url": "http://127.0.0.1:1/"}},
                    {"id": 2, "method": "Page.enable", "params": {}}]


def test_an_event_that_arrives_while_waiting_is_returned(devtools) -> None:
    def browser(ws: ServerConnection) -> None:
        for command in commands(ws):
            ws.send(json.dumps({"id": command["id"], "result": {}}))
            ws.send(event("Network.requestWillBeSent", requestId="7"))
            ws.send(event("Page.loadEventFired", timestamp=1.0).encode())  # a binary frame decodes too

    with DevToolsConnection(devtools(browser)) as page:
        assert page.call("Page.enable") == {}
        assert page.wait_event("Page.loadEventFired", 5) == {"timestamp": 1.0}


def test_a_command_nobody_answers_times_out(devtools) -> None:
    def browser(ws: ServerConnection) -> None:
        for _ in commands(ws):
            ws.send(event("Page.frameStartedLoading", frameId="F1"))  # events, but never the answer

    with DevToolsConnection(devtools(browser)) as page:
        with pytest.raises(TimeoutError, match="^no answer from the browser's DevTools connection$"):
            page.call("Runtime.evaluate", {"expression": "new Promise(() => {})"}, timeout=0.2)
        assert page.wait_event("Page.frameStartedLoading", 5) == {"frameId": "F1"}


@pytest.mark.parametrize(("close", "message"), [
    (lambda ws: ws.close(1011, "target\ncrashed"), CLOSED + " (code 1011: target crashed)"),
    (lambda ws: ws.close(), CLOSED),
    (lambda ws: ws.socket.shutdown(socket.SHUT_RDWR), CLOSED),  # no close frame at all
], ids=["with-a-reason", "normal", "abrupt"])
def test_a_browser_that_closes_during_a_call_is_one_line(devtools, close, message) -> None:
    def browser(ws: ServerConnection) -> None:
        ws.recv()
        ws.send(event("Inspector.detached", reason="target_closed"))
        close(ws)

    with DevToolsConnection(devtools(browser)) as page:
        with pytest.raises(DevToolsError) as caught:
            page.call("Page.navigate", {"url": "http://127.0.0.1:1/"})
        assert str(caught.value) == message
        # What came before the close is still there, and asking again is the same one line.
        assert page.wait_event("Inspector.detached", 5) == {"reason": "target_closed"}
        with pytest.raises(DevToolsError, match="^the browser closed the DevTools connection"):
            page.call("Page.enable")


def test_a_command_error_is_one_line_with_the_method(devtools) -> None:
    def browser(ws: ServerConnection) -> None:
        for command in commands(ws):
            error: object = {"code": -32000, "message": "Cannot navigate to\ninvalid URL"} if command["id"] == 1 \
                else "plain text"
            ws.send(json.dumps({"id": command["id"], "error": error}))

    with DevToolsConnection(devtools(browser)) as page:
        with pytest.raises(DevToolsError) as first:
            page.call("Page.navigate", {"url": "nope"})
        with pytest.raises(DevToolsError) as second:
            page.call("Page.reload")
    assert (str(first.value), str(second.value)) == ("Page.navigate: Cannot navigate to invalid URL",
                                                     "Page.reload: plain text")


@pytest.mark.parametrize(("reply", "message"), [
    ("{not json", "the browser sent a DevTools message that is not JSON"),
    ("[1, 2]", "the browser sent a DevTools message that is not a JSON object"),
])
def test_a_message_that_is_not_a_json_object_is_one_line(devtools, reply, message) -> None:
    def browser(ws: ServerConnection) -> None:
        for _ in commands(ws):
            ws.send(reply)

    with DevToolsConnection(devtools(browser)) as page:
        with pytest.raises(DevToolsError, match=f"^{message}$"):
            page.call("Page.enable")


def test_the_handshake_sends_no_origin_and_ignores_the_users_proxy(devtools, monkeypatch) -> None:
    """Chromium refuses an Origin it was not told to allow; a proxy would never reach loopback's DevTools."""
    origins: list[str | None] = []
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")  # the discard port: nothing listens there
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)

    def browser(ws: ServerConnection) -> None:
        assert ws.request is not None
        origins.append(ws.request.headers.get("Origin"))
        for command in commands(ws):
            ws.send(json.dumps({"id": command["id"], "result": {"ok": True}}))

    with DevToolsConnection(devtools(browser)) as page:
        assert page.call("Browser.getVersion") == {"ok": True}
    assert origins == [None]


def test_a_refused_handshake_is_one_line(devtools) -> None:
    def refuse(ws: ServerConnection, request: Request) -> Response:
        return Response(403, "Forbidden", Headers(), b"Rejected an incoming WebSocket connection\n")

    with pytest.raises(DevToolsError, match="^the browser refused the DevTools connection: HTTP 403$"):
        DevToolsConnection(devtools(lambda ws: None, process_request=refuse))


def test_nothing_listening_or_not_a_ws_url_is_one_line() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    with pytest.raises(DevToolsError, match="^cannot connect to the browser's DevTools port: .*refused$"):
        DevToolsConnection(f"ws://127.0.0.1:{port}/devtools/page/ABC")
    with pytest.raises(DevToolsError, match="^not a local DevTools WebSocket URL: wss://example.com/x$"):
        DevToolsConnection("wss://example.com/x")


def test_page_websocket_url_takes_the_first_page_and_ignores_the_users_proxy(monkeypatch) -> None:
    targets = [{"type": "service_worker", "webSocketDebuggerUrl": "ws://127.0.0.1:1/devtools/page/SW"},
               {"type": "page", "webSocketDebuggerUrl": "ws://127.0.0.1:1/devtools/page/P1"},
               {"type": "page", "webSocketDebuggerUrl": "ws://127.0.0.1:1/devtools/page/P2"}]

    class JsonList(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps(targets if self.path == "/json/list" else []).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    monkeypatch.delenv("no_proxy", raising=False)
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), JsonList) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            assert page_websocket_url(server.server_address[1], 5) == "ws://127.0.0.1:1/devtools/page/P1"
        finally:
            server.shutdown()
