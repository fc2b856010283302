"""A minimal Chrome DevTools Protocol client over a WebSocket (standard library only).

``verify`` needs one thing from the browser it starts: "the page has loaded"
(and whether the navigation failed), for any URL. The DevTools protocol says
exactly that (``Page.navigate`` → ``errorText``, then ``Page.loadEventFired``).
Playwright or a websocket package would do it too, but as a dependency of a
command-line check that is a lot to ask; this is a client-side RFC 6455 text
socket of ~150 lines, enough for a few commands and events on loopback.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
import time
import urllib.parse
import urllib.request
from collections import deque
from typing import Any


class DevToolsError(Exception):
    """The DevTools connection failed or a command returned an error; message is one line."""


_OP_CONTINUATION, _OP_TEXT, _OP_BINARY, _OP_CLOSE, _OP_PING, _OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


class DevToolsConnection:
    """One WebSocket to a DevTools target (a page): commands, their results, and events."""

    def __init__(self, ws_url: str, timeout: float = 10.0) -> None:
        parsed = urllib.parse.urlsplit(ws_url)
        if parsed.scheme != "ws" or not parsed.hostname or not parsed.port:
            raise DevToolsError(f"not a local DevTools WebSocket URL: {ws_url}")
        self._events: deque[dict[str, Any]] = deque()
        self._next_id = 0
        self._buffer = b""
        try:
            self._sock = socket.create_connection((parsed.hostname, parsed.port), timeout=timeout)
        except OSError as exc:
            raise DevToolsError(f"cannot connect to the browser's DevTools port: {exc}") from exc
        self._handshake(parsed.hostname, parsed.port, parsed.path or "/", timeout)

    # -- WebSocket framing ------------------------------------------------

    def _handshake(self, host: str, port: int, path: str, timeout: float) -> None:
        key = base64.b64encode(os.urandom(16)).decode("ascii")
        # No Origin header: Chromium only checks --remote-allow-origins when one is sent.
        request = (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                   f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n")
        self._sock.sendall(request.encode("ascii"))
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in self._buffer:
            self._fill(deadline)
        head, _, self._buffer = self._buffer.partition(b"\r\n\r\n")
        status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
        if " 101 " not in f"{status_line} ":
            raise DevToolsError(f"the browser refused the DevTools connection: {status_line}")

    def _fill(self, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no answer from the browser's DevTools connection")
        self._sock.settimeout(remaining)
        try:
            chunk = self._sock.recv(65536)
        except TimeoutError:
            raise TimeoutError("no answer from the browser's DevTools connection") from None
        except OSError as exc:
            raise DevToolsError(f"the browser's DevTools connection failed: {exc}") from exc
        if not chunk:
            raise DevToolsError("the browser closed the DevTools connection (did it exit?)")
        self._buffer += chunk

    def _take(self, size: int, deadline: float) -> bytes:
        while len(self._buffer) < size:
            self._fill(deadline)
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def _send_frame(self, opcode: int, payload: bytes) -> None:
        # Client frames must be masked (RFC 6455 §5.3).
        header = bytearray([0x80 | opcode])
        size = len(payload)
        if size < 126:
            header.append(0x80 | size)
        elif size < 1 << 16:
            header.append(0x80 | 126)
            header += struct.pack("!H", size)
        else:
            header.append(0x80 | 127)
            header += struct.pack("!Q", size)
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        try:
            self._sock.sendall(bytes(header) + mask + masked)
        except OSError as exc:
            raise DevToolsError(f"the browser's DevTools connection failed: {exc}") from exc

    def _read_message(self, deadline: float) -> str:
        """The next complete text message (pings answered, fragments joined)."""
        parts: list[bytes] = []
        while True:
            first, second = self._take(2, deadline)
            opcode, final = first & 0x0F, bool(first & 0x80)
            size = second & 0x7F
            if size == 126:
                size = struct.unpack("!H", self._take(2, deadline))[0]
            elif size == 127:
                size = struct.unpack("!Q", self._take(8, deadline))[0]
            mask = self._take(4, deadline) if second & 0x80 else None
            payload = self._take(size, deadline)
            if mask:
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            if opcode == _OP_PING:
                self._send_frame(_OP_PONG, payload)
                continue
            if opcode == _OP_PONG:
                continue
            if opcode == _OP_CLOSE:
                raise DevToolsError("the browser closed the DevTools connection")
            parts.append(payload)
            if final:
                return b"".join(parts).decode("utf-8", "replace")

    # -- DevTools protocol --------------------------------------------------

    def call(self, method: str, params: dict[str, Any] | None = None, timeout: float = 10.0) -> dict[str, Any]:
        """Send a command and return its ``result``; events seen meanwhile are kept for :meth:`wait_event`."""
        self._next_id += 1
        command_id = self._next_id
        self._send_frame(_OP_TEXT, json.dumps({"id": command_id, "method": method,
                                               "params": params or {}}).encode("utf-8"))
        deadline = time.monotonic() + timeout
        while True:
            message = json.loads(self._read_message(deadline))
            if message.get("id") == command_id:
                if "error" in message:
                    raise DevToolsError(f"{method}: {message['error'].get('message', message['error'])}")
                return message.get("result") or {}
            if "method" in message:
                self._events.append(message)

    def wait_event(self, method: str, timeout: float) -> dict[str, Any]:
        """Wait for the next event called ``method`` and return its params (raises TimeoutError)."""
        deadline = time.monotonic() + timeout
        while True:
            while self._events:
                event = self._events.popleft()
                if event.get("method") == method:
                    return event.get("params") or {}
            message = json.loads(self._read_message(deadline))
            if "method" in message:
                self._events.append(message)

    def close(self) -> None:
        """Close the socket (the browser keeps running)."""
        try:
            self._send_frame(_OP_CLOSE, b"")
        except DevToolsError:
            pass
        try:
            self._sock.close()
        except OSError:
            pass

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
            with urllib.request.urlopen(f"http://127.0.0.1:{devtools_port}/json/list", timeout=2) as resp:
                targets = json.load(resp)
        except (OSError, ValueError) as exc:
            last_error = str(exc)
        else:
            for target in targets:
                if target.get("type") == "page" and target.get("webSocketDebuggerUrl"):
                    return str(target["webSocketDebuggerUrl"])
        time.sleep(0.1)
    raise DevToolsError(f"the browser showed no page to control ({last_error})")
