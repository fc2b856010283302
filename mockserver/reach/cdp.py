"""A minimal Chrome DevTools Protocol client over a WebSocket (the ``websockets`` package's sync client).

``verify`` needs one thing from the browser it starts: "the page has loaded"
(and whether the navigation failed), for any URL. The DevTools protocol says
exactly that (``Page.navigate`` → ``errorText``, then ``Page.loadEventFired``).
The socket itself is :mod:`mockserver.reach.wsjson` (shared with the WebDriver BiDi client);
this module is the protocol on top: commands matched to their answers by id,
and the events that arrive meanwhile kept for :meth:`DevToolsConnection.wait_event`.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections import deque
from typing import Any

from mockserver.reach.wsjson import JsonSocket, one_line

# The DevTools port is on loopback: never ask it through the user's http_proxy.
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class DevToolsError(Exception):
    """The DevTools connection failed or a command returned an error; message is one line."""


class DevToolsConnection:
    """One WebSocket to a DevTools target (a page): commands, their results, and events."""

    def __init__(self, ws_url: str, timeout: float = 10.0) -> None:
        self._events: deque[dict[str, Any]] = deque()
        self._next_id = 0
        self._socket = JsonSocket(ws_url, timeout, protocol="DevTools", error=DevToolsError)

    def post(self, method: str, params: dict[str, Any] | None = None, session_id: str | None = None) -> int:
        """Send a command without waiting for its answer (to ``session_id``, a flattened target
        session, when given); returns its id. Its answer comes back through :meth:`next_message`."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session_id:
            message["sessionId"] = session_id
        self._socket.send(message)
        return self._next_id

    def next_message(self, timeout: float) -> dict[str, Any]:
        """The next message of any kind, answer or event (raises TimeoutError, DevToolsError)."""
        return self._socket.read(time.monotonic() + timeout)

    def call(self, method: str, params: dict[str, Any] | None = None, timeout: float = 10.0) -> dict[str, Any]:
        """Send a command and return its ``result``; events seen meanwhile are kept for :meth:`wait_event`."""
        command_id = self.post(method, params)
        deadline = time.monotonic() + timeout
        while True:
            message = self._socket.read(deadline)
            if message.get("id") == command_id:
                if "error" in message:
                    error = message["error"]
                    detail = error.get("message", error) if isinstance(error, dict) else error
                    raise DevToolsError(f"{method}: {one_line(detail)}")
                result = message.get("result")
                return result if isinstance(result, dict) else {}
            if "method" in message:
                self._events.append(message)

    def wait_event(self, method: str, timeout: float) -> dict[str, Any]:
        """Wait for the next event called ``method`` and return its params (raises TimeoutError)."""
        deadline = time.monotonic() + timeout
        while True:
            while self._events:
                event = self._events.popleft()
                if event.get("method") == method:
                    params = event.get("params")
                    return params if isinstance(params, dict) else {}
            message = self._socket.read(deadline)
            if "method" in message:
                self._events.append(message)

    def close(self) -> None:
        """Close the WebSocket (the browser keeps running)."""
        self._socket.close()

    def __enter__(self) -> DevToolsConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def page_websocket_url(devtools_port: int, timeout: float = 10.0) -> str:
    """The DevTools WebSocket URL of the browser's first page (tab)."""
    deadline = time.monotonic() + timeout
    last_error = "no page target"
    while time.monotonic() < deadline:
        try:
            with _NO_PROXY.open(f"http://127.0.0.1:{devtools_port}/json/list", timeout=2) as resp:
                targets = json.load(resp)
        except (OSError, ValueError) as exc:
            last_error = str(exc)
        else:
            for target in targets:
                if target.get("type") == "page" and target.get("webSocketDebuggerUrl"):
                    return str(target["webSocketDebuggerUrl"])
        time.sleep(0.1)
    raise DevToolsError(f"the browser showed no page to control ({last_error})")
