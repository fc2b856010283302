"""``telemetry-inspector run``: real Node programs with telemetry.refine.dev routed to the mock.

``tests/noderun/send.js`` posts a refine-CLI-like body to
https://telemetry.refine.dev/cli with ``https.request``, the global ``fetch``
(undici), node-fetch v2 (what @refinedev/cli uses) or plain ``http``, and
honours ``REFINE_NO_TELEMETRY=true`` as the refine CLI does.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mockserver.reach.noderun import RoutedNode, ca_bundle, node_options_with_preload, preload_path, routed_node_env

ROOT = Path(__file__).resolve().parents[1]
NODE_DIR = ROOT / "tests" / "noderun"
SEND = NODE_DIR / "send.js"

node = shutil.which("node")
needs_node = pytest.mark.skipif(node is None, reason="needs Node.js (scripts/install-test-deps)")


def node_version() -> str:
    """``process.version`` of the Node.js the tests run (what send.js reports)."""
    return subprocess.run([node or "node", "--version"], capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture(scope="module")
def node_fetch_installed() -> None:
    """node-fetch v2 from tests/noderun/package-lock.json (npm ci only when missing)."""
    if (NODE_DIR / "node_modules" / "node-fetch" / "package.json").exists():
        return
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("needs npm to install node-fetch for this test")
    subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, check=True, capture_output=True,
                   timeout=300)


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = dict(os.environ)
    base.pop("REFINE_NO_TELEMETRY", None)
    base.update(env or {})
    return subprocess.run([sys.executable, "-m", "mockserver", "run", *args], cwd=ROOT, env=base,
                          capture_output=True, text=True, timeout=120)


# -- pieces -----------------------------------------------------------------------

def test_preload_ships_inside_the_package():
    path = preload_path()
    assert path.is_file() and path.name == "route-refine.cjs"
    assert "dns.lookup" in path.read_text() and "tls.connect" in path.read_text()


def test_node_options_keep_the_users_and_quote_awkward_paths():
    assert node_options_with_preload(None, Path("/opt/p.cjs")) == "--require /opt/p.cjs"
    assert node_options_with_preload("--max-old-space-size=4096", Path("/opt/p.cjs")) == \
        "--max-old-space-size=4096 --require /opt/p.cjs"
    assert node_options_with_preload("", Path("/my dir/p.cjs")) == '--require "/my dir/p.cjs"'
    assert node_options_with_preload(None, Path("C:\\Users\\qa\\p.cjs")) == '--require "C:\\\\Users\\\\qa\\\\p.cjs"'


def test_routed_env(tmp_path):
    env = routed_node_env({"PATH": "/bin", "NODE_OPTIONS": "--trace-warnings"}, https_port=4443,
                          http_port=8080, ca_file=tmp_path / "ca.pem")
    assert env["PATH"] == "/bin"
    assert env["NODE_OPTIONS"].startswith("--trace-warnings --require ")
    assert env["NODE_EXTRA_CA_CERTS"] == str(tmp_path / "ca.pem")
    assert env["TELEMETRY_INSPECTOR_HTTPS_PORT"] == "4443" and env["TELEMETRY_INSPECTOR_HTTP_PORT"] == "8080"


def test_ca_bundle_keeps_the_users_own_extra_ca(tmp_path):
    ours = tmp_path / "ours.pem"
    ours.write_bytes(b"-----OURS-----\n")
    assert ca_bundle(ours, None, tmp_path) == ours
    assert ca_bundle(ours, str(tmp_path / "missing.pem"), tmp_path) == ours
    theirs = tmp_path / "corp.pem"
    theirs.write_bytes(b"-----CORP-----")
    bundle = ca_bundle(ours, str(theirs), tmp_path)
    assert bundle.read_bytes() == b"-----CORP-----\n-----OURS-----\n"


# -- real Node programs ----------------------------------------------------------------

def node_json(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


@needs_node
@pytest.mark.parametrize("mode", ["https", "fetch", "node-fetch", "http"])
def test_each_way_node_posts_reaches_the_mock(mode, node_fetch_installed):
    with RoutedNode() as routed:
        result = subprocess.run([node, str(SEND), mode], env=routed.env(), capture_output=True, text=True,
                                timeout=60)
        assert result.returncode == 0, result.stderr
        assert node_json(result.stdout) == {"mode": mode, "status": 200, "body": '{"ok": true}'}
        [record] = routed.store.query()
    assert record.kind == "cli" and record.status == "ok"
    assert record.payload["projectId"] == f"node-{mode}" and record.payload["command"] == "build"
    assert record.request.scheme == ("http" if mode == "http" else "https")
    assert record.request.headers.get("Host", "").startswith("telemetry.refine.dev")


@needs_node
def test_dns_lookup_every_form_maps_only_the_refine_host():
    with RoutedNode() as routed:
        result = subprocess.run([node, str(SEND), "dns"], env=routed.env(), capture_output=True, text=True,
                                timeout=60)
    assert result.returncode == 0, result.stderr
    found = node_json(result.stdout)
    mapped = {"address": "127.0.0.1", "family": 4}
    assert found["callback"] == found["callbackOptions"] == found["promises"] == found["promisified"] == mapped
    assert found["callbackAll"] == found["promisesAll"] == [mapped]
    assert found["other"]["address"] in ("127.0.0.1", "::1")  # localhost resolved normally


@needs_node
def test_tls_is_still_verified_the_ca_is_what_makes_it_trusted():
    with RoutedNode() as routed:
        env = routed.env()
        del env["NODE_EXTRA_CA_CERTS"]
        result = subprocess.run([node, str(SEND), "https"], env=env, capture_output=True, text=True, timeout=60)
        assert routed.store.count() == 0
    assert result.returncode == 3
    assert "certificate" in result.stderr.lower() or "CERT" in result.stderr


@needs_node
def test_run_shows_what_was_sent_and_passes_the_childs_status():
    result = run_cli("--", node, str(SEND), "https")
    assert result.returncode == 0, result.stderr
    assert node_json(result.stdout)["status"] == 200  # the program's stdout is its own
    assert "cli        ok      POST /cli  projectId node-https" in result.stderr
    # What the CLI sent, decoded, right under its line.
    lines = result.stderr.splitlines()
    at = next(n for n, line in enumerate(lines) if "POST /cli  projectId node-https" in line)
    assert lines[at + 1:at + 5] == ["    payload (utf-8):", "      {", '        "nodeEnv": "development",',
                                    f'        "nodeVersion": "{node_version()}",']
    assert '        "command": "build",' in lines[at + 5:at + 20]
    assert "1 request to telemetry.refine.dev" in result.stderr

    failing = run_cli("--", node, "-e", "process.exit(7)")
    assert failing.returncode == 7
    assert "exited with status 7" in failing.stderr


@needs_node
def test_run_expect_none_passes_when_refine_no_telemetry_is_true():
    result = run_cli("--expect", "none", "--", node, str(SEND), "node-fetch", env={"REFINE_NO_TELEMETRY": "true"})
    assert result.returncode == 0, result.stderr
    assert "PASS: expected no request, got 0" in result.stderr
    assert "telemetry-inspector run: route proven: the routing preload's probe reached this inspector" in \
        result.stderr.splitlines()


@needs_node
@pytest.mark.parametrize("command", [
    ["env", "-u", "NODE_OPTIONS", "node", "-e", "0"],  # the preload dropped: a Node program sending nothing
    ["true"],  # not Node at all
])
def test_run_expect_none_without_the_preload_is_could_not_run(command, tmp_path):
    report = tmp_path / "run.xml"
    result = run_cli("--expect", "none", "--junit", str(report), "--", *command)
    assert result.returncode == 2, result.stderr
    assert "PASS" not in result.stderr
    assert result.stderr.splitlines()[-1].startswith(
        f"telemetry-inspector run: could not run: the route to the inspector is not proven (no Node process of "
        f"{command[0]} sent the routing preload's probe")
    assert 'type="CouldNotRun"' in report.read_text()
    assert f"no Node process of {command[0]} sent the routing preload's probe" in report.read_text()


@needs_node
@pytest.mark.parametrize("value", [None, "1"])
def test_run_expect_none_fails_without_the_real_opt_out(value, node_fetch_installed):
    env = {"REFINE_NO_TELEMETRY": value} if value else {}
    result = run_cli("--expect", "none", "--", node, str(SEND), "node-fetch", env=env)
    assert result.returncode == 1, result.stderr
    assert "FAIL: expected no request, got 1" in result.stderr
    assert "REFINE_NO_TELEMETRY=true" in result.stderr
    assert '"projectId": "node-node-fetch"' in result.stderr  # the decoded body is shown


@needs_node
def test_run_expect_count_and_fields(tmp_path):
    report = tmp_path / "run.xml"
    result = run_cli("--expect", "1", "--field", "command=build", "--field", "projectId=node-fetch",
                     "--junit", str(report), "--", node, str(SEND), "fetch")
    assert result.returncode == 0, result.stderr
    assert "PASS: expected exactly 1 request with command=build, projectId=node-fetch, got 1" in result.stderr
    assert 'failures="0"' in report.read_text()


@pytest.mark.parametrize(("args", "message"), [
    ([], "no command given"),
    (["--", "no-such-program-anywhere"], "command not found: no-such-program-anywhere"),
    (["--expect", "many", "--", "true"], "--expect must be none, any or a number of requests"),
])
def test_run_errors_are_one_line_exit_2(args, message):
    result = run_cli(*args)
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("telemetry-inspector run: ") and message in last
    assert "Traceback" not in result.stderr
