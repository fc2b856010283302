"""A minimal WebDriver BiDi client: what ``verify`` and the route probe need from a Firefox this tool started.

Firefox no longer speaks the DevTools protocol; its remote agent (``--remote-debugging-port``)
speaks WebDriver BiDi on ``ws://127.0.0.1:<port>/session``. One session (``session.new``) per
browser: Firefox allows a single one and keeps it after its WebSocket closes, so
:meth:`BidiSession.close` ends it (``session.end``). Commands are matched to their answers by
id; events are not subscribed to, and anything else that arrives is skipped. The socket is
:mod:`mockserver.reach.wsjson`, shared with the DevTools client.
"""

from __future__ import annotations

import time
from typing import Any

from mockserver.reach.browser_process import BrowserError
from mockserver.reach.wsjson import JsonSocket, one_line

PROTOCOL = "WebDriver BiDi"


class BidiError(BrowserError):
    """The BiDi connection failed or a command returned an error; the message is one line.

    ``code`` is the WebDriver error code (``unknown error``, ``invalid argument``…) when the
    browser answered one; ``detail`` its message (``NS_ERROR_CONNECTION_REFUSED``).
    """

    def __init__(self, message: str, code: str = "", detail: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.detail = detail


def session_url(port: int) -> str:
    """The WebSocket URL of a local Firefox's BiDi endpoint."""
    return f"ws://127.0.0.1:{port}/session"


class BidiSession:
    """One WebDriver BiDi session over one WebSocket: commands and their results."""

    def __init__(self, ws_url: str, timeout: float = 10.0) -> None:
        self._next_id = 0
        self._socket = JsonSocket(ws_url, timeout, protocol=PROTOCOL, error=BidiError)
        try:
            self.capabilities = self.call("session.new", {"capabilities": {}}, timeout).get("capabilities", {})
        except BaseException:
            self._socket.close()
            raise
        self._open = True

    def call(self, method: str, params: dict[str, Any] | None = None, timeout: float = 10.0) -> dict[str, Any]:
        """Send a command and return its ``result`` (BidiError with the browser's reason, TimeoutError)."""
        self._next_id += 1
        command_id = self._next_id
        self._socket.send({"id": command_id, "method": method, "params": params or {}})
        deadline = time.monotonic() + timeout
        while True:
            message = self._socket.read(deadline)
            if message.get("id") != command_id:
                continue  # an event, or the late answer to a command that timed out
            if message.get("type") == "error":
                code, detail = str(message.get("error", "error")), one_line(message.get("message", ""))
                raise BidiError(f"{method}: {code}" + (f": {detail}" if detail else ""), code, detail)
            result = message.get("result")
            return result if isinstance(result, dict) else {}

    def first_context(self, timeout: float = 10.0) -> str:
        """The id of the first top-level browsing context (the first tab)."""
        contexts = self.call("browsingContext.getTree", {"maxDepth": 0}, timeout).get("contexts")
        for context in contexts if isinstance(contexts, list) else []:
            if isinstance(context, dict) and isinstance(context.get("context"), str):
                return str(context["context"])
        raise BidiError("the browser showed no tab to control")

    def navigate(self, context: str, url: str, *, wait: str = "complete", timeout: float = 30.0) -> str:
        """Navigate ``context`` to ``url``; with ``wait="complete"`` return once its load event fired.

        Returns the URL the browser reports. A failed navigation raises BidiError
        ``could not load URL: NS_ERROR_CONNECTION_REFUSED`` (``detail`` the browser's reason).
        """
        try:
            result = self.call("browsingContext.navigate", {"context": context, "url": url, "wait": wait}, timeout)
        except BidiError as exc:
            if not exc.code:  # the connection failed, not the page
                raise
            reason = exc.detail.removeprefix("Error: ") or exc.code
            raise BidiError(f"could not load {url}: {reason}", exc.code, reason) from exc
        return str(result.get("url", url))

    def evaluate(self, context: str, expression: str, timeout: float = 10.0) -> Any:
        """Evaluate ``expression`` in ``context``'s page, awaiting a Promise; returns its value when it is
        a plain value (string, number, boolean, null). BidiError when the script threw."""
        result = self.call("script.evaluate", {"expression": expression, "target": {"context": context},
                                               "awaitPromise": True, "resultOwnership": "none"}, timeout)
        if result.get("type") == "exception":
            details = result.get("exceptionDetails")
            text = details.get("text", "an exception") if isinstance(details, dict) else "an exception"
            raise BidiError(f"the page's script threw: {one_line(text)}", "exception", one_line(text))
        value = result.get("result")
        return value.get("value") if isinstance(value, dict) else None

    def close(self, timeout: float = 2.0, *, end: bool = True) -> None:
        """End the session (Firefox keeps it otherwise and refuses the next) and close the WebSocket.

        ``end=False``: only close the socket (the browser is gone, or another thread is waiting on it).
        """
        if self._open and end:
            self._open = False
            try:
                self.call("session.end", {}, timeout)
            except (BidiError, TimeoutError):
                pass  # the browser is gone or hung: nothing more to end
        self._open = False
        self._socket.close()

    def __enter__(self) -> BidiSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
