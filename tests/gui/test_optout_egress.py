"""The opt-out check lists the other hosts contacted during it, beside an unchanged verdict.

Two real sources: the page of a headless Chromium the window started (its DevTools Network
events), and the window's own scoped proxy (a client pointed at it with ``curl -x``). The other
host is this machine's own non-loopback address, a real server there.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.pages import outward_address, serve_pages

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX shell wrappers start the browser")


def headless(wrapper: Path, chromium: str) -> str:
    wrapper.write_text(f'#!/bin/sh\nexec {chromium} --headless --disable-gpu "$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper)


@pytest.fixture
def other_site() -> Iterator[str]:
    yield from serve_pages(outward_address(), {})


@pytest.fixture
def polling_app(other_site: str) -> Iterator[str]:
    """An app that reaches the other host every 300 ms (with a query) and sends nothing to refine."""
    page = (f"<!doctype html><title>app</title><script>setInterval(() => "
            f"fetch('{other_site}/tick?user=someone'), 300)</script>").encode()
    yield from serve_pages("127.0.0.1", {"/": ("text/html", page)})


def test_the_pages_other_hosts_are_listed_and_the_verdict_stays_pass(window, chromium, polling_app, other_site,
                                                                     tmp_path, monkeypatch, qtbot):
    monkeypatch.setenv("TELEMETRY_INSPECTOR_BROWSER", headless(tmp_path / "chromium-headless", chromium))
    job = window.open_routed_browser(polling_app + "/")
    with qtbot.waitSignal(job.finished, timeout=60000):
        pass
    assert job.error is None and job.result.route.proven, job.error
    panel = window.optout
    assert not panel.others.isVisibleTo(panel) and panel.other_requests() == []  # no check, no list
    assert window.start_opt_out_check()
    qtbot.waitUntil(lambda: not panel.proving and panel.others.count() >= 2, timeout=30000)
    assert panel.headline.text() == "PASS"  # other hosts never change the telemetry verdict
    lines = {panel.others.item(i).text() for i in range(panel.others.count())}
    assert lines == {f"GET {other_site}/tick?… → 200"}  # the query is not shown
    host = other_site.split("//")[1].split(":")[0]
    count = panel.others.count()
    assert panel.others_title.text() == (f"Other hosts contacted during the check (1 host, {count} requests; "
                                         "not telemetry, the verdict is unchanged):")
    assert {r.host for r in panel.other_requests()} == {host}
    assert all(r.source == "browser" and r.at >= panel.since_iso for r in panel.other_requests())
    assert panel.others.isVisibleTo(panel)


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
def test_a_client_through_the_windows_proxy_is_listed(make_window, db_path, other_site, qtbot):
    window = make_window(db_path, proxy_port=0)
    proxy = window.server.listening.proxy_url
    panel = window.optout
    assert window.start_opt_out_check()
    done = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-x", proxy, f"{other_site}/via-proxy?k=v"],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    qtbot.waitUntil(lambda: panel.others.count() == 1, timeout=10000)  # the ticker redraws every second
    assert panel.others.item(0).text() == f"GET {other_site}/via-proxy?… → 200"
    [request] = panel.other_requests()
    assert (request.source, request.status) == ("proxy", 200)
    # Without a browser the window started, nothing was proven: the verdict says so, the list stays.
    assert panel.headline.text() == "NOT PROVEN"
