"""What else an app contacted besides telemetry.refine.dev: its other egress, listed beside the verdict.

refine's opt-out stops one host. The app and its tooling reach others (the CLI's announcements,
the devtools feed, the update notifier, create-refine-app's templates), and a QA proving
"nothing phones home" wants them in view. The sources differ (a browser's DevTools Network
events, the scoped proxy, the Node preload's lookups and connections); each turns what it saw
into :class:`OtherRequest`, and this module names the known hosts, writes the lines and the JSON
form, and says whether ``--egress none`` is broken. Qt-free and I/O-free.

Loopback destinations (the app's own dev server, the devtools server on localhost) are the app
talking to itself, not egress: :func:`leaves_machine` keeps them off the list.
"""

from __future__ import annotations

import ipaddress
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from mockserver.core.text import plural, printable

EGRESS_POLICIES = ("any", "none")
_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})

# (host, path fragment or "", what it is). The first match wins, so specific paths come first.
KNOWN_HOSTS: tuple[tuple[str, str, str], ...] = (
    ("raw.githubusercontent.com", "ANNOUNCEMENTS.md", "refine CLI announcements (refine dev)"),
    ("raw.githubusercontent.com", "FEED.md", "refine devtools feed (@refinedev/devtools-server)"),
    # A tunnel shows only host:443 (a proxied Firefox, run --proxy-port): the file is not known.
    ("raw.githubusercontent.com", "", "GitHub files (refine's announcements and devtools feed come from here)"),
    ("registry.npmjs.org", "", "update notifier: the npm registry"),
    ("codeload.github.com", "", "create-refine-app templates"),
)

# The browser's own background traffic, which a page did not ask for (Firefox's services reach
# the proxy too). Listed, marked as the browser's, and never counted against ``--egress none``.
BROWSER_SERVICE_SUFFIXES = (
    ".mozilla.com", ".mozilla.net", ".mozilla.org", ".firefox.com", ".mozgcp.net",
    ".googleapis.com", ".gvt1.com", ".gstatic.com", "clients2.google.com", "accounts.google.com",
)


def known_host(host: str, url: str = "") -> str | None:
    """What a refine-related ``host`` (and ``url``) is, in words, or None when it is not one we know."""
    host = host.lower().rstrip(".")
    for known, fragment, what in KNOWN_HOSTS:
        if host == known and (not fragment or fragment in url):
            return what
    return None


def is_browser_service(host: str) -> bool:
    """Whether ``host`` is one of the browser's own services (updates, safe browsing, settings)."""
    host = host.lower().rstrip(".")
    return any(host == suffix.lstrip(".") or host.endswith(suffix) for suffix in BROWSER_SERVICE_SUFFIXES)


def leaves_machine(host: str) -> bool:
    """False for loopback destinations (``localhost``, 127.0.0.0/8, ``::1``): the app talking to itself."""
    host = host.lower().strip("[]").rstrip(".")
    if host in _LOOPBACK_NAMES or host.endswith(".localhost"):
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True


def url_without_query(url: str) -> str:
    """``url`` with its query and fragment dropped (``?…`` marked), for the default listing."""
    parts = urllib.parse.urlsplit(url)
    if not parts.query and not parts.fragment:
        return url
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")) + ("?…" if parts.query else "")


@dataclass(frozen=True)
class OtherRequest:
    """One request, connection or name lookup to a host other than telemetry.refine.dev.

    ``method`` is the HTTP method, ``CONNECT`` for a tunnel or a TCP/TLS connection, ``LOOKUP``
    for a name looked up (Node's ``dns.lookup``). ``url`` is the full URL (query included: the
    front ends decide what to show), or ``host:port`` for a connection, or the host for a
    lookup. ``source`` says who saw it: ``browser`` (DevTools), ``proxy`` or ``node``.
    ``status`` is the HTTP answer when there was one, ``failure`` why it failed, ``answer``
    what came back when it was not HTTP (``connected to 203.0.113.80``, a lookup's addresses).
    ``browser_own``: the browser's own background traffic, not the page's.
    """

    method: str
    url: str
    host: str
    source: str
    status: int | None = None
    failure: str | None = None
    at: str | None = None
    browser_own: bool = False
    answer: str | None = None

    @property
    def known(self) -> str | None:
        """What this host is, when it is one of refine's own (announcements, feed, notifier, templates)."""
        return known_host(self.host, self.url)

    @property
    def counts(self) -> bool:
        """Whether it counts against ``--egress none``: the app's, not the browser's own."""
        return not self.browser_own

    def shown_url(self, full: bool = False) -> str:
        """The URL as listed: without its query unless ``full``."""
        return self.url if full else url_without_query(self.url)

    def outcome(self) -> str:
        """``200``, ``failed: net::ERR_NAME_NOT_RESOLVED``, the ``answer`` (``connected to …``) or ``no answer``."""
        if self.failure:
            return f"failed: {self.failure}"
        if self.status is not None:
            return str(self.status)
        return self.answer or "no answer"

    def line(self, full: bool = False) -> str:
        """One terminal-safe line: method, URL, outcome, and what the host is when known."""
        what = self.known or ("the browser's own traffic" if self.browser_own else None)
        text = f"{self.method} {self.shown_url(full)} → {self.outcome()}" + (f" — {what}" if what else "")
        return printable(text)

    def to_dict(self, full: bool = False) -> dict[str, Any]:
        """The JSON form (``--json``'s ``other_requests``); the query only when ``full``."""
        return {"method": self.method, "url": self.shown_url(full), "host": self.host, "source": self.source,
                "status": self.status, "failure": self.failure, "at": self.at, "known": self.known,
                "browser_own": self.browser_own, "answer": self.answer, "query_shown": full or "?" not in self.url}


def egress_hosts(requests: Iterable[OtherRequest]) -> list[str]:
    """The distinct hosts that count against ``--egress none``, in first-seen order."""
    return list(dict.fromkeys(r.host for r in requests if r.counts))


def egress_failure(requests: Iterable[OtherRequest], policy: str) -> str | None:
    """Why ``policy`` (``--egress``) is broken by ``requests``, or None when it holds."""
    if policy != "none":
        return None
    hosts = egress_hosts(requests)
    if not hosts:
        return None
    return f"--egress none: {plural(len(hosts), 'other host')} contacted ({', '.join(hosts)})"


def egress_lines(requests: Iterable[OtherRequest], full: bool = False, indent: str = "    ") -> list[str]:
    """The listing under the verdict: a title, then one line per request (nothing when there are none)."""
    listed = list(requests)
    if not listed:
        return []
    hosts = list(dict.fromkeys(r.host for r in listed))
    title = f"Other hosts contacted ({plural(len(hosts), 'host')}, {plural(len(listed), 'request')}):"
    return [title, *(indent + r.line(full) for r in listed)]


def check_policy(text: str) -> str:
    """``--egress``'s value, checked (``any`` or ``none``); raises ValueError with a one-line message."""
    value = text.strip().lower()
    if value not in EGRESS_POLICIES:
        raise ValueError(f"--egress must be any or none; got {text!r}")
    return value
