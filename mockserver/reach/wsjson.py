"""A browser's control WebSocket carrying JSON objects, on the ``websockets`` package's sync client.

The one piece under both protocols this tool speaks to the browsers it starts: Chromium's
DevTools (:mod:`mockserver.reach.cdp`) and Firefox's WebDriver BiDi (:mod:`mockserver.reach.bidi`).
It connects (loopback only, no Origin header, never through the user's proxy), reads the next
message as a JSON object before a deadline, sends one, and closes; every failure becomes the
protocol's one-line error naming the protocol ("the browser closed the DevTools connection").
"""

from __future__ import annotations

import contextlib
import json
import time
import urllib.parse
from typing import Any

from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI
from websockets.sync.client import ClientConnection, connect

# A control message can be large (a page's DOM, a response body); far more than websockets' 1 MiB
# default, and the browser on the other end is the one this process started.
MAX_MESSAGE_BYTES = 256 * 1024 * 1024
# Closing waits for the browser's close frame; a browser that hangs must not hold up the caller.
CLOSE_TIMEOUT = 2.0


def one_line(value: object) -> str:
    """``value`` as text on one line (whitespace runs made one space)."""
    return " ".join(str(value).split())


class JsonSocket:
    """One WebSocket to a browser's control port; ``protocol`` names it in messages and ``error`` is
    the exception class raised (one line). A silent browser raises TimeoutError."""

    def __init__(self, ws_url: str, timeout: float, *, protocol: str, error: type[Exception]) -> None:
        self.protocol = protocol
        self.error = error
        self.no_answer = f"no answer from the browser's {protocol} connection"
        parsed = urllib.parse.urlsplit(ws_url)
        if parsed.scheme != "ws" or not parsed.hostname or not parsed.port:
            raise error(f"not a local {protocol} WebSocket URL: {ws_url}")
        self._exit = contextlib.ExitStack()
        try:
            # No Origin header (origin=None): Chromium only checks --remote-allow-origins when one is
            # sent, Firefox refuses any it was not told to allow. proxy=None: the port is on loopback,
            # never behind the user's HTTPS_PROXY. Entered as a context manager, the only use
            # websockets 17.1+ does not deprecate.
            self._ws: ClientConnection = self._exit.enter_context(connect(
                ws_url, open_timeout=timeout, close_timeout=min(timeout, CLOSE_TIMEOUT),
                max_size=MAX_MESSAGE_BYTES, proxy=None, compression=None, origin=None))
        except TimeoutError:
            raise TimeoutError(self.no_answer) from None
        except InvalidStatus as exc:
            status = exc.response.status_code
            raise error(f"the browser refused the {protocol} connection: HTTP {status}") from exc
        except (InvalidHandshake, InvalidURI) as exc:
            raise error(f"the browser refused the {protocol} connection: {one_line(exc)}") from exc
        except OSError as exc:
            raise error(f"cannot connect to the browser's {protocol} port: {one_line(exc)}") from exc

    def _closed(self, exc: ConnectionClosed) -> Exception:
        return self.error(f"the browser closed the {self.protocol} connection (did it exit?){_close_reason(exc)}")

    def read(self, deadline: float) -> dict[str, Any]:
        """The next message as a JSON object (raises TimeoutError past ``deadline`` (monotonic), or the error)."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(self.no_answer)
        try:
            data = self._ws.recv(timeout=remaining)
        except TimeoutError:
            raise TimeoutError(self.no_answer) from None
        except ConnectionClosed as exc:
            raise self._closed(exc) from exc
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
        try:
            message = json.loads(text)
        except ValueError:
            raise self.error(f"the browser sent a {self.protocol} message that is not JSON") from None
        if not isinstance(message, dict):
            raise self.error(f"the browser sent a {self.protocol} message that is not a JSON object")
        return message

    def send(self, message: dict[str, Any]) -> None:
        """Send one JSON object (raises the error when the browser has closed the connection)."""
        try:
            self._ws.send(json.dumps(message))
        except ConnectionClosed as exc:
            raise self._closed(exc) from exc

    def close(self) -> None:
        """Close the WebSocket (the browser keeps running)."""
        self._exit.close()


def _close_reason(exc: ConnectionClosed) -> str:
    """`` (code 1011: reason)`` when the browser said why it closed, else empty."""
    frame = exc.rcvd
    if frame is None or frame.code == 1000:
        return ""
    return f" (code {frame.code}{': ' + one_line(frame.reason) if frame.reason else ''})"
