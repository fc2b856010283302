"""``run --proxy-port``: programs that honour HTTPS_PROXY (curl, Python) routed through run's own scoped proxy.

Real curl, real Python clients, real sockets. Another host is a real server on this machine's
own non-loopback address (the network is closed here); the proxy lists what it relayed there
beside the verdict (source ``proxy``). "Nothing was sent" needs a proof in that run: the
preload's probe, a request that came through the proxy, or the program's other connections
through it; else exit 2.
"""

from __future__ import annotations

import os
import shutil
import sys
from urllib.parse import quote

import pytest

from mockserver.core.payloads import beacon_payload, btoa_json
from mockserver.reach.noderun import DIRECT, ENV_CA_FILE, RoutedNode
from mockserver.serving.probe import UNPROVEN
from tests.support.pages import answering_server, outward_address
from tests.test_noderun import run_cli
from tests.test_noderun_egress import PREFIX, listing

PAYLOAD = beacon_payload("4.58.0", resources=3)
TELEMETRY = f"https://telemetry.refine.dev/telemetry?payload={quote(btoa_json(PAYLOAD), safe='')}"
needs_curl = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")


@pytest.fixture(scope="module")
def address() -> str:
    """This machine's non-loopback address: another host, as far as the listing is concerned."""
    return outward_address()


def curl(*args: str) -> list[str]:
    """``sh -c 'curl … "$@"'``: curl as the program, the mock's CA from run's environment."""
    return ["sh", "-c", f'curl -sS -o /dev/null -w "%{{http_code}}\\n" --cacert "${ENV_CA_FILE}" "$@"', "curl", *args]


