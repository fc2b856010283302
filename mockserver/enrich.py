"""What the real server derives from a request's headers and peer.

refine's telemetry server says it collects the IP address, the app's
hostname, the browser and the OS. We compute the same facts so a user sees
them next to what the app put in the payload.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Mapping
from urllib.parse import urlsplit

# Low-entropy hints are sent by default on HTTPS; the rest only when asked for.
_CLIENT_HINTS = {
    "sec-ch-ua": "brands",
    "sec-ch-ua-mobile": "mobile",
    "sec-ch-ua-platform": "platform",
    "sec-ch-ua-platform-version": "platform_version",
    "sec-ch-ua-arch": "arch",
    "sec-ch-ua-model": "model",
    "sec-ch-ua-full-version-list": "full_version_list",
}


def preload() -> None:
    """Import the User-Agent parser now (``InspectorServer.start`` does it in the background).

    ``user_agents`` compiles ua-parser's regex tables at import, ~0.1 s: every
    process that imported this module paid it at start-up, the window before it
    could show a journal. Now the first User-Agent parsed pays it, unless this ran first.
    """
    import user_agents  # noqa: F401


@lru_cache(maxsize=4096)
def parse_user_agent(ua: str) -> dict[str, Any]:
    """Browser, OS and device facts for a User-Agent string.

    Cached per string: an uncached parse costs about a millisecond and a
    running app sends the same string every time.
    """
    from user_agents import parse as parse_user_agent_string

    parsed = parse_user_agent_string(ua)
    return {
        "browser": {"family": parsed.browser.family, "version": parsed.browser.version_string},
        "os": {"family": parsed.os.family, "version": parsed.os.version_string},
        "device": parsed.device.family,
        "is_mobile": parsed.is_mobile,
        "is_bot": parsed.is_bot,
    }


def header_value(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive header lookup on a plain dict (None when absent)."""
    value = headers.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value
    return None


def app_hostname(headers: Mapping[str, str]) -> str | None:
    """The app's host as the browser reports it: ``Origin``, else ``Referer``."""
    for name in ("Origin", "Referer"):
        value = header_value(headers, name)
        if value and value != "null":
            try:
                host = urlsplit(value).hostname
            except ValueError:
                host = None
            if host:
                return host
    return None


def client_ip(peer: str | None, headers: Mapping[str, str], trust_proxy: bool) -> str | None:
    """The peer address; the first ``X-Forwarded-For`` hop only when trusted."""
    if trust_proxy:
        forwarded = header_value(headers, "X-Forwarded-For")
        if forwarded:
            first = forwarded.split(",")[0].strip()
            if first:
                return first
    return peer


def client_hints(headers: Mapping[str, str]) -> dict[str, str]:
    """``Sec-CH-UA*`` headers present on the request, under short names."""
    hints = {}
    for key, value in headers.items():
        short = _CLIENT_HINTS.get(key.lower())
        if short:
            hints[short] = value.strip('"') if short in ("platform", "platform_version", "arch", "model") else value
    return hints


def client_facts(peer: str | None, headers: Mapping[str, str], trust_proxy: bool = False) -> dict[str, Any]:
    """All header-derived facts for the record's ``client`` field."""
    ua = header_value(headers, "User-Agent")
    facts: dict[str, Any] = {
        "ip": client_ip(peer, headers, trust_proxy),
        "hostname": app_hostname(headers),
        "host": header_value(headers, "Host"),
        "user_agent": ua,
    }
    if ua:
        parsed = parse_user_agent(ua)
        # Copy the cached nested dicts: records must not share mutable state.
        facts.update(parsed, browser=dict(parsed["browser"]), os=dict(parsed["os"]))
    else:
        facts.update({"browser": None, "os": None, "device": None, "is_mobile": None, "is_bot": None})
    facts["client_hints"] = client_hints(headers)
    return facts
