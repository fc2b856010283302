"""``telemetry-inspector run`` with the real refine command-line packages (no stand-ins for them).

``tests/noderun/refine-packages`` pins ``@refinedev/cli`` 2.16.52 and
``create-refine-app`` 1.12.11 (with ``superplate-cli`` 1.20.1) exactly; what
they send was read in their dist code:

* the CLI posts ``/cli`` from commander's ``postAction`` hook (every command but
  ``run``) unless ``REFINE_NO_TELEMETRY`` is exactly ``true`` (environment or
  ``.env``). ``refine whoami`` is used: it runs offline and writes nothing;
* superplate's ``saofile.js`` posts ``/projects`` (with the typed email) at every
  project creation and ``/superplate`` unless ``--disable-telemetry``. Its
  templates normally come from GitHub; ``tests/noderun/superplate-source`` is a
  local source of the same layout, so the real generator runs offline;
* ``refine dev`` fetches its announcements from raw.githubusercontent.com and its update
  notifier runs ``npm ls`` / ``npm outdated`` against the registry (``UPDATE_NOTIFIER_IS_DISABLED``
  stops it): both are listed as other hosts. The project's dev server (``vite``) is a stand-in.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from mockserver.reach.noderun import RoutedNode
from mockserver.records import advice

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ROOT / "tests" / "noderun" / "refine-packages"
MODULES = PACKAGES / "node_modules"
REFINE_CLI = MODULES / "@refinedev" / "cli" / "dist" / "cli.cjs"
CREATE_REFINE_APP = MODULES / "create-refine-app" / "dist" / "index.js"
SUPERPLATE_SOURCE = ROOT / "tests" / "noderun" / "superplate-source"
PINNED = {"@refinedev/cli": "2.16.52", "create-refine-app": "1.12.11", "superplate-cli": "1.20.1"}
PROJECT_ID = "qa-cli-project"
EMAIL = "qa@example.com"

node = shutil.which("node") or "node"
pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js (scripts/install-test-deps)")


@pytest.fixture(scope="module", autouse=True)
def refine_packages() -> None:
    """The pinned packages from refine-packages/package-lock.json (``npm ci`` only when missing)."""
    if not (REFINE_CLI.is_file() and CREATE_REFINE_APP.is_file()):
        npm = shutil.which("npm")
        if npm is None:
            pytest.skip("needs npm to install the refine packages for these tests")
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=PACKAGES, check=True, capture_output=True,
                       timeout=600)
    for name, version in PINNED.items():
        installed = json.loads((MODULES / name / "package.json").read_text())["version"]
        assert installed == version, f"{name} {installed} installed, the tests are written for {version}"


def child_env(home: Path, **extra: str) -> dict[str, str]:
    """A clean environment: no opt-out, no NODE_ENV, and a private HOME (the tools write caches there)."""
    env = {k: v for k, v in os.environ.items() if k not in ("REFINE_NO_TELEMETRY", "NODE_ENV", "NODE_OPTIONS")}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), PYTHONPATH=str(ROOT), **extra)
    return env


def run_inspector(*args: str, cwd: Path, env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    """``telemetry-inspector run ARGS`` (this checkout's package) in ``cwd``."""
    return subprocess.run([sys.executable, "-m", "mockserver", "run", *args], cwd=cwd, env=env, input=stdin,
                          capture_output=True, text=True, timeout=300, check=False)


# -- @refinedev/cli -----------------------------------------------------------------

@pytest.fixture
def refine_project(tmp_path: Path) -> Path:
    """A project the CLI inspects: package.json with a projectId, and @refinedev/core as npm ls sees it."""
    project = tmp_path / "app"
    core = project / "node_modules" / "@refinedev" / "core"
    core.mkdir(parents=True)
    (project / "package.json").write_text(json.dumps({
        "name": "qa-app", "version": "0.0.0", "private": True,
        "dependencies": {"@refinedev/core": "4.58.0", "vite": "5.4.0"}, "refine": {"projectId": PROJECT_ID}}))
    # Only its package.json: `npm ls --depth=0 --json` (how the CLI lists packages) reads nothing else.
    (core / "package.json").write_text(json.dumps({"name": "@refinedev/core", "version": "4.58.0"}))
    return project


def expected_cli_body(os_version: str, command: str = "whoami") -> dict:
    """What @refinedev/cli 2.16.52 sends (telemetry/index.ts getTelemetryData), in its key order."""
    os_names = {"Linux": "Linux", "Darwin": "macOS", "Windows": "Windows"}
    return {"nodeEnv": "development", "nodeVersion": node_version(), "os": os_names[platform.system()],
            "osVersion": os_version, "command": command,
            "packages": [{"name": "@refinedev/core", "version": "4.58.0"}], "projectFramework": "vite",
            "projectId": PROJECT_ID}


def node_version() -> str:
    return subprocess.run([node, "--version"], capture_output=True, text=True, check=True).stdout.strip()


def test_refine_cli_body_reaches_the_mock_as_sent(refine_project, tmp_path):
    with RoutedNode() as routed:
        result = subprocess.run([node, str(REFINE_CLI), "whoami"], cwd=refine_project,
                                env=routed.env(child_env(tmp_path)), capture_output=True, text=True, timeout=120,
                                check=False)
        assert result.returncode == 0, result.stderr
        [record] = routed.store.query()
    assert "## Refine Packages:\n - @refinedev/core: 4.58.0" in result.stdout
    assert (record.kind, record.status, record.request.method, record.request.path) == ("cli", "ok", "POST", "/cli")
    assert record.payload == expected_cli_body(record.payload["osVersion"])
    assert list(record.payload) == list(expected_cli_body(""))  # the order JSON.stringify wrote
    assert isinstance(record.payload["osVersion"], str) and record.payload["osVersion"]
    assert advice.advice_for(record) == [advice.CLI]


def test_run_prints_the_cli_body_indented(refine_project, tmp_path):
    result = run_inspector("--expect", "1", "--field", "command=whoami", "--field", f"projectId={PROJECT_ID}",
                           "--", node, str(REFINE_CLI), "whoami", cwd=refine_project, env=child_env(tmp_path))
    assert result.returncode == 0, result.stderr
    assert f"PASS: expected exactly 1 request with command=whoami, projectId={PROJECT_ID}, got 1" in result.stderr
    lines = result.stderr.splitlines()
    at = next(n for n, line in enumerate(lines) if f"cli        ok      POST /cli  projectId {PROJECT_ID}" in line)
    os_version = json.loads("{" + lines[at + 6].strip().rstrip(",") + "}")["osVersion"]
    body = json.dumps(expected_cli_body(os_version), indent=2).splitlines()
    assert lines[at + 1:at + 2 + len(body)] == ["    payload (utf-8):"] + ["      " + line for line in body]


@pytest.mark.parametrize("where", ["environment", ".env"])
def test_run_expect_none_passes_with_refine_no_telemetry_true(refine_project, tmp_path, where):
    extra = {"REFINE_NO_TELEMETRY": "true"} if where == "environment" else {}
    if where == ".env":
        (refine_project / ".env").write_text("REFINE_NO_TELEMETRY=true\n")
    result = run_inspector("--expect", "none", "--", node, str(REFINE_CLI), "whoami", cwd=refine_project,
                           env=child_env(tmp_path, **extra))
    assert result.returncode == 0, result.stderr
    assert "PASS: expected no request, got 0" in result.stderr
    assert "telemetry-inspector run: route proven: the routing preload's probe reached this inspector" in \
        result.stderr.splitlines()
    assert "POST /cli" not in result.stderr


def test_run_expect_none_fails_with_refine_no_telemetry_1_and_says_how(refine_project, tmp_path):
    result = run_inspector("--expect", "none", "--", node, str(REFINE_CLI), "whoami", cwd=refine_project,
                           env=child_env(tmp_path, REFINE_NO_TELEMETRY="1"))
    assert result.returncode == 1, result.stderr
    assert "FAIL: expected no request, got 1" in result.stderr
    assert f'        "projectId": "{PROJECT_ID}"' in result.stderr.splitlines()
    assert f"telemetry-inspector run: how to opt out: {advice.CLI}" in result.stderr.splitlines()


def test_run_expect_none_on_a_broken_route_is_not_a_pass(refine_project, tmp_path):
    # The CLI sends (no opt-out), but the preload now sends it to port 1 on loopback, where nothing
    # listens: nothing arrives and nothing leaves the machine. The verdict must be "could not run".
    result = run_inspector("--expect", "none", "--", "env", "TELEMETRY_INSPECTOR_HTTPS_PORT=1", node,
                           str(REFINE_CLI), "whoami", cwd=refine_project, env=child_env(tmp_path))
    assert result.returncode == 2, result.stderr
    assert "PASS" not in result.stderr
    assert result.stderr.splitlines()[-1] == (
        "telemetry-inspector run: could not run: the route to the inspector is not proven (no Node process of "
        "env sent the routing preload's probe: NODE_OPTIONS was dropped or replaced, the program is not Node "
        "(Bun and Deno are not routed), or it ended at once)")


# -- what else the CLI contacts (issue 14): listed beside the verdict ----------------------

ANNOUNCEMENTS = "https://raw.githubusercontent.com/refinedev/refine/main/packages/cli/ANNOUNCEMENTS.md"


def resolves(host: str) -> bool:
    """Whether this machine resolves ``host`` (the network is closed here: GitHub's names do not)."""
    try:
        socket.getaddrinfo(host, 443)
    except OSError:
        return False
    return True


@pytest.fixture
def dev_project(refine_project: Path) -> Path:
    """The project, with a stand-in for its dev server: ``refine dev`` runs ``node_modules/.bin/vite dev``,
    which here says so and ends (the subject is what the CLI itself contacts, not the dev server)."""
    bin_dir = refine_project / "node_modules" / ".bin"
    bin_dir.mkdir()
    (bin_dir / "vite").write_text('#!/usr/bin/env node\nconsole.log("dev server stand-in:", process.argv[2]);\n')
    (bin_dir / "vite").chmod(0o755)
    return refine_project


def other_hosts(stderr: str) -> list[str]:
    """The listing's request lines, without their indent."""
    return [line.strip() for line in stderr.splitlines() if line.startswith("    ") and " → " in line]


def host_of(line: str) -> str:
    """The host of a listing line: ``LOOKUP host``, ``CONNECT host:port`` or ``GET scheme://host/…``."""
    target = line.split()[1]
    if "//" in target:
        return target.split("/")[2]
    return target.rsplit(":", 1)[0] if line.startswith("CONNECT ") else target


def announcement_lines() -> list[str]:
    """What ``refine dev``'s announcements fetch (the global fetch) leaves in the listing on a closed network."""
    github = " — GitHub files (refine's announcements and devtools feed come from here)"
    return ["LOOKUP raw.githubusercontent.com → failed: ENOTFOUND" + github,
            f"GET {ANNOUNCEMENTS} → failed: ENOTFOUND — refine CLI announcements (refine dev)",
            "CONNECT raw.githubusercontent.com:443 → failed: ENOTFOUND" + github]


def test_run_refine_dev_lists_the_announcements_and_the_update_notifier(dev_project, tmp_path):
    result = run_inspector("--expect", "1", "--field", "command=dev", "--", node, str(REFINE_CLI), "dev",
                           cwd=dev_project, env=child_env(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "dev server stand-in: dev" in result.stdout
    assert result.stderr.splitlines()[-1] == \
        "telemetry-inspector run: PASS: expected exactly 1 request with command=dev, got 1"
    listed = other_hosts(result.stderr)
    if not resolves("raw.githubusercontent.com"):
        assert listed[:3] == announcement_lines()  # preAction: before the command itself runs
    assert any(line.startswith(f"GET {ANNOUNCEMENTS} → ") for line in listed)
    # The update notifier runs `npm ls` and then `npm outdated` (Node too: the preload is in them as well).
    registry = [line for line in listed if "registry.npmjs.org" in line]
    assert registry and all(line.endswith(" — update notifier: the npm registry") for line in registry)
    if not resolves("registry.npmjs.org"):
        assert registry[0] == "LOOKUP registry.npmjs.org → failed: ENOTFOUND — update notifier: the npm registry"
    else:
        addresses = {info[4][0] for info in socket.getaddrinfo("registry.npmjs.org", 443)}
        assert registry[0].startswith("LOOKUP registry.npmjs.org → ")
        assert set(registry[0].split(" → ")[1].split(" — ")[0].split(", ")) <= addresses
    # The CLI's own telemetry (routed to the mock on loopback), npm's local work: none of it is egress.
    assert not any(word in line for line in listed for word in ("127.0.0.1", "localhost", "telemetry.refine.dev"))
    assert {host_of(line) for line in listed} == {"raw.githubusercontent.com", "registry.npmjs.org"}
    assert f"telemetry-inspector run: Other hosts contacted (2 hosts, {len(listed)} requests):" in result.stderr


def test_run_egress_none_fails_beside_the_unchanged_telemetry_verdict(dev_project, tmp_path):
    # Both opt-outs: the telemetry's and the update notifier's. The announcements have none.
    env = child_env(tmp_path, REFINE_NO_TELEMETRY="true", UPDATE_NOTIFIER_IS_DISABLED="true")
    command = ["--", node, str(REFINE_CLI), "dev"]
    relaxed = run_inspector("--expect", "none", *command, cwd=dev_project, env=env)
    strict = run_inspector("--expect", "none", "--egress", "none", *command, cwd=dev_project, env=env)
    assert (relaxed.returncode, strict.returncode) == (0, 1), strict.stderr
    assert relaxed.stderr.splitlines()[-1] == "telemetry-inspector run: PASS: expected no request, got 0"
    assert strict.stderr.splitlines()[-1] == ("telemetry-inspector run: FAIL: expected no request, got 0; "
                                              "--egress none: 1 other host contacted (raw.githubusercontent.com)")
    for result in (relaxed, strict):
        assert "telemetry-inspector run: route proven: the routing preload's probe reached this inspector" in \
            result.stderr.splitlines()
        listed = other_hosts(result.stderr)
        assert not any("registry.npmjs.org" in line for line in listed)  # UPDATE_NOTIFIER_IS_DISABLED=true
        if not resolves("raw.githubusercontent.com"):
            assert listed == announcement_lines()


# -- create-refine-app (superplate) ------------------------------------------------------

def create_app_args(*extra: str) -> list[str]:
    # --debug: superplate skips git init and npm install (the generated project is not installed).
    return [node, str(CREATE_REFINE_APP), "qa-app", f"--source={SUPERPLATE_SOURCE}", "--preset=qa", "--debug",
            *extra]


def generated_project_id(cwd: Path) -> str:
    """The projectId superplate wrote into the new project (the mock's answer to POST /projects)."""
    return json.loads((cwd / "qa-app" / "package.json").read_text())["refine"]["projectId"]


@pytest.mark.parametrize("typed", [EMAIL, ""])
def test_create_refine_app_posts_projects_with_the_typed_email(tmp_path, typed):
    with RoutedNode() as routed:
        result = subprocess.run(create_app_args(), cwd=tmp_path, env=routed.env(child_env(tmp_path)),
                                input=f"{typed}\n", capture_output=True, text=True, timeout=180, check=False)
        assert result.returncode == 0, result.stderr
        records = routed.store.query()
    assert [r.kind for r in records] == ["project", "superplate"]
    project, superplate = records
    assert [r.request.path for r in records] == ["/projects", "/superplate"]
    npm_client = project.payload["answers"]["npmClient"]
    assert npm_client in ("npm", "yarn", "pnpm")  # whichever package managers this machine has
    expected = {"email": typed} if typed else {}  # JSON.stringify drops the undefined email
    expected.update(answers={"ui": "no", "name": "qa-app", "npmClient": npm_client, "projectType": "refine-vite"},
                    source="CREATE_REFINE_APP")
    assert project.payload == expected
    assert project.contact == ({"email": EMAIL} if typed else None)
    assert superplate.payload["event"] == "generate"
    assert superplate.payload["properties"] == {"name": "qa-app", "npmClient": npm_client, "type": "refine-vite"}
    assert str(uuid.UUID(generated_project_id(tmp_path))) == generated_project_id(tmp_path)


def test_run_create_refine_app_expect_none_fails_with_both_and_the_advice(tmp_path):
    result = run_inspector("--expect", "none", "--", *create_app_args(), cwd=tmp_path, env=child_env(tmp_path),
                           stdin=f"{EMAIL}\n")
    assert result.returncode == 1, result.stderr
    lines = result.stderr.splitlines()
    assert "FAIL: expected no request, got 2" in result.stderr
    assert any(f"project    ok      POST /projects  email {EMAIL}" in line for line in lines)
    assert any("superplate ok      POST /superplate" in line for line in lines)
    assert f'        "email": "{EMAIL}",' in lines and '        "source": "CREATE_REFINE_APP"' in lines
    assert f"telemetry-inspector run: how to opt out: {advice.CREATE_REFINE_APP}" in lines
    assert f"telemetry-inspector run: how to opt out: {advice.SUPERPLATE}" in lines


def test_run_disable_telemetry_stops_superplate_but_not_projects(tmp_path):
    result = run_inspector("--expect", "none", "--", *create_app_args("--disable-telemetry"), cwd=tmp_path,
                           env=child_env(tmp_path), stdin=f"{EMAIL}\n")
    assert result.returncode == 1, result.stderr
    lines = result.stderr.splitlines()
    assert "FAIL: expected no request, got 1" in result.stderr
    assert any(f"project    ok      POST /projects  email {EMAIL}" in line for line in lines)
    assert not any("POST /superplate" in line for line in lines if not line.startswith("telemetry-inspector run:"))
    assert f"telemetry-inspector run: how to opt out: {advice.SUPERPLATE}" not in lines
    assert f"telemetry-inspector run: how to opt out: {advice.CREATE_REFINE_APP}" in lines
    assert uuid.UUID(generated_project_id(tmp_path))  # the project was still created, with the mock's id