def test_the_child_is_pointed_at_the_proxy_and_loopback_stays_direct():
    base = {"PATH": os.environ["PATH"], "HTTPS_PROXY": "http://corp:3128", "NO_PROXY": ".corp"}
    with RoutedNode(proxy_port=0) as routed:
        assert routed.listening and routed.listening.proxy_url
        env = routed.env(base)
        proxy = routed.listening.proxy_url
    assert proxy.startswith("http://127.0.0.1:")
    assert {name: env[name] for name in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy")} == \
        dict.fromkeys(("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"), proxy)
    assert (env["NO_PROXY"], env["no_proxy"], env["NODE_USE_ENV_PROXY"]) == (DIRECT, DIRECT, "1")
    assert DIRECT == "localhost,127.0.0.1,::1"
    assert env[ENV_CA_FILE].endswith("/tls/ca.pem")


@needs_curl
def test_curl_through_runs_proxy_is_captured_and_judged():
    passed = run_cli("--proxy-port", "0", "--expect", "1", "--", *curl(TELEMETRY))
    assert passed.returncode == 0, passed.stderr
    assert passed.stdout == "200\n"  # the program's own output, untouched
    lines = passed.stderr.splitlines()
    assert any(line.startswith(f"{PREFIX}proxy http://127.0.0.1:") for line in lines)
    assert any("beacon     ok      GET /telemetry  refine 4.58.0 · 3 resources" in line for line in lines)
    assert lines[-2:] == [f"{PREFIX}route proven: 1 request to telemetry.refine.dev came through the proxy",
                          f"{PREFIX}PASS: expected exactly 1 request, got 1"]
    failed = run_cli("--proxy-port", "0", "--expect", "none", "--", *curl(TELEMETRY))
    assert failed.returncode == 1, failed.stderr
    assert f"{PREFIX}FAIL: expected no request, got 1" in failed.stderr.splitlines()


@needs_curl
def test_curl_without_the_ca_is_could_not_run_not_a_pass():
    # curl refuses the mock's certificate: the CONNECT came, no request did. Nothing "was sent",
    # but an app that does trust its CA would have sent: not a pass.
    program = ["curl", "-sS", "-o", "/dev/null", TELEMETRY]
    result = run_cli("--proxy-port", "0", "--expect", "none", "--", *program)
    assert result.returncode == 2, result.stderr
    assert "PASS" not in result.stderr
    assert result.stderr.splitlines()[-1] == (
        f"{PREFIX}{UNPROVEN} (no Node process of curl sent the routing preload's probe: NODE_OPTIONS was dropped "
        "or replaced, the program is not Node (Bun and Deno are not routed), or it ended at once; the proxy "
        "tunneled 1 connection to telemetry.refine.dev but no request came through: the program does not trust "
        "the mock's CA ($TELEMETRY_INSPECTOR_CA_FILE))")


def test_python_requests_through_runs_proxy_lists_the_other_host(address):
    pytest.importorskip("requests")
    script = ("import os, sys, requests\n"
              f"ca = os.environ['{ENV_CA_FILE}']\n"
              "print(requests.get(sys.argv[1], verify=ca, timeout=30).status_code)\n"
              "print(requests.get(sys.argv[2], timeout=30).text)\n")
    with answering_server(address) as port:
        other = f"http://{address}:{port}/feed?token=secret"
        result = run_cli("--proxy-port", "0", "--expect", "1", "--", sys.executable, "-c", script, TELEMETRY, other)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "200\nanswer from /feed?token=secret\n"
    assert listing(result.stderr) == ["Other hosts contacted (1 host, 1 request):",
                                      f"GET http://{address}:{port}/feed?… → 200"]  # from the proxy's log
    assert result.stderr.splitlines()[-1] == f"{PREFIX}PASS: expected exactly 1 request, got 1"


def test_a_proxy_client_sending_nothing_is_proven_by_its_other_connections(address):
    script = "import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=30).status)"
    with answering_server(address) as port:
        result = run_cli("--proxy-port", "0", "--expect", "none", "--full-urls", "--", sys.executable, "-c",
                         script, f"http://{address}:{port}/ping?x=1")
    assert result.returncode == 0, result.stderr
    assert listing(result.stderr) == ["Other hosts contacted (1 host, 1 request):",
                                      f"GET http://{address}:{port}/ping?x=1 → 200"]
    assert result.stderr.splitlines()[-2:] == [
        f"{PREFIX}route proven: 1 connection of the program went through the proxy (it honours HTTPS_PROXY)",
        f"{PREFIX}PASS: expected no request, got 0"]


@needs_curl
def test_loopback_goes_direct_and_a_forced_loopback_request_is_passed_through_untouched():
    with answering_server("127.0.0.1") as port:
        url = f"http://127.0.0.1:{port}/own?page=1"
        direct = run_cli("--proxy-port", "0", "--expect", "none", "--", "curl", "-sS", url)
        forced = run_cli("--proxy-port", "0", "--expect", "none", "--", "curl", "-sS", "--noproxy", "", url)
    # NO_PROXY kept it off the proxy: nothing proves the route, so no pass.
    assert direct.returncode == 2, direct.stderr
    assert direct.stdout == "answer from /own?page=1"
    assert direct.stderr.splitlines()[-1].endswith(
        "; nothing went through the proxy either (the program does not honour HTTPS_PROXY))")
    # Through the proxy: relayed byte for byte, not a record, not egress (loopback), and a proof.
    assert forced.returncode == 0, forced.stderr
    assert forced.stdout == "answer from /own?page=1"
    assert listing(forced.stderr) == []
    assert forced.stderr.splitlines()[-2:] == [
        f"{PREFIX}route proven: 1 connection of the program went through the proxy (it honours HTTPS_PROXY)",
        f"{PREFIX}PASS: expected no request, got 0"]


def test_a_program_that_ignores_the_proxy_is_could_not_run():
    result = run_cli("--proxy-port", "0", "--expect", "none", "--", "true")
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == (
        f"{PREFIX}{UNPROVEN} (no Node process of true sent the routing preload's probe: NODE_OPTIONS was dropped or "
        "replaced, the program is not Node (Bun and Deno are not routed), or it ended at once; nothing went "
        "through the proxy either (the program does not honour HTTPS_PROXY))")


def test_a_busy_proxy_port_is_one_line():
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("--proxy-port", str(port), "--", "true")
    assert result.returncode == 2
    assert result.stderr == (f"{PREFIX}cannot start the mock: proxy port {port} on 127.0.0.1 is already in use "
                             "(pick another with --proxy-port, or 0 for a free one)\n")
