"""A minimal Chrome DevTools Protocol client over a WebSocket (the ``websockets`` package's sync client).

``verify`` needs one thing from the browser it starts: "the page has loaded"
(and whether the navigation failed), for any URL. The DevTools protocol says
exactly that (``Page.navigate`` → ``errorText``, then ``Page.loadEventFired``).
The socket itself (handshake, framing, pings, fragments, close) is websockets';
this module is the protocol on top: commands matched to their answers by id,
and the events that arrive meanwhile kept for :meth:`DevToolsConnection.wait_event`.
"""

from __future__ import annotations

import contextlib
import json
import time
import urllib.parse
import urllib.request
from collections import deque
from typing import Any

from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI
from websockets.sync.client import ClientConnection, connect

# A DevTools message can be large (a page's DOM, a response body); far more than websockets' 1 MiB
# default, and the browser on the other end is the one this process started.
MAX_MESSAGE_BYTES = 256 * 1024 * 1024
# Closing waits for the browser's close frame; a browser that hangs must not hold up the caller.
_CLOSE_TIMEOUT = 2.0
_NO_ANSWER = "no answer from the browser's DevTools connection"
# The DevTools port is on loopback: never ask it through the user's http_proxy.
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class DevToolsError(Exception):
    """The DevTools connection failed or a command returned an error; message is one line."""


class DevToolsConnection:
    """One WebSocket to a DevTools target (a page): commands, their results, and events."""

    def __init__(self, ws_url: str, timeout: float = 10.0) -> None:
        parsed = urllib.parse.urlsplit(ws_url)
        if parsed.scheme != "ws" or not parsed.hostname or not parsed.port:
            raise DevToolsError(f"not a local DevTools WebSocket URL: {ws_url}")
        self._events: deque[dict[str, Any]] = deque()
        self._next_id = 0
        self._exit = contextlib.ExitStack()
        try:
            # No Origin header (origin=None): Chromium only checks --remote-allow-origins when one is
            # sent. proxy=None: the DevTools port is on loopback, never behind the user's HTTPS_PROXY.
            # Entered as a context manager, the only use websockets 17.1+ does not deprecate.
            self._ws: ClientConnection = self._exit.enter_context(connect(
                ws_url, open_timeout=timeout, close_timeout=min(timeout, _CLOSE_TIMEOUT),
                max_size=MAX_MESSAGE_BYTES, proxy=None, compression=None, origin=None))
        except TimeoutError:
            raise TimeoutError(_NO_ANSWER) from None
        except InvalidStatus as exc:
            status = exc.response.status_code
            raise DevToolsError(f"the browser refused the DevTools connection: HTTP {status}") from exc
        except (InvalidHandshake, InvalidURI) as exc:
            raise DevToolsError(f"the browser refused the DevTools connection: {_one_line(exc)}") from exc
        except OSError as exc:
            raise DevToolsError(f"cannot connect to the browser's DevTools port: {_one_line(exc)}") from exc

    def _read_message(self, deadline: float) -> dict[str, Any]:
        """The next message as a JSON object (raises TimeoutError past ``deadline``, DevToolsError)."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(_NO_ANSWER)
        try:
            data = self._ws.recv(timeout=remaining)
        except TimeoutError:
            raise TimeoutError(_NO_ANSWER) from None
        except ConnectionClosed as exc:
            raise DevToolsError(f"the browser closed the DevTools connection (did it exit?){_close_reason(exc)}"
                                ) from exc
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
        try:
            message = json.loads(text)
        except ValueError:
            raise DevToolsError("the browser sent a DevTools message that is not JSON") from None
        if not isinstance(message, dict):
            raise DevToolsError("the browser sent a DevTools message that is not a JSON object")
        return message

    def _send(self, message: dict[str, Any]) -> None:
        try:
            self._ws.send(json.dumps(message))
        except ConnectionClosed as exc:
            raise DevToolsError(f"the browser closed the DevTools connection (did it exit?){_close_reason(exc)}"
                                ) from exc

    def post(self, method: str, params: dict[str, Any] | None = None, session_id: str | None = None) -> int:
        """Send a command without waiting for its answer (to ``session_id``, a flattened target
        session, when given); returns its id. Its answer comes back through :meth:`next_message`."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session_id:
            message["sessionId"] = session_id
        self._send(message)
        return self._next_id

    def next_message(self, timeout: float) -> dict[str, Any]:
        """The next message of any kind, answer or event (raises TimeoutError, DevToolsError)."""
        return self._read_message(time.monotonic() + timeout)

    def call(self, method: str, params: dict[str, Any] | None = None, timeout: float = 10.0) -> dict[str, Any]:
        """Send a command and return its ``result``; events seen meanwhile are kept for :meth:`wait_event`."""
        command_id = self.post(method, params)
        deadline = time.monotonic() + timeout
        while True:
            message = self._read_message(deadline)
            if message.get("id") == command_id:
                if "error" in message:
                    error = message["error"]
                    detail = error.get("message", error) if isinstance(error, dict) else error
                    raise DevToolsError(f"{method}: {_one_line(detail)}")
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
            message = self._read_message(deadline)
            if "method" in message:
                self._events.append(message)

    def close(self) -> None:
        """Close the WebSocket (the browser keeps running)."""
        self._exit.close()

    def __enter__(self) -> DevToolsConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _one_line(value: object) -> str:
    return " ".join(str(value).split())


def _close_reason(exc: ConnectionClosed) -> str:
    """`` (code 1011: reason)`` when the browser said why it closed, else empty."""
    frame = exc.rcvd
    if frame is None or frame.code == 1000:
        return ""
    return f" (code {frame.code}{': ' + _one_line(frame.reason) if frame.reason else ''})"


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
