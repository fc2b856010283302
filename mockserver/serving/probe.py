"""The route probe: proof that a routed browser's requests to telemetry.refine.dev reach this inspector.

"Nothing was sent" only means something when a request *would* have arrived:
if the routing flags do not take effect (a wrapper or a managed policy drops
them, a profile quirk), refine's beacon goes elsewhere and an opt-out check
passes by accident. So before reporting that nothing arrived, ``verify``,
``browser`` and the pytest plugin load ``https://telemetry.refine.dev/__route-probe/<nonce>.gif``
from inside the routed page (same host-resolver rule, same SPKI pin) and
wait for the inspector to see that nonce.

Probes are not records: the app answers them with the GIF and keeps the
nonces in a small bounded in-memory :class:`ProbeLog` (``app.extensions["probes"]``,
and ``GET /__inspector/probes/<nonce>`` for a remote inspector). They never
appear in the journal, the counts, the verdicts or the exports.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from mockserver.core.config import REFINE_HOST

PROBE_PATH = "/__route-probe"
PROBE_WAIT = 5.0  # seconds a probe may take to arrive; loopback answers in milliseconds
NONCE = re.compile(r"[0-9a-f]{32}")
MAX_KEPT = 256

# Evaluated in the page with the probe URL as its argument; resolves to
# "load" or "error" (what the browser itself saw), never throws.
PROBE_FUNCTION = """(url) => new Promise((resolve) => {
  const image = new Image();
  image.onload = () => resolve("load");
  image.onerror = () => resolve("error");
  image.src = url;
})"""

UNPROVEN = "could not run: the route to the inspector is not proven"
# How a Chromium-family browser is routed, for the messages below (Firefox names its own).
CHROMIUM_ROUTING = "the routing flags --host-resolver-rules and --ignore-certificate-errors-spki-list"


class RouteNotProven(Exception):
    """A probe did not reach the inspector; the message is one line saying why."""


def new_nonce() -> str:
    """A fresh random nonce (32 hex digits)."""
    return secrets.token_hex(16)


def probe_url(nonce: str) -> str:
    """The URL a routed page loads to prove its route."""
    return f"https://{REFINE_HOST}{PROBE_PATH}/{nonce}.gif"


def probe_expression(nonce: str) -> str:
    """A JavaScript expression (a Promise) that loads the probe image, for DevTools ``Runtime.evaluate``."""
    return f"({PROBE_FUNCTION})({probe_url(nonce)!r})"


class ProbeLog:
    """The nonces of probes that arrived (the newest ``MAX_KEPT``), with a way to wait for one."""

    def __init__(self, kept: int = MAX_KEPT) -> None:
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._kept = kept
        self._changed = threading.Condition()

    def saw(self, nonce: str) -> None:
        """Note that the probe ``nonce`` arrived."""
        with self._changed:
            self._seen[nonce] = None
            self._seen.move_to_end(nonce)
            while len(self._seen) > self._kept:
                self._seen.popitem(last=False)
            self._changed.notify_all()

    def seen(self, nonce: str) -> bool:
        """True when the probe ``nonce`` arrived (and is among the newest kept)."""
        with self._changed:
            return nonce in self._seen

    def wait(self, nonce: str, timeout: float, cancel: threading.Event | None = None) -> bool:
        """Wait up to ``timeout`` seconds for the probe ``nonce``; True once it arrived."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while nonce not in self._seen:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (cancel is not None and cancel.is_set()):
                    return False
                self._changed.wait(min(remaining, 0.5))
            return True


def prove_route(load_in_page: Callable[[str], str], wait_seen: Callable[[str, float], bool], *,
                where: str = "the page", timeout: float = PROBE_WAIT, page_policy: bool = True,
                routing: str = CHROMIUM_ROUTING) -> str:
    """Load one probe through ``load_in_page(nonce) -> "load"|"error"|…`` and wait for it to arrive.

    ``wait_seen(nonce, seconds)`` asks the inspector. ``page_policy``: the page
    may have a Content-Security-Policy (said as a possible cause). ``routing`` names
    what routes the browser (said when the probe went elsewhere). Returns the
    nonce; raises :class:`RouteNotProven` with the reason when it did not arrive.
    """
    nonce = new_nonce()
    started = time.monotonic()
    try:
        outcome = load_in_page(nonce)
    except Exception as exc:  # the page's or the driver's failure: say it, do not pass
        raise RouteNotProven(f"the probe could not be started in {where}: {exc}") from exc
    # A failed load needs no long wait: only a request already in flight can still arrive.
    left = timeout - (time.monotonic() - started)
    left = max(0.5, min(left, 1.0) if outcome == "error" else left)
    if wait_seen(nonce, left):
        return nonce
    url = probe_url(nonce)
    if outcome == "load":
        raise RouteNotProven(f"{where} loaded the probe {url}, but it never reached this inspector: "
                             f"telemetry.refine.dev is answered by something else; {routing} did not take "
                             f"effect: a wrapper, a managed browser policy or a proxy")
    if outcome == "error":
        policy = ", or the page's Content-Security-Policy blocks images from it" if page_policy else ""
        raise RouteNotProven(f"{where} could not load the probe {url}: {routing} did not take effect{policy}")
    raise RouteNotProven(f"the probe from {where} did not reach this inspector within {timeout:g} s: {outcome}")
