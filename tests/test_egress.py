"""The other-egress listing: known refine hosts, loopback left out, the query hidden, ``--egress none``."""

from __future__ import annotations

import pytest

from mockserver.records.egress import (
    OtherRequest,
    check_policy,
    egress_failure,
    egress_hosts,
    egress_lines,
    known_host,
    leaves_machine,
    url_without_query,
)
from mockserver.records.verdict import Expectation, judge

ANNOUNCEMENTS = "https://raw.githubusercontent.com/refinedev/refine/master/packages/cli/ANNOUNCEMENTS.md"


def other(url: str = ANNOUNCEMENTS, host: str = "raw.githubusercontent.com", **kw: object) -> OtherRequest:
    return OtherRequest(method=str(kw.pop("method", "GET")), url=url, host=host, source="node", **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(("host", "url", "what"), [
    ("raw.githubusercontent.com", ANNOUNCEMENTS, "refine CLI announcements (refine dev)"),
    ("raw.githubusercontent.com", "https://raw.githubusercontent.com/refinedev/refine/main/FEED.md",
     "refine devtools feed (@refinedev/devtools-server)"),
    ("registry.npmjs.org", "https://registry.npmjs.org/@refinedev%2fcli", "update notifier: the npm registry"),
    ("CodeLoad.GitHub.com.", "https://codeload.github.com/refinedev/refine/tar.gz/master",
     "create-refine-app templates"),
    ("raw.githubusercontent.com", "raw.githubusercontent.com:443",
     "GitHub files (refine's announcements and devtools feed come from here)"),
    ("example.com", "https://example.com/", None),
])
def test_known_refine_hosts_are_named(host: str, url: str, what: str | None) -> None:
    assert known_host(host, url) == what


@pytest.mark.parametrize(("host", "leaves"), [
    ("localhost", False), ("LOCALHOST.", False), ("app.localhost", False), ("127.0.0.1", False),
    ("127.8.9.10", False), ("::1", False), ("[::1]", False), ("10.0.0.1", True), ("192.168.1.5", True),
    ("example.com", True), ("::ffff:8.8.8.8", True),
])
def test_loopback_is_not_egress(host: str, leaves: bool) -> None:
    assert leaves_machine(host) is leaves


def test_the_query_is_shown_only_in_full_mode() -> None:
    request = other("https://api.example.com/track?email=dev%40example.com#frag", "api.example.com", status=204)
    assert url_without_query(request.url) == "https://api.example.com/track?…"
    assert request.line() == "GET https://api.example.com/track?… → 204"
    assert request.line(full=True) == "GET https://api.example.com/track?email=dev%40example.com#frag → 204"
    assert request.to_dict()["url"] == "https://api.example.com/track?…"
    assert request.to_dict()["query_shown"] is False
    assert request.to_dict(full=True)["query_shown"] is True
    assert url_without_query("https://example.com/a#only-fragment") == "https://example.com/a"


def test_lines_name_the_outcome_and_the_known_host() -> None:
    failed = other(failure="getaddrinfo ENOTFOUND raw.githubusercontent.com")
    assert failed.line() == (f"GET {ANNOUNCEMENTS} → failed: getaddrinfo ENOTFOUND raw.githubusercontent.com"
                             " — refine CLI announcements (refine dev)")
    tunnel = OtherRequest("CONNECT", "push.services.mozilla.com:443", "push.services.mozilla.com", "proxy",
                          browser_own=True)
    assert tunnel.line() == "CONNECT push.services.mozilla.com:443 → no answer — the browser's own traffic"
    assert egress_lines([failed, tunnel, failed])[0] == "Other hosts contacted (2 hosts, 3 requests):"
    assert egress_lines([]) == []
    # Terminal-safe: a hostile URL cannot move the cursor.
    assert "\x1b" not in other("https://evil.example/\x1b[2J", "evil.example", status=200).line()


def test_egress_none_fails_on_the_apps_hosts_only() -> None:
    own = OtherRequest("CONNECT", "firefox.settings.services.mozilla.com:443",
                       "firefox.settings.services.mozilla.com", "proxy", browser_own=True)
    app = other(status=200)
    assert egress_failure([own], "none") is None
    assert egress_failure([own, app, app], "none") == (
        "--egress none: 1 other host contacted (raw.githubusercontent.com)")
    assert egress_failure([app], "any") is None
    assert egress_hosts([app, own, other("https://registry.npmjs.org/x", "registry.npmjs.org")]) == [
        "raw.githubusercontent.com", "registry.npmjs.org"]


def test_the_telemetry_verdict_is_unchanged_by_other_hosts() -> None:
    app = other(status=200)
    relaxed = judge([], Expectation.parse("none"), others=[app])
    assert relaxed.passed and relaxed.summary() == "PASS: expected no request, got 0"
    assert relaxed.to_dict()["other_requests"][0]["host"] == "raw.githubusercontent.com"
    strict = judge([], Expectation.parse("none"), others=[app], egress="none")
    assert not strict.passed
    assert strict.summary() == ("FAIL: expected no request, got 0; "
                                "--egress none: 1 other host contacted (raw.githubusercontent.com)")
    assert strict.to_dict()["egress"] == "none"


def test_check_policy() -> None:
    assert check_policy(" NONE ") == "none"
    with pytest.raises(ValueError, match=r"^--egress must be any or none; got 'some'$"):
        check_policy("some")


def test_the_proxys_log_becomes_other_requests_without_loopback() -> None:
    from mockserver.serving.egress import EgressLog

    log = EgressLog()
    tunnel = log.open("raw.githubusercontent.com", 443, "CONNECT", "127.0.0.1:5000")
    log.update(tunnel, outcome="failed: Name or service not known")
    log.close(tunnel)
    forwarded = log.open("192.0.2.7", 8080, "GET", "127.0.0.1:5001", "http://192.0.2.7:8080/a?b=c")
    log.update(forwarded, status=404)
    log.close(forwarded)
    log.open("127.0.0.1", 5173, "GET", "127.0.0.1:5002", "http://127.0.0.1:5173/")  # loopback: not egress
    v6 = log.open("2001:db8::1", 443, "CONNECT", "[::1]:5003")
    mozilla = log.open("firefox.settings.services.mozilla.com", 443, "CONNECT", "127.0.0.1:5004")
    others = log.other_requests(browser=True)  # a browser's private proxy: its services are its own
    assert [(r.method, r.url, r.host, r.status, r.failure, r.browser_own, r.source) for r in others] == [
        ("CONNECT", "raw.githubusercontent.com:443", "raw.githubusercontent.com", None,
         "Name or service not known", False, "proxy"),
        ("GET", "http://192.0.2.7:8080/a?b=c", "192.0.2.7", 404, None, False, "proxy"),
        ("CONNECT", "[2001:db8::1]:443", "2001:db8::1", None, None, False, "proxy"),
        ("CONNECT", "firefox.settings.services.mozilla.com:443", "firefox.settings.services.mozilla.com", None,
         None, True, "proxy"),
    ]
    assert others[0].at == tunnel.started_at
    assert log.other_requests(since=mozilla.started_at)[-1].host == mozilla.host
    assert len(log.other_requests(since="9999")) == 0
    assert v6.outcome == "open"
    # Any other client (run's proxy, the window's): a Mozilla host is the program's request, and counts.
    assert [r.browser_own for r in log.other_requests()] == [False, False, False, False]
